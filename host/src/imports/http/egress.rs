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
//! - Link-local and cloud-metadata addresses ([`is_forbidden_address`]) are refused even
//!   under `*`: first when the URL holds an IP literal, then on the addresses a name
//!   *resolves to*, in the DNS resolver the HTTP client connects with
//!   ([`PolicyResolver`]), so the address checked is the address connected to.
//! - Redirects are re-checked against the same policy (see the client).
//! - The operator may lift the address rule with `allow_link_local` (e.g. a model server
//!   on a link-local network); the host-pattern rule always applies.
//!
//! **Not refused.** Loopback and private ranges: local model servers (vLLM, Ollama) and tests
//! live there, and the operator chose them in the run config. An operator who must keep
//! plugins off the private network needs a network-level control as well.

use super::HttpError;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

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
    allow_link_local: bool,
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
        let rules = patterns
            .iter()
            .map(|p| parse_pattern(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(EgressPolicy {
            rules,
            allow_link_local,
        })
    }

    /// Whether link-local and metadata addresses are allowed.
    pub fn allows_link_local(&self) -> bool {
        self.allow_link_local
    }

    /// Checks a request URL: its host against the patterns, and an IP literal against the
    /// forbidden addresses. The error names the host and the declared patterns.
    pub fn check_url(&self, url: &Url) -> Result<(), HttpError> {
        let host = url
            .host_str()
            .ok_or_else(|| HttpError::InvalidRequest("the URL has no host".to_owned()))?;
        let host = normalize_host(host);
        let ip = parse_ip(&host);
        let port = url.port_or_known_default();
        let scheme = url.scheme();
        let matches = self.rules.iter().any(|rule| {
            rule.scheme.as_deref().is_none_or(|s| s == scheme)
                && rule.port.is_none_or(|p| Some(p) == port)
                && match &rule.host {
                    HostPattern::Any => true,
                    HostPattern::Subdomains(suffix) => {
                        ip.is_none()
                            && host.len() > suffix.len() + 1
                            && host.ends_with(suffix.as_str())
                            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    }
                    HostPattern::Name(name) => ip.is_none() && *name == host,
                    HostPattern::Ip(allowed) => ip == Some(*allowed),
                }
        });
        let shown = match port {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        };
        if !matches {
            let declared: Vec<&str> = self.rules.iter().map(|r| r.declared.as_str()).collect();
            return Err(HttpError::Denied(format!(
                "host {shown} is not in the plugin's outbound hosts [{}]",
                declared.join(", ")
            )));
        }
        if let Some(ip) = ip
            && !self.allow_link_local
            && is_forbidden_address(ip)
        {
            return Err(HttpError::Denied(
                ForbiddenAddress {
                    host: shown,
                    address: ip,
                }
                .to_string(),
            ));
        }
        Ok(())
    }
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

/// A host that resolved (or was written as) a forbidden address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForbiddenAddress {
    pub host: String,
    pub address: IpAddr,
}

impl fmt::Display for ForbiddenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "host {} resolves to {}, a link-local or cloud-metadata address that plugins may not reach (the operator can allow it with allow_link_local)",
            self.host, self.address
        )
    }
}

impl std::error::Error for ForbiddenAddress {}

/// Drops forbidden addresses from a name's resolved addresses. Fails when nothing is left
/// but forbidden ones, naming the first.
pub fn filter_resolved(
    host: &str,
    resolved: impl IntoIterator<Item = SocketAddr>,
    allow_link_local: bool,
) -> Result<Vec<SocketAddr>, ForbiddenAddress> {
    let mut allowed = Vec::new();
    let mut first_forbidden = None;
    for addr in resolved {
        if allow_link_local || !is_forbidden_address(addr.ip()) {
            allowed.push(addr);
        } else {
            first_forbidden.get_or_insert(addr.ip());
        }
    }
    match (allowed.is_empty(), first_forbidden) {
        (true, Some(address)) => Err(ForbiddenAddress {
            host: host.to_owned(),
            address,
        }),
        _ => Ok(allowed),
    }
}

/// The client's DNS resolver: the system resolver, then [`filter_resolved`].
#[derive(Debug, Clone)]
pub(crate) struct PolicyResolver {
    pub(crate) allow_link_local: bool,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_link_local = self.allow_link_local;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = filter_resolved(&host, resolved, allow_link_local)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
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
    fn resolved_addresses_are_filtered() {
        let addr = |s: &str| -> SocketAddr { s.parse().unwrap() };
        // A name that resolves only to the metadata address is refused (DNS rebinding).
        let error =
            filter_resolved("metadata.evil.com", [addr("169.254.169.254:0")], false).unwrap_err();
        assert_eq!(error.address, "169.254.169.254".parse::<IpAddr>().unwrap());
        assert!(error.to_string().contains("metadata.evil.com"));
        // Mixed answers keep only the allowed addresses.
        assert_eq!(
            filter_resolved(
                "mixed.example",
                [addr("[fe80::1]:0"), addr("93.184.216.34:0")],
                false
            ),
            Ok(vec![addr("93.184.216.34:0")])
        );
        // The operator's switch lets everything through.
        assert_eq!(
            filter_resolved("metadata.evil.com", [addr("169.254.169.254:0")], true),
            Ok(vec![addr("169.254.169.254:0")])
        );
        // An empty answer is not a policy matter.
        assert_eq!(filter_resolved("nothing.example", [], false), Ok(vec![]));
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_link_local() {
        // `lookup_host` accepts an address literal as a name, which lets this test drive the
        // resolver end to end without a DNS server.
        let resolver = PolicyResolver {
            allow_link_local: false,
        };
        let error = match resolver.resolve("169.254.169.254".parse().unwrap()).await {
            Err(error) => error,
            Ok(_) => panic!("resolved a forbidden address"),
        };
        assert!(
            error.downcast_ref::<ForbiddenAddress>().is_some(),
            "{error}"
        );
        let allowed: Vec<SocketAddr> = resolver
            .resolve("127.0.0.1".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert_eq!(allowed, vec!["127.0.0.1:0".parse().unwrap()]);
    }
}
