//! `outbound-http`: the only way a plugin reaches the network.
//!
//! **Provides.** [`OutboundClient`], one pooled HTTP client (reqwest over rustls) per
//! provider, with [`OutboundClient::send`] (buffered) and [`OutboundClient::send_streaming`]
//! (the response head, then a [`BodyStream`] of [`Frame`]s split as raw chunks, server-sent
//! events or AWS event-stream messages; see `http/framing.rs`). Authentication is
//! added by the host: `Auth::Bearer` sets `Authorization: Bearer <token>`; `Auth::AwsSigV4`
//! is handed to a [`RequestSigner`], `Auth::OciSignature` to an [`OciRequestSigner`], once the
//! request is final.
//!
//! **Refuses.** Hosts the plugin did not declare, and link-local or cloud-metadata addresses,
//! by URL and after DNS resolution ([`EgressPolicy`], whose documentation states the threat);
//! redirects that leave the policy; URLs that are not `http`/`https` or carry `user:password`;
//! invalid header names and values. Hop-by-hop headers ([`HOP_BY_HOP_HEADERS`], `proxy-*`) and
//! `content-length` are dropped, since the host sets them; with `Bearer` or a signature any
//! `authorization` header the plugin gave is dropped too. Environment proxies
//! (`HTTPS_PROXY`, ...) are not used: a proxy would resolve names where the address check
//! cannot see them.
//!
//! **Limits** (each a constant below, overridable through [`ClientOptions`]): connect timeout,
//! a total timeout per exchange (the request's own `timeout`, else the default; for streams it
//! covers the whole body), an idle timeout between streamed frames, the buffered body size and
//! the size of one frame. [`MAX_REDIRECTS`] is fixed.
//!
//! **Failures** are [`HttpError`]s: connect, DNS and TLS failures are `Connect`, expired
//! timeouts `Timeout`, a body that breaks off or misframes `Protocol`, a limit `TooLarge`.
//! Error texts name the host but never a header value, a token or the URL's query.

mod addresses;
mod body_stream;
mod client;
mod egress;
mod exchange_span;
mod framing;
mod upstream_clock;

pub use addresses::{
    ALLOW_LINK_LOCAL_KEY, AddressRules, ForbiddenAddress, Refusal, filter_resolved,
    is_forbidden_address,
};
pub use body_stream::BodyStream;
pub use client::{ClientSetupError, OutboundClient, StreamingResponse, is_hop_by_hop};
pub use egress::{EgressPolicy, PolicyError};
pub use upstream_clock::UpstreamClock;

use bytes::Bytes;
use futures::future::BoxFuture;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Time allowed to open a TCP connection and finish the TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Total time for an exchange when the request names none; the OpenAI SDKs' default.
/// For `send_streaming` it covers the whole body.
pub const DEFAULT_TOTAL_TIMEOUT: Duration = Duration::from_secs(600);
/// Longest wait for the next chunk of a streamed body: an upstream that goes quiet this long
/// is taken to have hung.
pub const DEFAULT_FRAME_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest response body `send` buffers.
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Largest single frame of a streamed body: an SSE event or an event-stream message (a raw
/// chunk is split to it). Far above what an LLM upstream sends in one event.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Redirects followed per request, each re-checked against the egress policy.
pub const MAX_REDIRECTS: usize = 5;
/// Request headers the host always drops (besides every `proxy-*` header): the host sets
/// them itself.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
/// Environment variables naming PEM files of extra root certificates, read by
/// [`ClientOptions::ca_files_from_env`].
pub const CA_BUNDLE_ENV_VARS: &[&str] = &["SSL_CERT_FILE", "AWS_CA_BUNDLE"];

/// HTTP request methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

impl From<Method> for http::Method {
    fn from(method: Method) -> Self {
        match method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
            Method::Delete => http::Method::DELETE,
            Method::Head => http::Method::HEAD,
        }
    }
}

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

/// The WIT `oci-credential-source`: where the host finds an OCI identity. None of these is a
/// secret: the key file a profile names is read by the host only.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OciCredentialSource {
    /// A profile of an OCI config file; `None` for `OCI_CONFIG_FILE` or `~/.oci/config`, and
    /// for `DEFAULT`.
    ConfigFile {
        file: Option<String>,
        profile: Option<String>,
    },
    /// The instance principal of the compute instance the host runs on.
    InstancePrincipal,
}

/// How the host authenticates a request.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    AwsSigV4(AwsSigning),
    /// OCI's HTTP signature (`Authorization: Signature version="1",...`).
    OciSignature(OciCredentialSource),
    /// A credential source the plugin interface names but this host does not offer yet
    /// (Google, Azure Entra ID, IBM Cloud IAM): the request fails with
    /// [`HttpError::Credentials`] naming it, e.g. `Google access tokens`.
    Unavailable(&'static str),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::Bearer(_) => f.write_str("Bearer(********)"),
            Auth::AwsSigV4(signing) => f.debug_tuple("AwsSigV4").field(signing).finish(),
            Auth::OciSignature(source) => f.debug_tuple("OciSignature").field(source).finish(),
            Auth::Unavailable(source) => f.debug_tuple("Unavailable").field(source).finish(),
        }
    }
}

