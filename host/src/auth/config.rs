//! `server.auth` and `server.tenancy`, typed: OGX 1.5.0's keys and defaults, read once at
//! start-up. A value ogx cannot use stops start-up naming its dotted key and the fix (the
//! same checks pydantic makes in OGX: exactly one of `jwks`/`introspection`, valid CIDRs,
//! `verify_tls: false` only with `server.insecure`, tenancy `multi` not with `local_api_key`).

use super::policy::{self, AccessRule, RouteRule};
use crate::config::fields::{Invalid, Section};
use ipnet::IpNet;
use serde_json::Value;
use std::path::PathBuf;

/// Which claims (dotted paths) become which attribute category, in config order.
pub type ClaimsMapping = Vec<(String, String)>;

/// `server.auth`, typed.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    /// `None`: no authentication (policies may still apply).
    pub provider: Option<ProviderConfig>,
    pub route_policy: Vec<RouteRule>,
    pub access_policy: Vec<AccessRule>,
}

/// `server.auth.provider_config`.
#[derive(Debug, Clone)]
pub enum ProviderConfig {
    LocalApiKey {
        api_keys: Vec<String>,
    },
    OAuth2(OAuth2Config),
    GitHub {
        api_base_url: String,
        claims_mapping: ClaimsMapping,
    },
    Custom {
        endpoint: String,
        tenant_field: Option<String>,
    },
    Kubernetes {
        api_server_url: String,
        tls: TlsSettings,
        claims_mapping: ClaimsMapping,
        tenant_claim: Option<String>,
    },
    UpstreamHeader(UpstreamHeaderConfig),
}

impl ProviderConfig {
    /// The `type` as the config names it.
    pub fn type_name(&self) -> &'static str {
        match self {
            ProviderConfig::LocalApiKey { .. } => "local_api_key",
            ProviderConfig::OAuth2(_) => "oauth2_token",
            ProviderConfig::GitHub { .. } => "github_token",
            ProviderConfig::Custom { .. } => "custom",
            ProviderConfig::Kubernetes { .. } => "kubernetes",
            ProviderConfig::UpstreamHeader(_) => "upstream_header",
        }
    }
}

/// `verify_tls` and `tls_cafile` of providers that call an HTTPS service.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub verify: bool,
    pub cafile: Option<PathBuf>,
}

/// `oauth2_token`.
#[derive(Debug, Clone)]
pub struct OAuth2Config {
    pub audience: String,
    pub issuer: Option<String>,
    pub tls: TlsSettings,
    pub claims_mapping: ClaimsMapping,
    pub tenant_claim: Option<String>,
    pub validation: TokenValidation,
}

/// How `oauth2_token` checks a token.
#[derive(Debug, Clone)]
pub enum TokenValidation {
    Jwks {
        uri: String,
        /// Sent as a bearer token to the JWKS endpoint.
        token: Option<String>,
        key_recheck_period_secs: u64,
    },
    Introspection {
        url: String,
        client_id: String,
        client_secret: String,
        send_secret_in_body: bool,
    },
}

/// `upstream_header`.
#[derive(Debug, Clone)]
pub struct UpstreamHeaderConfig {
    pub principal_header: String,
    pub tenant_header: Option<String>,
    pub attributes_header: Option<String>,
    /// Header name → attribute category.
    pub attribute_headers: Vec<(String, String)>,
    pub trusted_proxy_cidrs: Option<Vec<IpNet>>,
}

/// `server.tenancy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Tenancy {
    #[default]
    Disabled,
    /// Every request is in this tenant.
    Single(String),
    /// The tenant comes from authentication; a request without one is refused.
    Multi,
}

const AUTH_KEYS: &[&str] = &["provider_config", "route_policy", "access_policy"];
const TYPES: &str =
    "local_api_key, oauth2_token, github_token, custom, kubernetes or upstream_header";

