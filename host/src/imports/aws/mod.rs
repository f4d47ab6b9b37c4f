//! AWS identity for `outbound-http`'s `aws-sigv4` auth: the host, never the plugin, finds
//! AWS credentials and signs the final request with Signature Version 4.
//!
//! **Provides.** [`AwsIdentity`], one per provider, built from the provider's config block at
//! bind time ([`AwsIdentity::from_provider_config`]) with OGX's Bedrock fields and env defaults
//! ([`ProviderAwsConfig`]); [`AwsSigner`], the [`RequestSigner`](super::http::RequestSigner)
//! the HTTP client calls once a request is final; [`CredentialCache`], process-wide, one entry
//! per distinct credential source, refreshed before expiry with one refresh at a time.
//! Credential sources follow OGX (`bedrock.md` §3): static keys, else the standard AWS default
//! chain (environment, profile with SSO and `credential_process`, web identity, container,
//! instance metadata); with a role ARN, STS `AssumeRoleWithWebIdentity` (token file re-read on
//! every refresh) or `AssumeRole` over those base credentials, for `session_ttl` seconds.
//!
//! **Refuses.** Signing without credentials; serving credentials that have expired; a service
//! or region that is not a plain AWS name; a URL without an `http`/`https` host.
//!
//! **Fails** with [`HttpError::Credentials`](super::http::HttpError::Credentials) when
//! credentials cannot be resolved, in general terms (which step failed, STS's error code), and
//! [`HttpError::InvalidRequest`](super::http::HttpError::InvalidRequest) for an unsignable request.
//!
//! **Never leaks** a secret key, session token, web identity token or file contents: not in
//! errors, not in logs (only the first four characters of an access key id and the expiry),
//! not in `Debug` output, not in the cache key (the static secret is stored there as a salted
//! SHA-256 digest).
//!
//! Lookups of the environment go through the host's one reader, [`Environment`], so tests
//! inject variables instead of mutating the process environment.

mod cache;
mod config;
mod credentials;
mod signing;
mod sts;

#[cfg(test)]
mod tests;

use crate::environment::Environment;

pub use cache::{
    ADVISORY_REFRESH_ENV, CREDENTIAL_LOAD_TIMEOUT, CredentialCache, DEFAULT_ADVISORY_REFRESH,
    DEFAULT_MANDATORY_REFRESH, MANDATORY_REFRESH_ENV, RefreshWindows,
};
pub use config::{AwsConfigError, DEFAULT_SESSION_TTL_SECONDS, ProviderAwsConfig};
pub use credentials::{AwsIdentity, NO_CREDENTIALS_FOUND};
pub use signing::{AwsSigner, SIGNER_OWNED_HEADERS, sign_with_credentials};
pub use sts::{STS_CONNECT_TIMEOUT, STS_OPERATION_TIMEOUT};

/// Turns off every `AWS_ENDPOINT_URL*` override when set to `true`, as in the AWS SDKs.
pub const IGNORE_CONFIGURED_ENDPOINT_URLS_ENV: &str = "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS";

/// The endpoint configured for a service in the process environment:
/// `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`; `None` when neither is set (empty
/// counts as unset) or `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`. `service_env_suffix` is the
/// service's env name (`STS`, `BEDROCK_RUNTIME`); `bedrock-runtime` is accepted too.
pub fn endpoint_override(service_env_suffix: &str) -> Option<String> {
    endpoint_override_in(&Environment::Process, service_env_suffix)
}

/// Egress patterns (`scheme://host:port`) for the endpoint overrides the operator set among
/// `declared` variables: a plugin that declares `AWS_ENDPOINT_URL_BEDROCK_RUNTIME` may reach
/// the host that variable names, because setting it is the operator's choice. Unparsable values
/// give nothing (the plugin's request then fails with a clear error).
pub fn endpoint_override_hosts(declared: &[String], env: &Environment) -> Vec<String> {
    let ignore = env
        .get(IGNORE_CONFIGURED_ENDPOINT_URLS_ENV)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if ignore {
        return Vec::new();
    }
    declared
        .iter()
        .filter(|name| *name == "AWS_ENDPOINT_URL" || name.starts_with("AWS_ENDPOINT_URL_"))
        .filter_map(|name| env.get(name))
        .filter_map(|value| {
            let url = reqwest::Url::parse(value.trim()).ok()?;
            let host = url.host_str()?;
            let port = url.port_or_known_default()?;
            Some(format!("{}://{host}:{port}", url.scheme()))
        })
        .collect()
}

/// [`endpoint_override`] reading `env`.
pub fn endpoint_override_in(env: &Environment, service_env_suffix: &str) -> Option<String> {
    let ignore = env
        .get(IGNORE_CONFIGURED_ENDPOINT_URLS_ENV)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if ignore {
        return None;
    }
    let suffix: String = service_env_suffix
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect();
    env.get(&format!("AWS_ENDPOINT_URL_{suffix}"))
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
}
