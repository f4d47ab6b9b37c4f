//! TODO: the outbound HTTP client (written on the `imports` branch).
//!
//! This branch carries only the contract types the AWS signer needs, as the `imports` branch
//! defines them; when the branches merge, that branch's file replaces this one.

use bytes::Bytes;
use futures::future::BoxFuture;

/// Where the host finds AWS credentials for a signed request. None of these is a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AwsCredentialSource {
    pub profile_name: Option<String>,
    pub role_arn: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub role_session_name: Option<String>,
    pub session_ttl_seconds: Option<u32>,
}

/// The WIT `aws-signing` record: how to sign a request with SigV4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsSigning {
    /// Signing name of the service, e.g. `bedrock`.
    pub service: String,
    /// Region of the signing scope, e.g. `us-west-2`.
    pub region: String,
    pub credentials: AwsCredentialSource,
}

/// Why an outbound request failed; mirrors the WIT `http-error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("denied: {0}")]
    Denied(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("connect: {0}")]
    Connect(String),
    #[error("timeout: {0}")]
    Timeout(String),
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("too large: {0}")]
    TooLarge(String),
}

/// Signs a final request with AWS SigV4; implemented by
/// [`AwsSigner`](crate::imports::aws::AwsSigner).
///
/// `request` is final: hop-by-hop and `authorization` headers removed, body complete. The
/// signer adds its headers (`authorization`, `x-amz-date`, ...) in place. Its errors must not
/// contain secrets.
pub trait RequestSigner: Send + Sync {
    fn sign<'a>(
        &'a self,
        request: &'a mut http::Request<Bytes>,
        signing: &'a AwsSigning,
    ) -> BoxFuture<'a, Result<(), HttpError>>;
}