/// How a streamed body is split into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Raw,
    Sse,
    AwsEventStream,
}

/// A request from a plugin.
#[derive(Clone)]
pub struct OutboundRequest {
    pub method: Method,
    /// Absolute `http://` or `https://` URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// Empty for none.
    pub body: Vec<u8>,
    pub auth: Auth,
    /// Total time for the exchange; `None` for the client's default. The runtime caps it at
    /// the time left for the API request.
    pub timeout: Option<Duration>,
    /// The API request's clock of upstream time; `None` when nobody measures.
    pub clock: Option<Arc<UpstreamClock>>,
    /// The trace context the exchange carries (see `http/exchange_span.rs`).
    pub trace: Option<crate::telemetry::trace::Propagation>,
}

impl fmt::Debug for OutboundRequest {
    // Header values and the body may hold secrets: show names and sizes only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("OutboundRequest")
            .field("method", &self.method)
            .field("header_names", &names)
            .field("body_bytes", &self.body.len())
            .field("auth", &self.auth)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A buffered response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResponse {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One piece of a streamed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The SSE `event:` or the event-stream `:event-type` / `:exception-type`.
    pub event: Option<String>,
    pub data: Vec<u8>,
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

/// The `Host` the client sends for `uri`, which request signers sign: the URL's host, with
/// `:port` unless it is the scheme's default. Refuses a URL that is not `http`/`https` or has
/// no host.
pub fn request_host(uri: &http::Uri) -> Result<String, HttpError> {
    let default_port = match uri.scheme_str() {
        Some("https") => 443,
        Some("http") => 80,
        _ => {
            return Err(HttpError::InvalidRequest(
                "a signed request needs an http or https URL".into(),
            ));
        }
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| HttpError::InvalidRequest("the URL has no host".into()))?;
    Ok(match uri.port_u16() {
        Some(port) if port != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    })
}

/// Signs a final request with AWS SigV4: [`crate::imports::aws::AwsSigner`] implements it
/// (credential resolution and caching included). A client without a signer refuses `AwsSigV4`
/// requests with [`HttpError::Credentials`].
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

/// Signs a final request as OCI specifies: [`crate::imports::oci::OciSigner`] implements it.
/// A client without one refuses `OciSignature` requests with [`HttpError::Credentials`]. Same
/// contract as [`RequestSigner`]: `request` is final, the signer adds its headers in place,
/// its errors hold no secret.
pub trait OciRequestSigner: Send + Sync {
    fn sign<'a>(
        &'a self,
        request: &'a mut http::Request<Bytes>,
        source: &'a OciCredentialSource,
    ) -> BoxFuture<'a, Result<(), HttpError>>;
}

/// Settings of an [`OutboundClient`]; `Default` gives the constants above.
#[derive(Clone)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    pub default_timeout: Duration,
    pub frame_idle_timeout: Duration,
    pub max_buffered_body_bytes: usize,
    pub max_frame_bytes: usize,
    /// PEM files whose certificates are trusted in addition to the system's roots.
    pub extra_ca_files: Vec<PathBuf>,
    /// No certificate check at all (a provider's `network.tls.verify: false`).
    pub accept_invalid_certs: bool,
    /// Sent on every request unless the plugin sets the same header (`network.headers`).
    pub default_headers: Vec<(String, String)>,
    /// Signs `AwsSigV4` requests; `None` refuses them.
    pub signer: Option<Arc<dyn RequestSigner>>,
    /// Signs `OciSignature` requests; `None` refuses them.
    pub oci_signer: Option<Arc<dyn OciRequestSigner>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            default_timeout: DEFAULT_TOTAL_TIMEOUT,
            frame_idle_timeout: DEFAULT_FRAME_IDLE_TIMEOUT,
            max_buffered_body_bytes: DEFAULT_MAX_BUFFERED_BODY_BYTES,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            extra_ca_files: Vec::new(),
            accept_invalid_certs: false,
            default_headers: Vec::new(),
            signer: None,
            oci_signer: None,
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("default_timeout", &self.default_timeout)
            .field("frame_idle_timeout", &self.frame_idle_timeout)
            .field("max_buffered_body_bytes", &self.max_buffered_body_bytes)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("extra_ca_files", &self.extra_ca_files)
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field(
                "default_headers",
                &self
                    .default_headers
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .field("signer", &self.signer.as_ref().map(|_| "configured"))
            .finish()
    }
}

impl ClientOptions {
    /// The files named by `SSL_CERT_FILE` and `AWS_CA_BUNDLE` (set and non-empty), looked
    /// up with `lookup` (the process environment in production).
    pub fn ca_files_from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
        CA_BUNDLE_ENV_VARS
            .iter()
            .filter_map(|name| lookup(name))
            .filter(|value| !value.trim().is_empty())
            .map(PathBuf::from)
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests;
