//! Where a plugin's outbound requests may go.
//!
//! **Threat.** A plugin is untrusted code that the host lends its network position to. Left
//! alone it could (a) send the operator's prompts or the caller's credentials to any host on
//! the internet, and (b) use the gateway as a server-side request forgery proxy: reach the
//! cloud instance-metadata service (`169.254.169.254`, `fd00:ec2::254`) and walk away with
//! the machine's IAM credentials, or probe link-local services. DNS makes (b) subtle: a name
//! that passes a host check may resolve, or re-resolve a second later (DNS rebinding), to a
//! metadata address.
//!
//! **Defence.**
//! - [`EgressPolicy`] is built from the plugin's declared `outbound-hosts`: `host`,
//!   `*.domain` (any subdomain, not the domain itself), or `*` (any host), each optionally
//!   with `:port` (no port: any port) and a `http://` or `https://` prefix (no prefix: both
//!   schemes). Matching ignores case and a trailing dot. A request whose URL does not match
//!   is refused before anything is sent; a malformed pattern fails the plugin at load.
//! - Link-local and cloud-metadata addresses
//!   ([`is_forbidden_address`](super::is_forbidden_address)) are refused even under `*`: first
//!   when the URL holds an IP literal, then on the addresses a name *resolves to*, in the DNS
//!   resolver the HTTP client connects with, so the address checked is the address connected
//!   to (`addresses.rs`).
//! - Redirects are re-checked against the same policy (see the client).
//! - The operator's `plugins.policy` (global and per provider) narrows it further
//!   ([`EgressPolicy::with_operator`]): each `allowed_hosts` list a URL must also match (the
//!   policy is the intersection of what the plugin declares and what the operator allows), and
//!   `denied_cidrs`, address blocks refused like the link-local ones. The operator may lift the
//!   link-local rule with `plugins.policy.allow_link_local` (e.g. a model server on a
//!   link-local network); the host-pattern rules always apply. Each refusal names the host and
//!   the config key (or the plugin's declaration) that refused it.
//!
//! **Not refused by default.** Loopback and private ranges: local model servers (vLLM, Ollama)
//! and tests live there, and the operator chose them in the run config. An operator who must
//! keep plugins off the private network lists those ranges in `denied_cidrs` (and should have
//! a network-level control as well).

use super::HttpError;
use super::addresses::AddressRules;
use crate::config::plugin_policy::EffectivePolicy;
use reqwest::Url;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

/// A malformed `outbound-hosts` pattern; the text names the pattern and the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "outbound host pattern {pattern:?} is invalid: {reason}; use `host`, `*.domain` or `*`, optionally with `:port` and an `http://` or `https://` prefix"
)]
pub struct PolicyError {
    pub pattern: String,
    pub reason: String,
}

/// The hosts one plugin may reach; see the module documentation.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    rules: Vec<HostRule>,
    /// The operator's `allowed_hosts` lists (`plugins.policy`): a URL must match each too.
    operator: Vec<OperatorHosts>,
    addresses: Arc<AddressRules>,
}