/// Reads `server.auth`; `insecure` is `server.insecure`.
pub fn parse_auth(
    value: Option<&Value>,
    insecure: bool,
    warnings: &mut Vec<String>,
) -> Result<AuthSettings, Invalid> {
    let Some(auth) = Section::of(value, "server.auth")? else {
        return Ok(AuthSettings::default());
    };
    auth.warn_unknown(AUTH_KEYS, warnings);
    let provider = match Section::of(auth.get("provider_config"), "server.auth.provider_config")? {
        None => None,
        Some(p) => provider(&p, insecure, warnings)?,
    };
    Ok(AuthSettings {
        provider,
        route_policy: policy::parse_route_policy(
            auth.get("route_policy"),
            "server.auth.route_policy",
        )?,
        access_policy: policy::parse_access_policy(
            auth.get("access_policy"),
            "server.auth.access_policy",
        )?,
    })
}

fn provider(
    p: &Section<'_>,
    insecure: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<ProviderConfig>, Invalid> {
    let kind = p.string("type")?.unwrap_or_default();
    let known: &[&str] = match kind.as_str() {
        // `type` substituted to empty: OGX turns authentication off.
        "" => return Ok(None),
        "local_api_key" => &["type", "api_keys"],
        "oauth2_token" => &[
            "type",
            "audience",
            "verify_tls",
            "tls_cafile",
            "issuer",
            "claims_mapping",
            "tenant_claim",
            "jwks",
            "introspection",
        ],
        "github_token" => &["type", "github_api_base_url", "claims_mapping"],
        "custom" => &["type", "endpoint", "tenant_field"],
        "kubernetes" => &[
            "type",
            "api_server_url",
            "verify_tls",
            "tls_cafile",
            "claims_mapping",
            "tenant_claim",
        ],
        "upstream_header" => &[
            "type",
            "principal_header",
            "tenant_header",
            "attributes_header",
            "attribute_headers",
            "trusted_proxy_cidrs",
        ],
        other => {
            return Err(Invalid::new(
                p.key("type"),
                format!("unknown authentication provider type '{other}'"),
                format!("Use one of {TYPES}."),
            ));
        }
    };
    p.warn_unknown(known, warnings);
    Ok(Some(match kind.as_str() {
        "local_api_key" => {
            let api_keys = p.string_list("api_keys")?;
            if api_keys.is_empty() {
                return Err(Invalid::new(
                    p.key("api_keys"),
                    "is required: the keys clients may send as `Authorization: Bearer <key>`",
                    "List at least one key, e.g. `api_keys: [\"${env.OGX_API_KEY}\"]`.",
                ));
            }
            ProviderConfig::LocalApiKey { api_keys }
        }
        "oauth2_token" => ProviderConfig::OAuth2(oauth2(p, insecure)?),
        "github_token" => ProviderConfig::GitHub {
            api_base_url: p
                .string("github_api_base_url")?
                .unwrap_or_else(|| "https://api.github.com".into())
                .trim_end_matches('/')
                .to_owned(),
            claims_mapping: claims_mapping(p, &[("login", "roles"), ("organizations", "teams")])?,
        },
        "custom" => ProviderConfig::Custom {
            endpoint: url(p, "endpoint", None)?,
            tenant_field: p.string("tenant_field")?,
        },
        "kubernetes" => ProviderConfig::Kubernetes {
            api_server_url: url(p, "api_server_url", Some("https://kubernetes.default.svc"))?,
            tls: tls(p, insecure)?,
            claims_mapping: claims_mapping(p, &[("username", "roles"), ("groups", "roles")])?,
            tenant_claim: p.string("tenant_claim")?,
        },
        _ => ProviderConfig::UpstreamHeader(upstream_header(p)?),
    }))
}

fn oauth2(p: &Section<'_>, insecure: bool) -> Result<OAuth2Config, Invalid> {
    let jwks = Section::of(p.get("jwks"), "server.auth.provider_config.jwks")?;
    let introspection = Section::of(
        p.get("introspection"),
        "server.auth.provider_config.introspection",
    )?;
    let validation = match (jwks, introspection) {
        (Some(j), None) => TokenValidation::Jwks {
            uri: url(&j, "uri", None)?,
            token: j.string("token")?,
            key_recheck_period_secs: j.u64_at_least("key_recheck_period", 1)?.unwrap_or(3600),
        },
        (None, Some(i)) => TokenValidation::Introspection {
            url: url(&i, "url", None)?,
            client_id: i.required_string(
                "client_id",
                "Add the client id ogx authenticates with to the introspection endpoint.",
            )?,
            client_secret: i.required_string(
                "client_secret",
                "Add the client secret, e.g. `client_secret: ${env.OAUTH_CLIENT_SECRET}`.",
            )?,
            send_secret_in_body: i.bool("send_secret_in_body")?.unwrap_or(false),
        },
        (jwks, _) => {
            return Err(Invalid::new(
                p.path,
                if jwks.is_some() {
                    "At present only one of jwks or introspection should be configured"
                } else {
                    "One of jwks or introspection must be configured"
                },
                "Set either `jwks: {uri: ...}` (JWT verified against the issuer's keys) or `introspection: {url, client_id, client_secret}`.",
            ));
        }
    };
    Ok(OAuth2Config {
        audience: p.string("audience")?.unwrap_or_else(|| "ogx".into()),
        issuer: p.string("issuer")?,
        tls: tls(p, insecure)?,
        claims_mapping: claims_mapping(
            p,
            &[
                ("sub", "roles"),
                ("username", "roles"),
                ("groups", "teams"),
                ("team", "teams"),
                ("project", "projects"),
                ("tenant", "namespaces"),
                ("namespace", "namespaces"),
            ],
        )?,
        tenant_claim: p.string("tenant_claim")?,
        validation,
    })
}

fn upstream_header(p: &Section<'_>) -> Result<UpstreamHeaderConfig, Invalid> {
    let attribute_headers = match Section::of(
        p.get("attribute_headers"),
        "server.auth.provider_config.attribute_headers",
    )? {
        None => Vec::new(),
        Some(h) => h
            .map
            .keys()
            .map(|name| {
                Ok((
                    name.to_ascii_lowercase(),
                    h.required_string(name, "Name an attribute category, e.g. `teams`.")?,
                ))
            })
            .collect::<Result<_, Invalid>>()?,
    };
    let trusted_proxy_cidrs = match p.get("trusted_proxy_cidrs") {
        None => None,
        Some(_) => {
            let key = p.key("trusted_proxy_cidrs");
            let list = p.string_list("trusted_proxy_cidrs")?;
            if list.is_empty() {
                return Err(Invalid::new(
                    &key,
                    "trusted_proxy_cidrs must contain at least one entry when set",
                    "List the proxies' networks, e.g. `[10.0.0.0/8]`, or remove the key.",
                ));
            }
            Some(
                list.iter()
                    .map(|cidr| parse_cidr(cidr, &key))
                    .collect::<Result<_, _>>()?,
            )
        }
    };
    Ok(UpstreamHeaderConfig {
        principal_header: p.required_string(
            "principal_header",
            "Name the header your gateway sets to the caller's identity, e.g. `x-auth-user-id`.",
        )?,
        tenant_header: p.string("tenant_header")?.map(|h| h.to_ascii_lowercase()),
        attributes_header: p
            .string("attributes_header")?
            .map(|h| h.to_ascii_lowercase()),
        attribute_headers,
        trusted_proxy_cidrs,
    })
}

/// A CIDR or a single address (Python's `ip_network(strict=False)` accepts host bits).
fn parse_cidr(cidr: &str, key: &str) -> Result<IpNet, Invalid> {
    cidr.parse::<IpNet>()
        .map(|net| net.trunc())
        .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|error| {
            Invalid::new(
                key,
                format!("Invalid CIDR notation '{cidr}': {error}"),
                "Write networks as address/prefix, e.g. `10.96.0.0/12`.",
            )
        })
}

