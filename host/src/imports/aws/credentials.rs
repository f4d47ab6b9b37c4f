//! Which credentials a signed request uses: the plugin's [`AwsCredentialSource`] (non-secret
//! overrides) over the provider's [`ProviderAwsConfig`], resolved as OGX does (`bedrock.md` §3):
//!
//! | role ARN | token file | credentials |
//! |---|---|---|
//! | none | – | static keys from the config, else the AWS default chain (with the profile) |
//! | set | set | STS `AssumeRoleWithWebIdentity`, unsigned, token file re-read on each refresh |
//! | set | none | STS `AssumeRole`, signed with the static keys or the default chain |
//!
//! Refuses half a key pair (an access key id without a secret or the reverse). Failures are
//! [`HttpError::Credentials`] in general terms: the default chain's own errors are not passed
//! on, because a profile parse error can quote a line of a credentials file.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_sts::config::Region;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cache::CredentialCache;
use super::config::{AwsConfigError, DEFAULT_SESSION_TTL_SECONDS, ProviderAwsConfig, Secret};
use super::sts;
use crate::environment::Environment;
use crate::imports::http::{AwsCredentialSource, HttpError};

/// The error text when the default chain finds nothing.
pub const NO_CREDENTIALS_FOUND: &str = "no AWS credentials found in the environment, profile, \
     web identity, container or instance metadata";

/// Provider name recorded in credentials taken from the provider config.
const STATIC_PROVIDER_NAME: &str = "ogx-config";

/// A provider's AWS identity: its config block's AWS fields and the environment they were
/// read with, sharing a [`CredentialCache`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AwsIdentity {
    config: Arc<ProviderAwsConfig>,
    /// The config's static keys, prepared once: `Err` for half a key pair.
    static_base: Result<Option<StaticBase>, HttpError>,
    env: Environment,
    cache: Arc<CredentialCache>,
}

impl AwsIdentity {
    /// Reads the provider's config block (see [`ProviderAwsConfig::from_json`]) and uses the
    /// process-wide [`CredentialCache::global`].
    pub fn from_provider_config(config: &Value, env: Environment) -> Result<Self, AwsConfigError> {
        let config = ProviderAwsConfig::from_json(config, &env)?;
        Ok(AwsIdentity::new(config, env, CredentialCache::global()))
    }

    pub fn new(config: ProviderAwsConfig, env: Environment, cache: Arc<CredentialCache>) -> Self {
        let static_base = StaticBase::from_config(&config);
        AwsIdentity {
            config: Arc::new(config),
            static_base,
            env,
            cache,
        }
    }

    /// Uses `cache` instead of the one given at construction.
    pub fn with_cache(mut self, cache: Arc<CredentialCache>) -> Self {
        self.cache = cache;
        self
    }

    pub fn config(&self) -> &ProviderAwsConfig {
        &self.config
    }

    pub fn cache(&self) -> &Arc<CredentialCache> {
        &self.cache
    }

    /// Credentials for a request signed in `region` (also the STS region), from the cache when
    /// they are not due for refresh.
    pub async fn credentials(
        &self,
        region: &str,
        source: &AwsCredentialSource,
    ) -> Result<Credentials, HttpError> {
        let static_base = self.static_base.clone()?;
        let resolved =
            ResolvedSource::resolve(&self.config, static_base, source, region, &self.env);
        self.cache.credentials(resolved).await
    }
}

/// Static keys from the provider config, with the salted digest that stands for them in
/// cache keys.
#[derive(Clone, Debug)]
pub(crate) struct StaticBase {
    credentials: Credentials,
    digest: [u8; 32],
}

impl StaticBase {
    fn from_config(config: &ProviderAwsConfig) -> Result<Option<Self>, HttpError> {
        match (&config.access_key_id, &config.secret_access_key) {
            (Some(id), Some(secret)) => {
                let token = config.session_token.as_ref().map(Secret::expose);
                let mut digest = Sha256::new();
                digest.update(key_salt());
                digest.update(secret.expose().as_bytes());
                digest.update([0]);
                digest.update(token.unwrap_or_default().as_bytes());
                Ok(Some(StaticBase {
                    credentials: Credentials::new(
                        id,
                        secret.expose(),
                        token.map(str::to_owned),
                        None,
                        STATIC_PROVIDER_NAME,
                    ),
                    digest: digest.finalize().into(),
                }))
            }
            (None, None) => Ok(None),
            _ => Err(HttpError::Credentials(
                "the provider config sets only one of aws_access_key_id and \
                 aws_secret_access_key"
                    .into(),
            )),
        }
    }
}