/// One `allowed_hosts` list of the operator's policy.
#[derive(Debug, Clone)]
struct OperatorHosts {
    /// Its config key, for error messages.
    key: String,
    rules: Vec<HostRule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    /// The pattern as declared, for error messages.
    declared: String,
    scheme: Option<String>,
    host: HostPattern,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.suffix`: a name ending in `.suffix`.
    Subdomains(String),
    Name(String),
    Ip(IpAddr),
}

impl EgressPolicy {
    /// Builds the policy from a plugin's `outbound-hosts`. `allow_link_local` is the
    /// operator's choice to let requests reach link-local and metadata addresses.
    pub fn new<S: AsRef<str>>(patterns: &[S], allow_link_local: bool) -> Result<Self, PolicyError> {
        Ok(EgressPolicy {
            rules: parse_patterns(patterns)?,
            operator: Vec::new(),
            addresses: Arc::new(AddressRules::link_local(allow_link_local)),
        })
    }

    /// Adds the operator's policy for the provider: its `allowed_hosts` lists, denied CIDR
    /// blocks and `allow_link_local`. A malformed pattern fails naming its config key.
    pub fn with_operator(mut self, policy: &EffectivePolicy) -> Result<Self, String> {
        for list in &policy.allowed_hosts {
            let rules = parse_patterns(&list.value).map_err(|e| format!("{}: {e}", list.key))?;
            self.operator.push(OperatorHosts {
                key: list.key.clone(),
                rules,
            });
        }
        self.addresses = Arc::new(AddressRules {
            allow_link_local: policy.allows_link_local(),
            denied: policy.denied_cidrs.clone(),
        });
        Ok(self)
    }

    /// Whether link-local and metadata addresses are allowed.
    pub fn allows_link_local(&self) -> bool {
        self.addresses.allow_link_local
    }

    /// The address rules, for the resolver.
    pub fn addresses(&self) -> Arc<AddressRules> {
        self.addresses.clone()
    }

    /// Checks a request URL: its host against the plugin's patterns and the operator's
    /// lists, and an IP literal against the address rules. The error names the host and the
    /// patterns (or the config key) that refused it.
    pub fn check_url(&self, url: &Url) -> Result<(), HttpError> {
        let host = url
            .host_str()
            .ok_or_else(|| HttpError::InvalidRequest("the URL has no host".to_owned()))?;
        let target = Target {
            ip: parse_ip(&normalize_host(host)),
            host: normalize_host(host),
            port: url.port_or_known_default(),
            scheme: url.scheme(),
        };
        let shown = match target.port {
            Some(port) => format!("{}://{}:{port}", target.scheme, target.host),
            None => format!("{}://{}", target.scheme, target.host),
        };
        let listed = |rules: &[HostRule]| {
            rules
                .iter()
                .map(|r| r.declared.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !target.matches_any(&self.rules) {
            return Err(HttpError::Denied(format!(
                "host {shown} is not in the plugin's outbound hosts [{}]",
                listed(&self.rules)
            )));
        }
        if let Some(list) = self.operator.iter().find(|l| !target.matches_any(&l.rules)) {
            return Err(HttpError::Denied(format!(
                "host {shown} is not in {} [{}] (add it there to allow it)",
                list.key,
                listed(&list.rules)
            )));
        }
        if let Some(ip) = target.ip {
            self.addresses
                .check(&shown, ip)
                .map_err(|refused| HttpError::Denied(refused.to_string()))?;
        }
        Ok(())
    }
}

/// A request URL's parts that patterns are matched against.
struct Target<'a> {
    host: String,
    ip: Option<IpAddr>,
    port: Option<u16>,
    scheme: &'a str,
}

impl Target<'_> {
    fn matches_any(&self, rules: &[HostRule]) -> bool {
        let host = &self.host;
        rules.iter().any(|rule| {
            rule.scheme.as_deref().is_none_or(|s| s == self.scheme)
                && rule.port.is_none_or(|p| Some(p) == self.port)
                && match &rule.host {
                    HostPattern::Any => true,
                    HostPattern::Subdomains(suffix) => {
                        self.ip.is_none()
                            && host.len() > suffix.len() + 1
                            && host.ends_with(suffix.as_str())
                            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    }
                    HostPattern::Name(name) => self.ip.is_none() && name == host,
                    HostPattern::Ip(allowed) => self.ip == Some(*allowed),
                }
        })
    }
}

fn parse_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<Vec<HostRule>, PolicyError> {
    patterns.iter().map(|p| parse_pattern(p.as_ref())).collect()
}

fn parse_pattern(pattern: &str) -> Result<HostRule, PolicyError> {
    let fail = |reason: &str| PolicyError {
        pattern: pattern.to_owned(),
        reason: reason.to_owned(),
    };
    let text = pattern.trim().to_ascii_lowercase();
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme @ ("http" | "https"), rest)) => (Some(scheme.to_owned()), rest),
        Some(_) => return Err(fail("the scheme must be http or https")),
        None => (None, text.as_str()),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Err(fail("it names no host"));
    }
    if rest.contains(['/', '?', '#', '@']) || rest.contains(char::is_whitespace) {
        return Err(fail(
            "only a host and a port are allowed, not a path, query or user",
        ));
    }
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (inside, after) = bracketed
            .split_once(']')
            .ok_or_else(|| fail("an IPv6 address needs a closing `]`"))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| fail("expected `:port` after `]`"))?,
            ),
        };
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| fail("not an IPv6 address inside `[...]`"))?;
        (HostPattern::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match rest.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        };
        (parse_host_pattern(host).map_err(fail)?, port)
    };
    let port = match port {
        None | Some("*") => None,
        Some(port) => Some(
            port.parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| fail("the port must be a number from 1 to 65535"))?,
        ),
    };
    Ok(HostRule {
        declared: pattern.to_owned(),
        scheme,
        host,
        port,
    })
}

fn parse_host_pattern(host: &str) -> Result<HostPattern, &'static str> {
    let host = normalize_host(host);
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(ip) = parse_ip(&host) {
        return Ok(HostPattern::Ip(ip));
    }
    let (name, wildcard) = match host.strip_prefix("*.") {
        Some(suffix) => (suffix, true),
        None => (host.as_str(), false),
    };
    if name.contains('*') {
        return Err("`*` may only stand alone or start the pattern as `*.`");
    }
    let valid_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || !name.split('.').all(valid_label) {
        return Err("not a valid host name");
    }
    Ok(if wildcard {
        HostPattern::Subdomains(name.to_owned())
    } else {
        HostPattern::Name(name.to_owned())
    })
}

/// Lower case, no trailing dot, IPv6 brackets removed.
fn normalize_host(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

fn parse_ip(host: &str) -> Option<IpAddr> {
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    fn policy(patterns: &[&str]) -> EgressPolicy {
        EgressPolicy::new(patterns, false).unwrap()
    }

    #[test]
    fn urls_against_patterns() {
        // (patterns, url, allowed)
        let cases: &[(&[&str], &str, bool)] = &[
            (
                &["api.openai.com"],
                "https://api.openai.com/v1/chat/completions",
                true,
            ),
            (&["api.openai.com"], "http://api.openai.com/v1", true),
            (&["API.OpenAI.com."], "https://api.openai.COM./v1", true),
            (&["api.openai.com"], "https://evil.com/v1", false),
            (
                &["api.openai.com"],
                "https://api.openai.com.evil.com/",
                false,
            ),
            (&["api.openai.com"], "https://x.api.openai.com/", false),
            (
                &["*.amazonaws.com"],
                "https://bedrock-runtime.us-west-2.amazonaws.com/",
                true,
            ),
            (&["*.amazonaws.com"], "https://amazonaws.com/", false),
            (&["*.amazonaws.com"], "https://evilamazonaws.com/", false),
            (
                &["*.amazonaws.com"],
                "https://amazonaws.com.evil.com/",
                false,
            ),
            (&["*"], "https://anything.example/", true),
            (&["*"], "http://127.0.0.1:8000/v1", true),
            (&["*"], "http://[::1]:8000/v1", true),
            (&["localhost:8000"], "http://localhost:8000/v1", true),
            (&["localhost:8000"], "http://localhost:8001/v1", false),
            (&["localhost:8000"], "http://localhost/v1", false),
            (&["example.com:443"], "https://example.com/", true),
            (&["example.com:80"], "https://example.com/", false),
            (&["example.com:*"], "https://example.com:9/", true),
            (&["https://example.com"], "https://example.com/", true),
            (&["https://example.com"], "http://example.com/", false),
            (&["http://*:11434"], "http://10.0.0.5:11434/api", true),
            (&["http://*:11434"], "https://10.0.0.5:11434/api", false),
            (&["127.0.0.1"], "http://127.0.0.1:9999/", true),
            (&["127.0.0.1"], "http://127.0.0.2/", false),
            (&["[::1]:8080"], "http://[::1]:8080/", true),
            (&["[::1]:8080"], "http://[0:0::1]:8080/", true),
            (&["[::1]:8080"], "http://[::1]:8081/", false),
            (&["*.example.com"], "http://10.0.0.1/", false),
            (&[], "https://api.openai.com/", false),
            (&["a.com", "b.com"], "https://b.com/", true),
        ];
        for (patterns, target, allowed) in cases {
            let result = policy(patterns).check_url(&url(target));
            assert_eq!(
                result.is_ok(),
                *allowed,
                "{patterns:?} {target}: {result:?}"
            );
            if let Err(error) = result {
                assert!(matches!(error, HttpError::Denied(_)), "{error:?}");
            }
        }
    }

    #[test]
    fn denial_names_the_host_and_the_declared_patterns() {
        let error = policy(&["api.openai.com", "*.azure.com"])
            .check_url(&url("https://evil.com/x?key=secret"));
        assert_eq!(
            error,
            Err(HttpError::Denied(
                "host https://evil.com:443 is not in the plugin's outbound hosts [api.openai.com, *.azure.com]".to_owned()
            ))
        );
    }

    #[test]
    fn link_local_and_metadata_literals_are_refused_even_under_a_wildcard() {
        for target in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.0.1:8080/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://100.100.100.200/",
            // Numeric host forms are normalized by the URL parser before the check.
            "http://2852039166/",
            "http://0xa9fea9fe/",
        ] {
            let result = policy(&["*"]).check_url(&url(target));
            match result {
                Err(HttpError::Denied(text)) => {
                    assert!(text.contains("link-local"), "{target}: {text}")
                }
                other => panic!("{target}: expected a denial, got {other:?}"),
            }
            assert_eq!(
                EgressPolicy::new(&["*"], true)
                    .unwrap()
                    .check_url(&url(target)),
                Ok(()),
                "{target}"
            );
        }
        // Even an explicit pattern naming the address does not lift the rule.
        assert!(
            policy(&["169.254.169.254"])
                .check_url(&url("http://169.254.169.254/"))
                .is_err()
        );
    }

    #[test]
    fn the_operator_policy_narrows_what_the_plugin_declares() {
        let value = serde_json::json!({
            "allowed_hosts": ["*.example.com", "127.0.0.1"],
            "denied_cidrs": ["127.0.0.0/8"],
            "providers": {"p": {"allowed_hosts": ["api.example.com"]}},
        });
        let operator = crate::config::plugin_policy::parse(Some(&value), &["p"])
            .unwrap()
            .for_provider("p");
        let open = policy_of(&["*"], &operator);
        assert_eq!(open.check_url(&url("https://api.example.com/v1")), Ok(()));
        assert_eq!(
            open.check_url(&url("https://other.example.com/v1")),
            Err(HttpError::Denied(
                "host https://other.example.com:443 is not in plugins.policy.providers.p.allowed_hosts [api.example.com] (add it there to allow it)".into()
            ))
        );
        assert_eq!(
            open.check_url(&url("https://evil.com/")),
            Err(HttpError::Denied(
                "host https://evil.com:443 is not in plugins.policy.allowed_hosts [*.example.com, 127.0.0.1] (add it there to allow it)".into()
            ))
        );
        // The plugin's own declaration still applies.
        let narrow = policy_of(&["api.openai.com"], &operator);
        assert!(
            narrow
                .check_url(&url("https://api.example.com/"))
                .unwrap_err()
                .to_string()
                .contains("the plugin's outbound hosts")
        );
        // A denied block refuses an IP literal the host lists allow.
        let denying = crate::config::plugin_policy::parse(
            Some(&serde_json::json!({"denied_cidrs": ["127.0.0.0/8"]})),
            &[],
        )
        .unwrap()
        .for_provider("p");
        let error = policy_of(&["*"], &denying)
            .check_url(&url("http://127.0.0.1:8000/v1"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("plugins.policy.denied_cidrs"), "{error}");
        // A malformed operator pattern names its key.
        let bad = crate::config::plugin_policy::parse(
            Some(&serde_json::json!({"allowed_hosts": ["a/b"]})),
            &[],
        )
        .unwrap()
        .for_provider("p");
        let error = policy(&["*"]).with_operator(&bad).unwrap_err();
        assert!(
            error.starts_with("plugins.policy.allowed_hosts: "),
            "{error}"
        );
    }

    fn policy_of(patterns: &[&str], operator: &EffectivePolicy) -> EgressPolicy {
        policy(patterns).with_operator(operator).unwrap()
    }

    #[test]
    fn loopback_and_private_addresses_are_allowed() {
        for target in [
            "http://127.0.0.1:1/",
            "http://[::1]/",
            "http://10.1.2.3/",
            "http://192.168.0.1/",
            "http://[fd00::1]/",
        ] {
            assert_eq!(policy(&["*"]).check_url(&url(target)), Ok(()), "{target}");
        }
    }

    #[test]
    fn malformed_patterns_fail_naming_the_pattern() {
        for pattern in [
            "",
            "   ",
            "ftp://example.com",
            "https://",
            "example.com/v1",
            "user@example.com",
            "api.*.com",
            "*example.com",
            "**",
            "example.com:0",
            "example.com:99999",
            "example.com:http",
            "[::1",
            "[nothost]",
            "[::1]x",
            "exa mple.com",
            "a..b",
        ] {
            let error = EgressPolicy::new(&["ok.com", pattern], false).unwrap_err();
            assert_eq!(error.pattern, pattern);
            assert!(
                error.to_string().contains(&format!("{pattern:?}")),
                "{error}"
            );
        }
        assert!(EgressPolicy::new(&["https://api.openai.com/"], false).is_ok());
    }
}
