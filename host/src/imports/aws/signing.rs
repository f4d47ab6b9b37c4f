//! SigV4 signing of a final outbound request, as OGX's `BedrockSigV4Auth` does it.
//!
//! Signs only `host` (from the URL, with `:port` when not the scheme's default; the HTTP
//! client sends the same `Host`) and `content-type` when present, plus the `x-amz-date` and
//! `x-amz-security-token` the signer adds; the payload hash is the SHA-256 of the exact body
//! bytes, and no `x-amz-content-sha256` header is sent. Headers like `user-agent` or
//! `content-length` stay unsigned because the client may rewrite them.
//!
//! Refuses (with [`HttpError::InvalidRequest`]): a service or region that is not a plain AWS
//! name, a URL without an `http`/`https` host, a `content-type` that is not visible ASCII.
//! The headers the signer owns ([`SIGNER_OWNED_HEADERS`], `authorization` among them) are
//! removed first, so a plugin's placeholder `Authorization` never reaches AWS.
//!
//! The `authorization` and `x-amz-security-token` values are marked sensitive, so `http`'s
//! `Debug` hides them.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use futures::future::BoxFuture;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};

use super::AwsIdentity;
use crate::imports::http::{AwsSigning, HttpError, RequestSigner, request_host};

/// Headers the signer sets; any the request already has are removed before signing.
pub const SIGNER_OWNED_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
];

/// Signs `aws-sigv4` requests with a provider's [`AwsIdentity`]; the HTTP client's
/// [`RequestSigner`].
#[derive(Clone, Debug)]
pub struct AwsSigner {
    identity: AwsIdentity,
}

impl AwsSigner {
    pub fn new(identity: AwsIdentity) -> Self {
        AwsSigner { identity }
    }

    pub fn identity(&self) -> &AwsIdentity {
        &self.identity
    }

    /// Resolves credentials for `signing` (cached) and signs `request` in place.
    pub async fn sign_request(
        &self,
        request: &mut http::Request<Bytes>,
        signing: &AwsSigning,
    ) -> Result<(), HttpError> {
        check_name("service", &signing.service)?;
        check_name("region", &signing.region)?;
        let credentials = self
            .identity
            .credentials(&signing.region, &signing.credentials)
            .await?;
        sign_with_credentials(
            request,
            &signing.service,
            &signing.region,
            &credentials,
            SystemTime::now(),
        )
    }
}

impl RequestSigner for AwsSigner {
    fn sign<'a>(
        &'a self,
        request: &'a mut http::Request<Bytes>,
        signing: &'a AwsSigning,
    ) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(self.sign_request(request, signing))
    }
}

/// Service and region names go into the credential scope: lower-case letters, digits, `-`.
fn check_name(what: &str, name: &str) -> Result<(), HttpError> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if plain {
        Ok(())
    } else {
        Err(HttpError::InvalidRequest(format!(
            "the AWS signing {what} must be lower-case letters, digits and '-'"
        )))
    }
}

/// Signs `request` with `credentials` at `time`: removes [`SIGNER_OWNED_HEADERS`], then adds
/// `authorization`, `x-amz-date` and, for temporary credentials, `x-amz-security-token`.
pub fn sign_with_credentials(
    request: &mut http::Request<Bytes>,
    service: &str,
    region: &str,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<(), HttpError> {
    for name in SIGNER_OWNED_HEADERS {
        request.headers_mut().remove(*name);
    }
    let host = request_host(request.uri())?;
    let mut signed_headers: Vec<(&str, &str)> = vec![("host", host.as_str())];
    for value in request.headers().get_all(CONTENT_TYPE) {
        let value = value.to_str().map_err(|_| {
            HttpError::InvalidRequest("content-type must be visible ASCII to be signed".into())
        })?;
        signed_headers.push(("content-type", value));
    }

    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|_| HttpError::InvalidRequest("incomplete SigV4 signing parameters".into()))?
        .into();
    let uri = request.uri().to_string();
    let signable = SignableRequest::new(
        request.method().as_str(),
        uri.as_str(),
        signed_headers.into_iter(),
        SignableBody::Bytes(request.body()),
    )
    .map_err(|_| HttpError::InvalidRequest("the request cannot be signed".into()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|_| HttpError::InvalidRequest("the request cannot be signed".into()))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    for header in headers {
        let mut value = HeaderValue::from_str(header.value()).map_err(|_| {
            HttpError::InvalidRequest("the signature produced an invalid header".into())
        })?;
        // The signature is no secret, but it authorizes this request: keep it out of logs.
        value.set_sensitive(
            header.sensitive() || matches!(header.name(), "authorization" | "x-amz-security-token"),
        );
        request
            .headers_mut()
            .insert(HeaderName::from_static(header.name()), value);
    }
    Ok(())
}