fn tls(p: &Section<'_>, insecure: bool) -> Result<TlsSettings, Invalid> {
    let verify = p.bool("verify_tls")?.unwrap_or(true);
    if !verify && !insecure {
        return Err(Invalid::new(
            p.key("verify_tls"),
            "verify_tls: false turns off certificate checks of the authentication service",
            "Set `tls_cafile` to the service's CA instead, or set `server.insecure: true` to allow it.",
        ));
    }
    Ok(TlsSettings {
        verify,
        cafile: p.string("tls_cafile")?.map(PathBuf::from),
    })
}

fn url(s: &Section<'_>, key: &str, default: Option<&str>) -> Result<String, Invalid> {
    let value = match (s.string(key)?, default) {
        (Some(v), _) => v,
        (None, Some(d)) => d.to_owned(),
        (None, None) => {
            return Err(Invalid::new(
                s.key(key),
                "is required but missing",
                "Give the service's http:// or https:// URL.",
            ));
        }
    };
    match reqwest::Url::parse(&value) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => Ok(value),
        _ => Err(Invalid::new(
            s.key(key),
            format!("'{value}' is not an http:// or https:// URL with a host"),
            "Give the service's full URL, e.g. `https://auth.example.com/validate`.",
        )),
    }
}

fn claims_mapping(p: &Section<'_>, default: &[(&str, &str)]) -> Result<ClaimsMapping, Invalid> {
    let Some(m) = Section::of(
        p.get("claims_mapping"),
        "server.auth.provider_config.claims_mapping",
    )?
    else {
        return Ok(default
            .iter()
            .map(|(c, a)| ((*c).to_owned(), (*a).to_owned()))
            .collect());
    };
    m.map
        .keys()
        .map(|claim| {
            let category = m.string(claim)?.unwrap_or_default();
            if category.is_empty() {
                return Err(Invalid::new(
                    m.key(claim),
                    format!("claims_mapping value cannot be empty: {claim}"),
                    "Map the claim to an attribute category: roles, teams, projects or namespaces.",
                ));
            }
            Ok((claim.clone(), category))
        })
        .collect()
}

