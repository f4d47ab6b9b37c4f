//! The host's own STS calls: `AssumeRoleWithWebIdentity` and `AssumeRole` with OGX's
//! `DurationSeconds = session_ttl` (aws-config's providers have no duration knob for web
//! identity), and the HTTP client the AWS SDK uses when extra CAs are configured.
//!
//! The STS client is regional (the signing region), honours `AWS_ENDPOINT_URL_STS` /
//! `AWS_ENDPOINT_URL` (and `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`) read through [`Environment`],
//! trusts `AWS_CA_BUNDLE` / `SSL_CERT_FILE` in addition to the system roots, and is bounded by
//! [`STS_CONNECT_TIMEOUT`] / [`STS_OPERATION_TIMEOUT`]. `AssumeRoleWithWebIdentity` is sent
//! unsigned; the token file is read (and trimmed) on every call, so rotated projected tokens
//! are picked up.
//!
//! Fails with [`HttpError::Credentials`]: "the web identity token file could not be read",
//! "STS AssumeRoleWithWebIdentity failed: <STS error code>", ... — never the token, the file
//! contents or the returned secrets.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_sts::config::{BehaviorVersion, Region, SharedHttpClient};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls;

use super::credentials::provide;
use crate::environment::Environment;
use crate::imports::http::HttpError;

/// Time allowed to connect to STS.
pub const STS_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one STS operation, retries included.
pub const STS_OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
/// Variables naming PEM files trusted in addition to the system roots, as in the AWS CLI and
/// OpenSSL.
const CA_BUNDLE_ENV_VARS: &[&str] = &["AWS_CA_BUNDLE", "SSL_CERT_FILE"];

/// Provider names recorded in the credentials STS returns.
const WEB_IDENTITY_PROVIDER_NAME: &str = "ogx-sts-web-identity";
const ASSUME_ROLE_PROVIDER_NAME: &str = "ogx-sts-assume-role";

/// What both STS calls need.
pub(crate) struct StsSettings {
    pub(crate) region: String,
    pub(crate) endpoint: Option<String>,
    pub(crate) http_client: Option<SharedHttpClient>,
    pub(crate) role_arn: String,
    pub(crate) session_name: String,
    pub(crate) session_ttl: u32,
    /// Counts STS calls, for the cache's single-flight guarantee (visible to tests).
    pub(crate) calls: Arc<AtomicU64>,
}

impl StsSettings {
    fn client(&self, credentials: Option<Credentials>) -> aws_sdk_sts::Client {
        let mut config = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .timeout_config(
                aws_sdk_sts::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(STS_CONNECT_TIMEOUT)
                    .operation_timeout(STS_OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint) = &self.endpoint {
            config = config.endpoint_url(endpoint);
        }
        if let Some(client) = &self.http_client {
            config = config.http_client(client.clone());
        }
        if let Some(credentials) = credentials {
            config = config.credentials_provider(credentials);
        }
        aws_sdk_sts::Client::from_conf(config.build())
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.session_ttl).unwrap_or(i32::MAX)
    }
}

/// `AssumeRoleWithWebIdentity` with a token read from a file at every call.
pub(crate) struct WebIdentity {
    settings: StsSettings,
    client: aws_sdk_sts::Client,
    token_file: PathBuf,
}

impl WebIdentity {
    pub(crate) fn new(settings: StsSettings, token_file: PathBuf) -> Self {
        let client = settings.client(None);
        WebIdentity {
            settings,
            client,
            token_file,
        }
    }

