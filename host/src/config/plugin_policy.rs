//! `plugins.policy`: the sandbox policy the operator sets for plugins, globally and per
//! provider (`plugins.policy.providers.<provider_id>`).
//!
//! Keys, at both levels: `allowed_hosts` (host patterns, the syntax of a plugin's declared
//! outbound hosts; a request must match the plugin's declaration *and* every list set here),
//! `denied_cidrs` (address blocks no request may reach, by IP literal or by what a name
//! resolves to; both levels add up), `allow_link_local` (lift the link-local and
//! cloud-metadata refusal; the provider's value wins over the global one), `memory_mb` and
//! `call_timeout_ms` (the provider's value wins; memory may not exceed the runtime's slot size,
//! `plugins.limits.memory_mb`). [`PluginPolicy::for_provider`] merges the levels into the
//! [`EffectivePolicy`] one provider runs under.
//!
//! Fails, naming the key and the fix, on a value of the wrong type, a malformed CIDR block, an
//! unknown key (a misspelt security setting must not be ignored), or a provider id that no
//! enabled provider has. Host patterns are checked when the provider is set up, where the
//! pattern syntax lives.

use super::fields::{Invalid, Section};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

const POLICY_KEYS: &[&str] = &[
    "allowed_hosts",
    "denied_cidrs",
    "allow_link_local",
    "memory_mb",
    "call_timeout_ms",
];

/// One level of `plugins.policy` as written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyLevel {
    /// The dotted key of this level, for messages.
    pub key: String,
    pub allowed_hosts: Option<Vec<String>>,
    pub denied_cidrs: Vec<CidrBlock>,
    pub allow_link_local: Option<bool>,
    pub memory_mb: Option<u64>,
    pub call_timeout_ms: Option<u64>,
}

/// `plugins.policy`.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginPolicy {
    pub global: PolicyLevel,
    pub providers: BTreeMap<String, PolicyLevel>,
}

impl Default for PluginPolicy {
    fn default() -> Self {
        PluginPolicy {
            global: PolicyLevel {
                key: "plugins.policy".into(),
                ..PolicyLevel::default()
            },
            providers: BTreeMap::new(),
        }
    }
}

/// A value of the effective policy and the key that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub key: String,
}

/// What one provider runs under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectivePolicy {
    /// Each list a request's host must also match, with its key.
    pub allowed_hosts: Vec<Setting<Vec<String>>>,
    pub denied_cidrs: Vec<Setting<CidrBlock>>,
    pub allow_link_local: Option<Setting<bool>>,
    pub memory_mb: Option<Setting<u64>>,
    pub call_timeout_ms: Option<Setting<u64>>,
}

impl EffectivePolicy {
    /// Whether link-local and metadata addresses may be reached.
    pub fn allows_link_local(&self) -> bool {
        self.allow_link_local.as_ref().is_some_and(|s| s.value)
    }
}

impl PluginPolicy {
    /// The global level merged with provider `provider_id`'s.
    pub fn for_provider(&self, provider_id: &str) -> EffectivePolicy {
        let mut levels = vec![&self.global];
        levels.extend(self.providers.get(provider_id));
        let mut effective = EffectivePolicy::default();
        for level in levels {
            let setting = |name: &str| format!("{}.{name}", level.key);
            if let Some(hosts) = &level.allowed_hosts {
                effective.allowed_hosts.push(Setting {
                    value: hosts.clone(),
                    key: setting("allowed_hosts"),
                });
            }
            effective
                .denied_cidrs
                .extend(level.denied_cidrs.iter().map(|block| Setting {
                    value: *block,
                    key: setting("denied_cidrs"),
                }));
            let pick = |value: Option<u64>, name: &str| {
                value.map(|value| Setting {
                    value,
                    key: setting(name),
                })
            };
            if let Some(allow) = level.allow_link_local {
                effective.allow_link_local = Some(Setting {
                    value: allow,
                    key: setting("allow_link_local"),
                });
            }
            effective.memory_mb = pick(level.memory_mb, "memory_mb").or(effective.memory_mb);
            effective.call_timeout_ms =
                pick(level.call_timeout_ms, "call_timeout_ms").or(effective.call_timeout_ms);
        }
        effective
    }
}

/// Reads `plugins.policy`; `provider_ids` are the enabled providers' ids.
pub fn parse(value: Option<&Value>, provider_ids: &[&str]) -> Result<PluginPolicy, Invalid> {
    let Some(section) = Section::of(value, "plugins.policy")? else {
        return Ok(PluginPolicy::default());
    };
    let mut known = POLICY_KEYS.to_vec();
    known.push("providers");
    let global = parse_level(&section, &known)?;
    let mut providers = BTreeMap::new();
    let key = section.key("providers");
    if let Some(per_provider) = Section::of(section.get("providers"), &key)? {
        for (provider_id, value) in per_provider.map {
            let path = per_provider.key(provider_id);
            if !provider_ids.contains(&provider_id.as_str()) {
                return Err(Invalid::new(
                    &path,
                    format!("no enabled provider has the id '{provider_id}'"),
                    format!(
                        "Use the provider_id of an enabled provider ({}), or remove the entry.",
                        provider_ids.join(", ")
                    ),
                ));
            }
            let Some(level) = Section::of(Some(value), &path)? else {
                continue;
            };
            providers.insert(provider_id.clone(), parse_level(&level, POLICY_KEYS)?);
        }
    }
    Ok(PluginPolicy { global, providers })
}