/// Base credentials: what signs `AssumeRole`, or what signs requests when there is no role.
#[derive(Clone, Debug)]
pub(crate) enum BaseCredentials {
    Static(StaticBase),
    DefaultChain { profile: Option<String> },
}

/// The role to assume.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RoleAssumption {
    pub(crate) role_arn: String,
    pub(crate) web_identity_token_file: Option<PathBuf>,
    /// `None`: a random name chosen once per cache entry.
    pub(crate) session_name: Option<String>,
    pub(crate) session_ttl: u32,
}

/// A fully resolved credential source; holds the static secret, so it is never logged.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedSource {
    pub(crate) region: String,
    pub(crate) base: BaseCredentials,
    pub(crate) role: Option<RoleAssumption>,
    pub(crate) env: Environment,
}

/// What tells cache entries apart: every field of a [`ResolvedSource`], the static secret and
/// session token only as a salted digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct SourceKey {
    region: String,
    static_key_id: Option<String>,
    static_secret_digest: Option<[u8; 32]>,
    profile: Option<String>,
    role: Option<RoleAssumption>,
    env: u64,
}

impl ResolvedSource {
    pub(crate) fn resolve(
        config: &ProviderAwsConfig,
        static_base: Option<StaticBase>,
        source: &AwsCredentialSource,
        region: &str,
        env: &Environment,
    ) -> Self {
        let pick = |over: &Option<String>, base: &Option<String>| {
            over.as_ref()
                .or(base.as_ref())
                .filter(|s| !s.trim().is_empty())
                .cloned()
        };
        let profile = pick(&source.profile_name, &config.profile_name);
        let role_arn = pick(&source.role_arn, &config.role_arn);
        let token_file = pick(
            &source.web_identity_token_file,
            &config.web_identity_token_file,
        );
        let session_name = pick(&source.role_session_name, &config.role_session_name);
        let session_ttl = source
            .session_ttl_seconds
            .filter(|ttl| *ttl > 0)
            .or(config.session_ttl)
            .unwrap_or(DEFAULT_SESSION_TTL_SECONDS);
        let base = match static_base {
            Some(static_base) => BaseCredentials::Static(static_base),
            None => BaseCredentials::DefaultChain { profile },
        };
        let role = role_arn.map(|role_arn| RoleAssumption {
            role_arn,
            web_identity_token_file: token_file.map(PathBuf::from),
            session_name,
            session_ttl,
        });
        ResolvedSource {
            region: region.to_owned(),
            base,
            role,
            env: env.clone(),
        }
    }

    pub(crate) fn key(&self) -> SourceKey {
        let (static_key_id, static_secret_digest, profile) = match &self.base {
            BaseCredentials::Static(base) => (
                Some(base.credentials.access_key_id().to_owned()),
                Some(base.digest),
                None,
            ),
            BaseCredentials::DefaultChain { profile } => (None, None, profile.clone()),
        };
        // Web identity does not use the base credentials at all.
        let web_identity = self
            .role
            .as_ref()
            .is_some_and(|r| r.web_identity_token_file.is_some());
        SourceKey {
            region: self.region.clone(),
            static_key_id: static_key_id.filter(|_| !web_identity),
            static_secret_digest: static_secret_digest.filter(|_| !web_identity),
            profile: profile.filter(|_| !web_identity),
            role: self.role.clone(),
            env: self.env.fingerprint(),
        }
    }

    /// Short name of the source kind, for logs.
    pub(crate) fn kind(&self) -> &'static str {
        match (&self.role, &self.base) {
            (Some(role), _) if role.web_identity_token_file.is_some() => "sts-web-identity",
            (Some(_), _) => "sts-assume-role",
            (None, BaseCredentials::Static(_)) => "static",
            (None, BaseCredentials::DefaultChain { .. }) => "default-chain",
        }
    }
}

/// A random salt per process, so that digests of secrets in memory cannot be looked up in
/// precomputed tables.
fn key_salt() -> &'static [u8; 16] {
    static SALT: OnceLock<[u8; 16]> = OnceLock::new();
    SALT.get_or_init(|| *uuid::Uuid::new_v4().as_bytes())
}

/// Loads credentials for one cache entry; built at its first refresh.
pub(crate) enum Loader {
    Chain(SharedCredentialsProvider),
    WebIdentity(sts::WebIdentity),
    AssumeRole(sts::AssumeRole),
}