/// OGX's tenant ids: `^[a-z0-9][a-z0-9\-_]{0,127}$` after trimming and lowercasing.
pub fn normalize_tenant(raw: &str) -> Result<Option<String>, String> {
    let value = raw.trim().to_lowercase();
    if value.is_empty() {
        return Ok(None);
    }
    let mut chars = value.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if first_ok && rest_ok && value.len() <= 128 {
        Ok(Some(value))
    } else {
        Err(format!(
            "tenant_id must match [a-z0-9][a-z0-9-_]{{0,127}}: '{raw}'"
        ))
    }
}

/// Reads `server.tenancy`; `auth` is the parsed `server.auth` (multi needs a tenant source).
pub fn parse_tenancy(value: Option<&Value>, auth: &AuthSettings) -> Result<Tenancy, Invalid> {
    let Some(t) = Section::of(value, "server.tenancy")? else {
        return Ok(Tenancy::Disabled);
    };
    let mode = t.string("mode")?.unwrap_or_else(|| "disabled".into());
    let default = t
        .string("default_tenant_id")?
        .map(|raw| {
            normalize_tenant(&raw).map_err(|problem| {
                Invalid::new(
                    t.key("default_tenant_id"),
                    problem,
                    "Use lowercase letters, digits, '-' and '_', e.g. `acme`.",
                )
            })
        })
        .transpose()?
        .flatten();
    match mode.as_str() {
        "disabled" => Ok(Tenancy::Disabled),
        "single" => default.map(Tenancy::Single).ok_or_else(|| {
            Invalid::new(
                t.key("default_tenant_id"),
                "default_tenant_id is required when tenancy mode is 'single'",
                "Add `default_tenant_id: <tenant>`.",
            )
        }),
        "multi" => {
            if matches!(auth.provider, Some(ProviderConfig::LocalApiKey { .. })) {
                return Err(Invalid::new(
                    t.key("mode"),
                    "tenancy mode 'multi' needs a tenant from authentication, and local_api_key resolves none",
                    "Use an auth provider with tenant_claim, tenant_field or tenant_header, or tenancy mode single.",
                ));
            }
            Ok(Tenancy::Multi)
        }
        other => Err(Invalid::new(
            t.key("mode"),
            format!("unknown tenancy mode '{other}'"),
            "Use disabled, single or multi.",
        )),
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
