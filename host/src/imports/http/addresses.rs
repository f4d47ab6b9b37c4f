//! Which addresses a plugin's requests may connect to: the address half of the egress policy
//! (the host-pattern half, and the threat, are in `egress.rs`).
//!
//! [`AddressRules`] refuses an address inside one of the operator's `denied_cidrs`
//! (`plugins.policy`), and a link-local or cloud-metadata address ([`is_forbidden_address`])
//! unless the operator set `plugins.policy.allow_link_local`. Both are checked on an IP literal
//! in the URL and on every address a name resolves to, in the DNS resolver the client connects
//! with ([`PolicyResolver`]), so the address checked is the address connected to. A refusal
//! ([`ForbiddenAddress`]) names the host, the address and the config key that decides it.

use crate::config::plugin_policy::{CidrBlock, Setting};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// The config key that lifts the link-local refusal.
pub const ALLOW_LINK_LOCAL_KEY: &str = "plugins.policy.allow_link_local";

/// The address rules of one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressRules {
    /// Link-local and metadata addresses may be reached.
    pub allow_link_local: bool,
    /// Blocks no request may reach, each with the key that denies it.
    pub denied: Vec<Setting<CidrBlock>>,
}

impl AddressRules {
    /// Only the link-local rule, as `allow_link_local` says.
    pub fn link_local(allow_link_local: bool) -> Self {
        AddressRules {
            allow_link_local,
            denied: Vec::new(),
        }
    }

    /// Whether `host`, at `address`, may be reached.
    pub fn check(&self, host: &str, address: IpAddr) -> Result<(), ForbiddenAddress> {
        let refuse = |reason| {
            Err(ForbiddenAddress {
                host: host.to_owned(),
                address,
                reason,
            })
        };
        if let Some(denied) = self.denied.iter().find(|d| d.value.contains(address)) {
            return refuse(Refusal::Denied {
                block: denied.value,
                key: denied.key.clone(),
            });
        }
        if !self.allow_link_local && is_forbidden_address(address) {
            return refuse(Refusal::LinkLocal);
        }
        Ok(())
    }
}

/// The Alibaba Cloud metadata service (the others use `169.254.169.254`).
const ALIBABA_METADATA: Ipv4Addr = Ipv4Addr::new(100, 100, 100, 200);
/// The AWS instance-metadata service over IPv6.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Whether `ip` is link-local (`169.254.0.0/16`, `fe80::/10`) or a cloud-metadata address
/// (`fd00:ec2::254`, `100.100.100.200`), including IPv4 addresses written as IPv4-mapped or
/// NAT64 (`64:ff9b::/96`) IPv6 addresses.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local() || v4 == ALIBABA_METADATA,
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_forbidden_address(IpAddr::V4(v4));
            }
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return is_forbidden_address(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            }
            (segments[0] & 0xffc0) == 0xfe80 || v6 == AWS_METADATA_V6
        }
    }
}

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    LinkLocal,
    /// Inside `block`, which the config key `key` denies.
    Denied {
        block: CidrBlock,
        key: String,
    },
}

/// A host that resolved (or was written as) an address the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenAddress {
    pub host: String,
    pub address: IpAddr,
    pub reason: Refusal,
}

impl fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Refusal::LinkLocal => write!(
                f,
                "host {} resolves to {}, a link-local or cloud-metadata address that plugins may not reach (the operator can allow it with {ALLOW_LINK_LOCAL_KEY}: true)",
                self.host, self.address
            ),
            Refusal::Denied { block, key } => write!(
                f,
                "host {} resolves to {}, inside {block}, which {key} denies (remove the block there to allow it)",
                self.host, self.address
            ),
        }
    }
}

impl std::error::Error for ForbiddenAddress {}

/// Drops refused addresses from a name's resolved addresses. Fails when nothing is left but
/// refused ones, naming the first.
pub fn filter_resolved(
    host: &str,
    resolved: impl IntoIterator<Item = SocketAddr>,
    rules: &AddressRules,
) -> Result<Vec<SocketAddr>, ForbiddenAddress> {
    let mut allowed = Vec::new();
    let mut first_refused = None;
    for addr in resolved {
        match rules.check(host, addr.ip()) {
            Ok(()) => allowed.push(addr),
            Err(refused) => {
                first_refused.get_or_insert(refused);
            }
        }
    }
    match (allowed.is_empty(), first_refused) {
        (true, Some(refused)) => Err(refused),
        _ => Ok(allowed),
    }
}

