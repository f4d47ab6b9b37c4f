//! Outbound HTTP through the host's pooled client (the WIT `outbound-http` import). On the
//! host target (native `cargo test`) requests go to the [`crate::testing`] fake host instead.
//!
//! The host sends only to hosts the plugin declared in [`crate::Descriptor::outbound_hosts`]
//! and the operator allowed, never to link-local or cloud-metadata addresses, with a bounded
//! timeout. Authentication is added by the host after the request is final:
//! [`Request::bearer`] sets the `Authorization` header, [`Request::aws_sigv4`] signs the
//! request with credentials the plugin never sees, [`Request::oci_signature`] has it signed
//! with an OCI API key the plugin never sees.
//!
//! ```no_run
//! use ogx_provider_sdk::http::{Framing, Request};
//! # fn demo() -> Result<(), ogx_provider_sdk::ProviderError> {
//! let response = Request::post("https://api.example.com/v1/chat/completions")
//!     .bearer("sk-...")
//!     .json(&serde_json::json!({"model": "m", "messages": []}))
//!     .send()?
//!     .error_for_status()?;
//! let completion: serde_json::Value = response.json()?;
//!
//! let stream = Request::post("https://api.example.com/v1/chat/completions")
//!     .json(&serde_json::json!({"model": "m", "messages": [], "stream": true}))
//!     .send_streaming(Framing::Sse)?
//!     .error_for_status()?;
//! for frame in stream.body {
//!     let frame = frame?;
//!     println!("{}", frame.data_str());
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::ogx::provider::outbound_http as wit;
use crate::ProviderError;

/// HTTP request methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `HEAD`
    Head,
}

/// How [`BodyStream`] splits a streamed response body into [`Frame`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Byte chunks as they arrive from the network.
    Raw,
    /// One server-sent event per frame: its `event:` field and its `data:` lines joined with
    /// newlines. Comments and events without data are skipped.
    Sse,
    /// One AWS event-stream message per frame, checked, with `:event-type` (or
    /// `:exception-type`) as the event.
    AwsEventStream,
}

/// Where the host finds AWS credentials for a SigV4-signed request. None of these is a
/// secret; every `None` falls back as the AWS SDKs do (environment, shared profile, container
/// and instance credentials).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsCredentialSource {
    /// Shared-config profile to read; `None` for the default profile.
    pub profile_name: Option<String>,
    /// Role to assume through STS; `None` to use the base credentials directly.
    pub role_arn: Option<String>,
    /// With `role_arn`: a file holding an OIDC token for `AssumeRoleWithWebIdentity`.
    pub web_identity_token_file: Option<String>,
    /// STS session name; `None` for a random one.
    pub role_session_name: Option<String>,
    /// Lifetime asked of STS, in seconds; `None` for 3600.
    pub session_ttl_seconds: Option<u32>,
}

/// Where the host finds the OCI identity that signs a request ([`Request::oci_signature`]).
/// None of these is a secret: the host reads the key file a profile names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciCredentialSource {
    /// A profile of an OCI config file.
    ConfigFile {
        /// The config file; `None` for `OCI_CONFIG_FILE`, else `~/.oci/config`.
        file: Option<String>,
        /// The profile; `None` for `DEFAULT`.
        profile: Option<String>,
    },
    /// The instance principal of the compute instance the host runs on.
    InstancePrincipal,
}