impl Loader {
    pub(crate) async fn build(
        source: &ResolvedSource,
        session_name: &str,
        sts_calls: &Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Self, HttpError> {
        let http_client = sts::http_client_for(&source.env)?;
        let base = || async {
            match &source.base {
                BaseCredentials::Static(base) => {
                    Ok(SharedCredentialsProvider::new(base.credentials.clone()))
                }
                BaseCredentials::DefaultChain { profile } => {
                    default_chain(
                        profile.as_deref(),
                        &source.region,
                        &source.env,
                        http_client.clone(),
                    )
                    .await
                }
            }
        };
        Ok(match &source.role {
            None => Loader::Chain(base().await?),
            Some(role) => {
                let settings = sts::StsSettings {
                    region: source.region.clone(),
                    endpoint: super::endpoint_override_in(&source.env, "STS"),
                    http_client: http_client.clone(),
                    role_arn: role.role_arn.clone(),
                    session_name: session_name.to_owned(),
                    session_ttl: role.session_ttl,
                    calls: sts_calls.clone(),
                };
                match &role.web_identity_token_file {
                    Some(file) => {
                        Loader::WebIdentity(sts::WebIdentity::new(settings, file.clone()))
                    }
                    None => Loader::AssumeRole(sts::AssumeRole::new(settings, base().await?)),
                }
            }
        })
    }

    pub(crate) async fn load(&self) -> Result<Credentials, HttpError> {
        match self {
            Loader::Chain(provider) => provide(provider).await,
            Loader::WebIdentity(web) => web.load().await,
            Loader::AssumeRole(assume) => assume.load().await,
        }
    }
}

/// Calls a credentials provider of the default chain, mapping its errors to general terms.
pub(crate) async fn provide(
    provider: &SharedCredentialsProvider,
) -> Result<Credentials, HttpError> {
    provider
        .provide_credentials()
        .await
        .map_err(|error| HttpError::Credentials(chain_error_message(&error).into()))
}

fn chain_error_message(error: &CredentialsError) -> &'static str {
    let message = match error {
        CredentialsError::CredentialsNotLoaded(_) => NO_CREDENTIALS_FOUND,
        CredentialsError::ProviderTimedOut(_) => "timed out resolving AWS credentials",
        CredentialsError::InvalidConfiguration(_) => {
            "the AWS credential configuration (environment or profile) is invalid"
        }
        _ => {
            "the AWS credential provider failed (profile, SSO, credential_process, web \
             identity, container or instance metadata)"
        }
    };
    // Only the kind: the details can quote a line of a credentials file.
    tracing::warn!(reason = message, "the AWS default credential chain failed");
    message
}

/// The standard AWS default chain for `region`, reading `profile` (else `AWS_PROFILE`).
async fn default_chain(
    profile: Option<&str>,
    region: &str,
    env: &Environment,
    http_client: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
) -> Result<SharedCredentialsProvider, HttpError> {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(region.to_owned()));
    if let Some(profile) = profile {
        loader = loader.profile_name(profile);
    }
    if let Some(client) = http_client {
        loader = loader.http_client(client);
    }
    loader = injected_env(loader, env);
    loader
        .load()
        .await
        .credentials_provider()
        .ok_or_else(|| HttpError::Credentials(NO_CREDENTIALS_FOUND.into()))
}

/// aws-config reads the process environment; its override is test-only, as is
/// [`Environment::Vars`] in practice.
#[cfg(test)]
fn injected_env(loader: aws_config::ConfigLoader, env: &Environment) -> aws_config::ConfigLoader {
    match env {
        Environment::Process => loader,
        Environment::Vars(vars) => {
            let map: std::collections::HashMap<String, String> =
                vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            loader.env(aws_types::os_shim_internal::Env::from(map))
        }
    }
}

#[cfg(not(test))]
fn injected_env(loader: aws_config::ConfigLoader, env: &Environment) -> aws_config::ConfigLoader {
    if matches!(env, Environment::Vars(_)) {
        tracing::debug!("the AWS default chain reads the process environment");
    }
    loader
}

/// A printable hint of which credentials are in use: the first four characters of the access
/// key id (`AKIA`, `ASIA`), never more.
pub(crate) fn key_id_prefix(creds: &Credentials) -> &str {
    let id = creds.access_key_id();
    id.get(..4).unwrap_or("")
}

impl ResolvedSource {
    /// The static credentials when they sign requests directly (no role to assume).
    pub(crate) fn direct_static(&self) -> Option<&Credentials> {
        match (&self.role, &self.base) {
            (None, BaseCredentials::Static(base)) => Some(&base.credentials),
            _ => None,
        }
    }
}