    pub(crate) async fn load(&self) -> Result<Credentials, HttpError> {
        let token = tokio::fs::read_to_string(&self.token_file)
            .await
            .map_err(|error| {
                tracing::warn!(
                    path = %self.token_file.display(),
                    kind = ?error.kind(),
                    "the web identity token file could not be read"
                );
                HttpError::Credentials("the web identity token file could not be read".into())
            })?;
        let token = token.trim();
        if token.is_empty() {
            return Err(HttpError::Credentials(
                "the web identity token file is empty".into(),
            ));
        }
        self.settings.calls.fetch_add(1, Ordering::Relaxed);
        let output = self
            .client
            .assume_role_with_web_identity()
            .role_arn(&self.settings.role_arn)
            .role_session_name(&self.settings.session_name)
            .web_identity_token(token)
            .duration_seconds(self.settings.duration_seconds())
            .send()
            .await
            .map_err(|error| sts_error("AssumeRoleWithWebIdentity", &error))?;
        into_credentials(output.credentials, WEB_IDENTITY_PROVIDER_NAME)
    }
}

/// `AssumeRole` signed with base credentials, resolved afresh at every call.
pub(crate) struct AssumeRole {
    settings: StsSettings,
    base: SharedCredentialsProvider,
}

impl AssumeRole {
    pub(crate) fn new(settings: StsSettings, base: SharedCredentialsProvider) -> Self {
        AssumeRole { settings, base }
    }

    pub(crate) async fn load(&self) -> Result<Credentials, HttpError> {
        let base = provide(&self.base).await?;
        let client = self.settings.client(Some(base));
        self.settings.calls.fetch_add(1, Ordering::Relaxed);
        let output = client
            .assume_role()
            .role_arn(&self.settings.role_arn)
            .role_session_name(&self.settings.session_name)
            .duration_seconds(self.settings.duration_seconds())
            .send()
            .await
            .map_err(|error| sts_error("AssumeRole", &error))?;
        into_credentials(output.credentials, ASSUME_ROLE_PROVIDER_NAME)
    }
}

fn into_credentials(
    credentials: Option<aws_sdk_sts::types::Credentials>,
    provider_name: &'static str,
) -> Result<Credentials, HttpError> {
    let credentials =
        credentials.ok_or_else(|| HttpError::Credentials("STS returned no credentials".into()))?;
    let expiry = SystemTime::try_from(*credentials.expiration())
        .map_err(|_| HttpError::Credentials("STS returned an invalid expiration time".into()))?;
    Ok(Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        Some(expiry),
        provider_name,
    ))
}

/// STS's error code, or what kind of failure it was; never the message body.
fn sts_error<E: ProvideErrorMetadata>(operation: &str, error: &SdkError<E>) -> HttpError {
    let what = match error {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("an unknown error");
            // Codes are identifiers; anything else is not passed on.
            if code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
            {
                code.to_owned()
            } else {
                "an unrecognised error".to_owned()
            }
        }
        SdkError::TimeoutError(_) => "the request timed out".to_owned(),
        SdkError::DispatchFailure(_) => "the STS endpoint could not be reached".to_owned(),
        SdkError::ResponseError(_) => "the STS response could not be read".to_owned(),
        _ => "the request could not be built".to_owned(),
    };
    tracing::warn!(operation, error = %what, "STS call failed");
    HttpError::Credentials(format!("STS {operation} failed: {what}"))
}

/// An HTTP client for the AWS SDK that trusts the PEM files named by `AWS_CA_BUNDLE` and
/// `SSL_CERT_FILE` besides the system roots (rustls over aws-lc-rs, like the rest of the host);
/// `None` when neither is set, leaving the SDK's default client.
pub(crate) fn http_client_for(env: &Environment) -> Result<Option<SharedHttpClient>, HttpError> {
    let mut trust_store = tls::TrustStore::default();
    let mut any = false;
    for var in CA_BUNDLE_ENV_VARS {
        let Some(path) = env.get(var) else { continue };
        let pem = std::fs::read(&path).map_err(|error| {
            tracing::warn!(var, path, kind = ?error.kind(), "a CA bundle could not be read");
            HttpError::Credentials(format!("the CA bundle named by {var} could not be read"))
        })?;
        trust_store = trust_store.with_pem_certificate(pem);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    let context = tls::TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .map_err(|_| HttpError::Credentials("the CA bundle could not be used".into()))?;
    Ok(Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https(),
    ))
}