/// Why an outbound request failed before a response status arrived, or while the body was
/// being read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The host is not one the plugin declared or the operator allowed, or it resolves to a
    /// forbidden address.
    Denied(String),
    /// The request is malformed: bad URL, bad header name or value, a body that would not
    /// serialize.
    InvalidRequest(String),
    /// No connection could be made (DNS, refused, TLS handshake).
    Connect(String),
    /// The exchange took longer than allowed.
    Timeout(String),
    /// AWS credentials could not be resolved for a SigV4 request.
    Credentials(String),
    /// The response broke off or its framing was invalid.
    Protocol(String),
    /// A buffered body, or one frame, exceeded the host's size limit.
    TooLarge(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied(m) => write!(f, "outbound request denied: {m}"),
            HttpError::InvalidRequest(m) => write!(f, "invalid outbound request: {m}"),
            HttpError::Connect(m) => write!(f, "could not connect to the upstream: {m}"),
            HttpError::Timeout(m) => write!(f, "the upstream did not answer in time: {m}"),
            HttpError::Credentials(m) => write!(f, "could not obtain the cloud credentials: {m}"),
            HttpError::Protocol(m) => write!(f, "the upstream response broke off: {m}"),
            HttpError::TooLarge(m) => write!(f, "the upstream response is too large: {m}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Transport failures as the client sees them: a timeout is 504, a bad request the plugin
/// built from client input is 400, missing AWS credentials are 500, the rest is 502.
impl From<HttpError> for ProviderError {
    fn from(err: HttpError) -> Self {
        let message = err.to_string();
        match err {
            HttpError::Timeout(_) => ProviderError::Timeout(message),
            HttpError::InvalidRequest(_) => ProviderError::InvalidRequest(message),
            HttpError::Credentials(_) => ProviderError::Internal(message),
            HttpError::Denied(_)
            | HttpError::Connect(_)
            | HttpError::Protocol(_)
            | HttpError::TooLarge(_) => ProviderError::BadGateway(message),
        }
    }
}

impl From<wit::HttpError> for HttpError {
    fn from(err: wit::HttpError) -> Self {
        match err {
            wit::HttpError::Denied(m) => HttpError::Denied(m),
            wit::HttpError::InvalidRequest(m) => HttpError::InvalidRequest(m),
            wit::HttpError::Connect(m) => HttpError::Connect(m),
            wit::HttpError::Timeout(m) => HttpError::Timeout(m),
            wit::HttpError::Credentials(m) => HttpError::Credentials(m),
            wit::HttpError::Protocol(m) => HttpError::Protocol(m),
            wit::HttpError::TooLarge(m) => HttpError::TooLarge(m),
        }
    }
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(String),
    AwsSigV4 {
        service: String,
        region: String,
        credentials: AwsCredentialSource,
    },
    OciSignature(OciCredentialSource),
}

/// An outbound request being built. Nothing is sent until [`Request::send`] or
/// [`Request::send_streaming`].
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    auth: Auth,
    timeout: Option<Duration>,
    build_error: Option<String>,
}

impl Request {
    /// A request with `method` to an absolute `http://` or `https://` URL.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            auth: Auth::None,
            timeout: None,
            build_error: None,
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Request::new(Method::Get, url)
    }

    /// A `POST` request.
    pub fn post(url: impl Into<String>) -> Self {
        Request::new(Method::Post, url)
    }

    /// A `PUT` request.
    pub fn put(url: impl Into<String>) -> Self {
        Request::new(Method::Put, url)
    }

    /// A `PATCH` request.
    pub fn patch(url: impl Into<String>) -> Self {
        Request::new(Method::Patch, url)
    }

    /// A `DELETE` request.
    pub fn delete(url: impl Into<String>) -> Self {
        Request::new(Method::Delete, url)
    }

    /// Adds a header (names are case-insensitive; hop-by-hop headers are ignored by the host).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the raw body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`. A value that does not
    /// serialize makes `send` fail with [`HttpError::InvalidRequest`].
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => self.body = body,
            Err(err) => self.build_error = Some(format!("the JSON body does not serialize: {err}")),
        }
        self.header("content-type", "application/json")
    }

    /// Has the host send `Authorization: Bearer <token>`, replacing any `authorization`
    /// header.
    pub fn bearer(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Bearer(token.into());
        self
    }

    /// Has the host sign the final request with AWS Signature Version 4 for `service` (the
    /// signing name, e.g. `bedrock`) in `region`, with credentials from `credentials`.
    pub fn aws_sigv4(
        mut self,
        service: impl Into<String>,
        region: impl Into<String>,
        credentials: AwsCredentialSource,
    ) -> Self {
        self.auth = Auth::AwsSigV4 {
            service: service.into(),
            region: region.into(),
            credentials,
        };
        self
    }

    /// Has the host sign the final request as OCI specifies (`Authorization: Signature ...`)
    /// with the identity `source` names; the plugin never sees the key.
    pub fn oci_signature(mut self, source: OciCredentialSource) -> Self {
        self.auth = Auth::OciSignature(source);
        self
    }

    /// Total time allowed for the exchange; the host caps it at the time left for the API
    /// request. Without it the host's default applies.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn into_wit(self) -> Result<wit::Request, HttpError> {
        if let Some(err) = self.build_error {
            return Err(HttpError::InvalidRequest(err));
        }
        let auth = match self.auth {
            Auth::None => wit::Auth::None,
            Auth::Bearer(token) => wit::Auth::Bearer(token),
            Auth::AwsSigV4 {
                service,
                region,
                credentials,
            } => wit::Auth::AwsSigv4(wit::AwsSigning {
                service,
                region,
                credentials: wit::AwsCredentialSource {
                    profile_name: credentials.profile_name,
                    role_arn: credentials.role_arn,
                    web_identity_token_file: credentials.web_identity_token_file,
                    role_session_name: credentials.role_session_name,
                    session_ttl_seconds: credentials.session_ttl_seconds,
                },
            }),
            Auth::OciSignature(OciCredentialSource::ConfigFile { file, profile }) => {
                wit::Auth::OciSignature(wit::OciCredentialSource::ConfigFile(
                    wit::OciConfigProfile { file, profile },
                ))
            }
            Auth::OciSignature(OciCredentialSource::InstancePrincipal) => {
                wit::Auth::OciSignature(wit::OciCredentialSource::InstancePrincipal)
            }
        };
        Ok(wit::Request {
            method: match self.method {
                Method::Get => wit::Method::Get,
                Method::Post => wit::Method::Post,
                Method::Put => wit::Method::Put,
                Method::Patch => wit::Method::Patch,
                Method::Delete => wit::Method::Delete,
                Method::Head => wit::Method::Head,
            },
            url: self.url,
            headers: self.headers,
            body: self.body,
            auth,
            timeout_ms: self
                .timeout
                .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX)),
        })
    }

    /// Sends the request and reads the whole response (bounded by a host limit). An error
    /// status is still `Ok`: see [`Response::error_for_status`].
    pub fn send(self) -> Result<Response, HttpError> {
        let request = self.into_wit()?;
        #[cfg(target_arch = "wasm32")]
        {
            let response = wit::send(&request)?;
            Ok(Response {
                status: response.status,
                headers: response.headers,
                body: response.body,
            })
        }
        #[cfg(not(target_arch = "wasm32"))]
        crate::testing::send(&request)
    }

    /// Sends the request and returns as soon as the response head arrives; the body is read
    /// frame by frame, split as `framing` says.
    pub fn send_streaming(self, framing: Framing) -> Result<StreamingResponse, HttpError> {
        let request = self.into_wit()?;
        #[cfg(target_arch = "wasm32")]
        let (status, headers, inner) = {
            let framing = match framing {
                Framing::Raw => wit::Framing::Raw,
                Framing::Sse => wit::Framing::Sse,
                Framing::AwsEventStream => wit::Framing::AwsEventStream,
            };
            let response = wit::send_streaming(&request, framing)?;
            (response.status, response.headers, response.body)
        };
        #[cfg(not(target_arch = "wasm32"))]
        let (status, headers, inner) = crate::testing::send_streaming(&request, framing)?;
        Ok(StreamingResponse {
            status,
            headers,
            body: BodyStream { inner: Some(inner) },
        })
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A buffered response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON; an unreadable body is a 502.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|err| {
            ProviderError::BadGateway(format!(
                "the upstream answered {} with a body that is not the expected JSON: {err}",
                self.status
            ))
        })
    }

    /// `self` when the status is 2xx, otherwise [`ProviderError::from_upstream`] (with the
    /// answer's `retry-after`, see [`upstream_error`]).
    pub fn error_for_status(self) -> Result<Self, ProviderError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(upstream_error(self.status, &self.headers, &self.body))
        }
    }
}