/// The client's DNS resolver: the system resolver, then [`filter_resolved`].
#[derive(Debug, Clone)]
pub(crate) struct PolicyResolver {
    pub(crate) rules: Arc<AddressRules>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = filter_resolved(&host, resolved, &rules)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denying(block: &str) -> AddressRules {
        AddressRules {
            allow_link_local: false,
            denied: vec![Setting {
                value: block.parse().unwrap(),
                key: "plugins.policy.denied_cidrs".into(),
            }],
        }
    }

    #[test]
    fn forbidden_addresses() {
        let cases = [
            ("169.254.169.254", true),
            ("169.254.0.0", true),
            ("169.254.255.255", true),
            ("169.253.255.255", false),
            ("169.255.0.0", false),
            ("100.100.100.200", true),
            ("100.100.100.201", false),
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", false),
            ("fd00:ec2::254", true),
            ("fd00:ec2::253", false),
            ("::ffff:169.254.1.1", true),
            ("::ffff:127.0.0.1", false),
            ("64:ff9b::169.254.169.254", true),
            ("64:ff9b::8.8.8.8", false),
            ("127.0.0.1", false),
            ("::1", false),
            ("10.0.0.1", false),
            ("0.0.0.0", false),
        ];
        for (ip, forbidden) in cases {
            assert_eq!(is_forbidden_address(ip.parse().unwrap()), forbidden, "{ip}");
        }
    }

    #[test]
    fn the_allow_link_local_decision() {
        let metadata: IpAddr = "169.254.169.254".parse().unwrap();
        let refused = AddressRules::link_local(false)
            .check("metadata", metadata)
            .unwrap_err();
        assert_eq!(refused.reason, Refusal::LinkLocal);
        assert!(
            refused
                .to_string()
                .contains("plugins.policy.allow_link_local"),
            "{refused}"
        );
        assert_eq!(
            AddressRules::link_local(true).check("metadata", metadata),
            Ok(())
        );
        // A denied block wins over allow_link_local.
        let mut rules = denying("169.254.0.0/16");
        rules.allow_link_local = true;
        assert!(matches!(
            rules.check("metadata", metadata).unwrap_err().reason,
            Refusal::Denied { .. }
        ));
    }

    #[test]
    fn denied_blocks_are_refused_naming_the_key() {
        let rules = denying("10.0.0.0/8");
        let refused = rules
            .check("internal.example", "10.1.2.3".parse().unwrap())
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "host internal.example resolves to 10.1.2.3, inside 10.0.0.0/8, which plugins.policy.denied_cidrs denies (remove the block there to allow it)"
        );
        assert_eq!(
            rules.check("public.example", "93.184.216.34".parse().unwrap()),
            Ok(())
        );
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let addr = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let strict = AddressRules::link_local(false);
        // A name that resolves only to the metadata address is refused (DNS rebinding).
        let error =
            filter_resolved("metadata.evil.com", [addr("169.254.169.254:0")], &strict).unwrap_err();
        assert_eq!(error.address, "169.254.169.254".parse::<IpAddr>().unwrap());
        assert!(error.to_string().contains("metadata.evil.com"));
        // Mixed answers keep only the allowed addresses.
        assert_eq!(
            filter_resolved(
                "mixed.example",
                [addr("[fe80::1]:0"), addr("93.184.216.34:0")],
                &strict
            ),
            Ok(vec![addr("93.184.216.34:0")])
        );
        assert_eq!(
            filter_resolved(
                "mixed.example",
                [addr("10.0.0.1:0"), addr("93.184.216.34:0")],
                &denying("10.0.0.0/8")
            ),
            Ok(vec![addr("93.184.216.34:0")])
        );
        // The operator's switch lets link-local through.
        assert_eq!(
            filter_resolved(
                "metadata.evil.com",
                [addr("169.254.169.254:0")],
                &AddressRules::link_local(true)
            ),
            Ok(vec![addr("169.254.169.254:0")])
        );
        // An empty answer is not a policy matter.
        assert_eq!(filter_resolved("nothing.example", [], &strict), Ok(vec![]));
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_a_refused_address() {
        // `lookup_host` accepts an address literal as a name, which lets this test drive the
        // resolver end to end without a DNS server.
        let resolver = PolicyResolver {
            rules: Arc::new(denying("127.0.0.2/32")),
        };
        for refused in ["169.254.169.254", "127.0.0.2"] {
            let error = match resolver.resolve(refused.parse().unwrap()).await {
                Err(error) => error,
                Ok(_) => panic!("resolved a refused address"),
            };
            assert!(
                error.downcast_ref::<ForbiddenAddress>().is_some(),
                "{error}"
            );
        }
        let allowed: Vec<SocketAddr> = resolver
            .resolve("127.0.0.1".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(allowed, vec!["127.0.0.1:0".parse().unwrap()]);
    }
}