fn parse_level(section: &Section<'_>, known: &[&str]) -> Result<PolicyLevel, Invalid> {
    if let Some(unknown) = section.unknown_keys(known).into_iter().next() {
        return Err(Invalid::new(
            &unknown,
            "unknown sandbox policy key",
            format!(
                "Use one of {}; a misspelt policy key would silently leave plugins unrestricted.",
                known.join(", ")
            ),
        ));
    }
    let allowed_hosts = match section.get("allowed_hosts") {
        None => None,
        Some(_) => Some(section.string_list("allowed_hosts")?),
    };
    let cidr_key = section.key("denied_cidrs");
    let denied_cidrs = section
        .string_list("denied_cidrs")?
        .iter()
        .enumerate()
        .map(|(i, text)| {
            text.parse::<CidrBlock>().map_err(|problem| {
                Invalid::new(
                    format!("{cidr_key}[{i}]"),
                    format!("{text:?} is not a CIDR block: {problem}"),
                    "Write an address and a prefix length, e.g. 10.0.0.0/8 or fd00::/8 (a bare address means that one address).",
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(PolicyLevel {
        key: section.path.to_owned(),
        allowed_hosts,
        denied_cidrs,
        allow_link_local: section.bool("allow_link_local")?,
        memory_mb: section.u64_at_least("memory_mb", 1)?,
        call_timeout_ms: section.u64_at_least("call_timeout_ms", 1)?,
    })
}

/// An IPv4 or IPv6 address block, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrBlock {
    network: IpAddr,
    prefix: u8,
}

impl CidrBlock {
    /// Whether `ip` is inside the block. IPv4-mapped IPv6 addresses count as their IPv4
    /// address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                mask(u32::from(net).into(), u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                mask(u128::from(net), u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn mask(net: u128, ip: u128, prefix: u8, bits: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (net >> shift) == (ip >> shift)
}

impl std::str::FromStr for CidrBlock {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is not an IP address"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix =
            match prefix {
                None => bits,
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= bits).ok_or_else(|| {
                    format!("the prefix length must be a number from 0 to {bits}")
                })?,
            };
        Ok(CidrBlock { network, prefix })
    }
}

impl fmt::Display for CidrBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn block(text: &str) -> CidrBlock {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_blocks() {
        let cases = [
            ("10.0.0.0/8", "10.255.1.2", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("0.0.0.0/0", "::1", false),
            ("192.168.1.0/24", "::ffff:192.168.1.9", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "fe80::1", false),
            ("::/0", "::1", true),
        ];
        for (cidr, ip, inside) in cases {
            assert_eq!(
                block(cidr).contains(ip.parse().unwrap()),
                inside,
                "{cidr} {ip}"
            );
        }
        for bad in ["10.0.0.0/33", "fd00::/129", "nothing/8", "10.0.0.0/x", ""] {
            assert!(bad.parse::<CidrBlock>().is_err(), "{bad}");
        }
        assert_eq!(block(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
    }

    #[test]
    fn levels_merge_per_provider() {
        let value = json!({
            "allowed_hosts": ["*.example.com"],
            "denied_cidrs": ["10.0.0.0/8"],
            "memory_mb": 32,
            "providers": {
                "vllm": {"allowed_hosts": ["api.example.com"], "denied_cidrs": ["192.168.0.0/16"],
                         "allow_link_local": true, "call_timeout_ms": 1000},
            }
        });
        let policy = parse(Some(&value), &["vllm", "openai"]).unwrap();
        let vllm = policy.for_provider("vllm");
        assert_eq!(
            vllm.allowed_hosts
                .iter()
                .map(|s| s.key.as_str())
                .collect::<Vec<_>>(),
            [
                "plugins.policy.allowed_hosts",
                "plugins.policy.providers.vllm.allowed_hosts"
            ]
        );
        assert_eq!(vllm.denied_cidrs.len(), 2);
        assert!(vllm.allows_link_local());
        assert_eq!(vllm.memory_mb.as_ref().unwrap().value, 32);
        assert_eq!(
            vllm.call_timeout_ms.unwrap().key,
            "plugins.policy.providers.vllm.call_timeout_ms"
        );
        let openai = policy.for_provider("openai");
        assert!(!openai.allows_link_local());
        assert_eq!(openai.allowed_hosts.len(), 1);
        assert_eq!(openai.call_timeout_ms, None);
        assert_eq!(
            parse(None, &[]).unwrap().for_provider("x"),
            EffectivePolicy::default()
        );
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let cases = [
            (
                json!({"allow_link_locals": true}),
                "plugins.policy.allow_link_locals",
            ),
            (
                json!({"denied_cidrs": ["10.0.0.0/8", "10.0.0.0/99"]}),
                "plugins.policy.denied_cidrs[1]",
            ),
            (
                json!({"providers": {"nope": {}}}),
                "plugins.policy.providers.nope",
            ),
            (
                json!({"providers": {"vllm": {"memory_mb": 0}}}),
                "plugins.policy.providers.vllm.memory_mb",
            ),
            (
                json!({"allow_link_local": "perhaps"}),
                "plugins.policy.allow_link_local",
            ),
            (
                json!({"providers": {"vllm": {"providers": {}}}}),
                "plugins.policy.providers.vllm.providers",
            ),
        ];
        for (value, key) in cases {
            let error = parse(Some(&value), &["vllm"]).unwrap_err();
            assert_eq!(error.key, key, "{value}: {error:?}");
            assert!(!error.fix.is_empty());
        }
    }
}