/// A response whose body is still arriving.
#[derive(Debug)]
pub struct StreamingResponse {
    /// The HTTP status.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, frame by frame. Dropping it closes the upstream connection.
    pub body: BodyStream,
}

impl StreamingResponse {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// `self` when the status is 2xx; otherwise reads the rest of the body and returns
    /// [`ProviderError::from_upstream`] with it.
    pub fn error_for_status(self) -> Result<Self, ProviderError> {
        if self.is_success() {
            return Ok(self);
        }
        let (status, headers) = (self.status, self.headers);
        let mut body = Vec::new();
        for frame in self.body {
            match frame {
                Ok(frame) => {
                    if !body.is_empty() {
                        body.push(b'\n');
                    }
                    body.extend_from_slice(&frame.data);
                }
                Err(_) => break,
            }
        }
        Err(upstream_error(status, &headers, &body))
    }
}

/// The error for an upstream's error answer, keeping its `retry-after` header when it has one
/// (the host's retries honour it and pass it on to the client).
fn upstream_error(status: u16, headers: &[(String, String)], body: &[u8]) -> ProviderError {
    match find_header(headers, "retry-after") {
        Some(value) => ProviderError::from_upstream_response(
            status,
            &[("retry-after".to_string(), value.to_string())],
            body,
        ),
        None => ProviderError::from_upstream(status, body),
    }
}

/// One piece of a streamed body; see [`Framing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The SSE `event:` field or the event-stream `:event-type`; `None` for raw chunks and
    /// SSE events without an `event:` line.
    pub event: Option<String>,
    /// The SSE data lines joined with newlines, the event-stream payload, or raw bytes.
    pub data: Vec<u8>,
}

impl Frame {
    /// The data as text (invalid UTF-8 replaced).
    pub fn data_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.data)
    }
}

/// A response body being received, as an iterator of frames. It ends after the last frame
/// or the first error; dropping it closes the upstream connection.
pub struct BodyStream {
    inner: Option<BodySource>,
}

/// Where frames come from: the host's stream resource, or (native tests) the fake host's
/// recorded frames.
#[cfg(target_arch = "wasm32")]
type BodySource = wit::BodyStream;
#[cfg(not(target_arch = "wasm32"))]
type BodySource = std::collections::VecDeque<Frame>;

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("open", &self.inner.is_some())
            .finish()
    }
}

impl Iterator for BodyStream {
    type Item = Result<Frame, HttpError>;

    #[cfg(not(target_arch = "wasm32"))]
    fn next(&mut self) -> Option<Self::Item> {
        let frame = self.inner.as_mut()?.pop_front();
        if frame.is_none() {
            self.inner = None;
        }
        frame.map(Ok)
    }

    #[cfg(target_arch = "wasm32")]
    fn next(&mut self) -> Option<Self::Item> {
        let result = self.inner.as_ref()?.next();
        match result {
            Ok(Some(frame)) => Some(Ok(Frame {
                event: frame.event,
                data: frame.data,
            })),
            Ok(None) => {
                self.inner = None;
                None
            }
            Err(err) => {
                self.inner = None;
                Some(Err(err.into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_errors_map_to_client_statuses() {
        let cases = [
            (HttpError::Timeout("t".into()), "Timeout"),
            (HttpError::Connect("c".into()), "BadGateway"),
            (HttpError::Denied("d".into()), "BadGateway"),
            (HttpError::Protocol("p".into()), "BadGateway"),
            (HttpError::TooLarge("l".into()), "BadGateway"),
            (HttpError::InvalidRequest("i".into()), "InvalidRequest"),
            (HttpError::Credentials("k".into()), "Internal"),
        ];
        for (err, want) in cases {
            let got = format!("{:?}", ProviderError::from(err.clone()));
            assert!(got.starts_with(want), "{err:?} -> {got}");
        }
    }

    #[test]
    fn error_for_status_keeps_the_retry_after() {
        let response = Response {
            status: 429,
            headers: vec![
                ("retry-after".into(), "2".into()),
                ("x-other".into(), "x".into()),
            ],
            body: b"slow down".to_vec(),
        };
        assert_eq!(
            response.error_for_status(),
            Err(ProviderError::UpstreamWithHeaders {
                status: 429,
                message: "slow down".into(),
                headers: vec![("retry-after".into(), "2".into())],
            })
        );
    }

    #[test]
    fn error_for_status_uses_the_upstream_message() {
        let response = Response {
            status: 401,
            headers: vec![],
            body: br#"{"error":"nope"}"#.to_vec(),
        };
        assert_eq!(
            response.error_for_status(),
            Err(ProviderError::Upstream {
                status: 401,
                message: "Error code: 401 - {'error': 'nope'}".into()
            })
        );
    }

    #[test]
    fn json_records_the_body_and_content_type() {
        let request = Request::post("http://x/").json(&serde_json::json!({"a": 1}));
        assert_eq!(request.body, br#"{"a":1}"#);
        assert_eq!(
            find_header(&request.headers, "Content-Type"),
            Some("application/json")
        );
    }
}
