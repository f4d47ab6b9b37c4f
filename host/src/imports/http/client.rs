//! [`OutboundClient`]: request checks, header handling, authentication, timeouts and the
//! mapping of transport failures to [`HttpError`]; see the parent module for the rules.

use super::addresses::{ForbiddenAddress, PolicyResolver};
use super::body_stream::BodyStream;
use super::egress::EgressPolicy;
use super::exchange_span;
use super::framing::FrameDecoder;
use super::{
    Auth, ClientOptions, Framing, HOP_BY_HOP_HEADERS, HttpError, MAX_REDIRECTS, OutboundRequest,
    OutboundResponse,
};
use crate::serving_threads;
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::Url;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// The client could not be built; the text names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientSetupError(String);

/// One provider's pooled outbound client: one connection pool per serving thread, built on
/// that thread's first request, and a shared one for every other thread, built at once (it
/// checks the settings), so a pooled connection is driven by the thread that uses it (see
/// [`crate::serving_threads`]).
#[derive(Clone)]
pub struct OutboundClient {
    shared: reqwest::Client,
    per_thread: Arc<[OnceLock<reqwest::Client>]>,
    certificates: Arc<[reqwest::Certificate]>,
    policy: Arc<EgressPolicy>,
    options: Arc<ClientOptions>,
}

impl fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundClient")
            .field("policy", &self.policy)
            .field("options", &self.options)
            .finish()
    }
}

/// A response whose body is still arriving.
#[derive(Debug)]
pub struct StreamingResponse {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: BodyStream,
}

impl OutboundClient {
    /// Builds the client. Fails when an extra CA file cannot be read or holds no PEM
    /// certificate, or when the TLS stack cannot start.
    pub fn new(policy: EgressPolicy, options: ClientOptions) -> Result<Self, ClientSetupError> {
        let policy = Arc::new(policy);
        let mut certificates = Vec::new();
        for file in &options.extra_ca_files {
            let pem = std::fs::read(file).map_err(|error| {
                ClientSetupError(format!("cannot read CA bundle {}: {error}", file.display()))
            })?;
            let bundle = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                ClientSetupError(format!(
                    "CA bundle {} is not valid PEM: {error}",
                    file.display()
                ))
            })?;
            if bundle.is_empty() {
                return Err(ClientSetupError(format!(
                    "CA bundle {} holds no PEM certificate",
                    file.display()
                )));
            }
            certificates.extend(bundle);
        }
        let shared = build_client(&policy, &options, certificates.clone())?;
        Ok(OutboundClient {
            shared,
            per_thread: (0..serving_threads::count())
                .map(|_| OnceLock::new())
                .collect(),
            certificates: certificates.into(),
            policy,
            options: Arc::new(options),
        })
    }

    /// The client of the calling thread's pool.
    fn client(&self) -> &reqwest::Client {
        let Some(slot) = serving_threads::current()
            .checked_sub(1)
            .and_then(|index| self.per_thread.get(index))
        else {
            return &self.shared;
        };
        if let Some(client) = slot.get() {
            return client;
        }
        // The shared client was built from the same settings, so this fails only when the
        // TLS stack cannot start again; the shared pool still serves.
        match build_client(&self.policy, &self.options, self.certificates.to_vec()) {
            Ok(client) => slot.get_or_init(|| client),
            Err(error) => {
                tracing::warn!("{error}; using the shared connection pool");
                &self.shared
            }
        }
    }

    /// How many serving threads have built their own pool so far.
    #[cfg(test)]
    pub(super) fn thread_pools_built(&self) -> usize {
        self.per_thread
            .iter()
            .filter(|slot| slot.get().is_some())
            .count()
    }

    /// The policy requests are checked against.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Sends a request and reads the whole response, up to `max_buffered_body_bytes`.
    pub async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let clock = request.clock.clone();
        let Prepared {
            request,
            host,
            deadline,
            total,
            mut span,
        } = self.prepare(request).await?;
        let started = Instant::now();
        let exchange = async {
            let mut response = self
                .client()
                .execute(request)
                .await
                .map_err(|e| map_reqwest_error(&e, &host))?;
            let limit = self.options.max_buffered_body_bytes;
            let too_large = || {
                HttpError::TooLarge(format!(
                    "the response body from {host} exceeds the host's limit of {limit} bytes"
                ))
            };
            if response
                .content_length()
                .is_some_and(|length| length > limit as u64)
            {
                return Err(too_large());
            }
            let status = response.status().as_u16();
            let headers = lower_case_headers(response.headers());
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| map_reqwest_error(&e, &host))?
            {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(OutboundResponse {
                status,
                headers,
                body,
            })
        };
        let result = tokio::time::timeout_at(deadline, exchange)
            .await
            .unwrap_or_else(|_| Err(timed_out(&host, total)));
        if let Some(clock) = clock {
            clock.count_exchange();
            clock.add(started.elapsed());
        }
        match &result {
            Ok(response) => exchange_span::answered(&mut span, response.status),
            Err(error) => exchange_span::failed(&mut span, error),
        }
        result
    }

    /// Sends a request and returns once the response head has arrived; the body follows
    /// frame by frame through [`BodyStream::next`].
    pub async fn send_streaming(
        &self,
        request: OutboundRequest,
        framing: Framing,
    ) -> Result<StreamingResponse, HttpError> {
        let clock = request.clock.clone();
        let Prepared {
            request,
            host,
            deadline,
            total,
            mut span,
        } = self.prepare(request).await?;
        let started = Instant::now();
        let head = tokio::time::timeout_at(deadline, self.client().execute(request)).await;
        if let Some(clock) = &clock {
            clock.count_exchange();
            clock.add(started.elapsed());
        }
        let response = match head {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => {
                let error = map_reqwest_error(&error, &host);
                exchange_span::failed(&mut span, &error);
                return Err(error);
            }
            Err(_) => {
                let error = timed_out(&host, total);
                exchange_span::failed(&mut span, &error);
                return Err(error);
            }
        };
        let status = response.status().as_u16();
        exchange_span::answered(&mut span, status);
        let headers = lower_case_headers(response.headers());
        let body = BodyStream::new(
            Box::pin(response.bytes_stream()),
            // An error answer is not an event stream: hand it over as it comes, so the plugin
            // can quote it.
            FrameDecoder::new(
                if (200..300).contains(&status) {
                    framing
                } else {
                    Framing::Raw
                },
                self.options.max_frame_bytes,
            ),
            host,
            deadline,
            total,
            self.options.frame_idle_timeout,
        )
        .timed_by(clock)
        .spanned(span);
        Ok(StreamingResponse {
            status,
            headers,
            body,
        })
    }

    /// Checks and builds the request: URL and policy, headers, authentication, deadline.
    async fn prepare(&self, request: OutboundRequest) -> Result<Prepared, HttpError> {
        let total = request.timeout.unwrap_or(self.options.default_timeout);
        let deadline = Instant::now() + total;
        let url = Url::parse(&request.url)
            .map_err(|error| HttpError::InvalidRequest(format!("the URL is not valid: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HttpError::InvalidRequest(format!(
                "the URL scheme must be http or https, not {}",
                url.scheme()
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::InvalidRequest(
                "the URL must not contain user:password; send credentials with `auth` or a header"
                    .to_owned(),
            ));
        }
        self.policy.check_url(&url)?;
        let host = url.host_str().unwrap_or_default().to_owned();

        let strip_authorization = !matches!(request.auth, Auth::None);
        let mut headers = build_headers(&request.headers, strip_authorization)?;
        let span = exchange_span::start(&request, &url, &mut headers);
        let mut builder = http::Request::builder()
            .method(http::Method::from(request.method))
            .uri(url.as_str());
        if let Some(map) = builder.headers_mut() {
            *map = headers;
        }
        let mut prepared = builder.body(Bytes::from(request.body)).map_err(|error| {
            HttpError::InvalidRequest(format!("the request cannot be built: {error}"))
        })?;

        match &request.auth {
            Auth::None => {}
            Auth::Bearer(token) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                    HttpError::InvalidRequest(
                        "the bearer token is not a valid header value (control or non-ASCII characters)".to_owned(),
                    )
                })?;
                value.set_sensitive(true);
                prepared.headers_mut().insert(AUTHORIZATION, value);
            }
            Auth::AwsSigV4(signing) => match &self.options.signer {
                Some(signer) => {
                    tokio::time::timeout_at(deadline, signer.sign(&mut prepared, signing))
                        .await
                        .unwrap_or_else(|_| Err(timed_out(&host, total)))?;
                }
                None => {
                    return Err(HttpError::Credentials(
                        "AWS SigV4 signing is not available yet in this build".to_owned(),
                    ));
                }
            },
            Auth::OciSignature(source) => match &self.options.oci_signer {
                Some(signer) => {
                    tokio::time::timeout_at(deadline, signer.sign(&mut prepared, source))
                        .await
                        .unwrap_or_else(|_| Err(timed_out(&host, total)))?;
                }
                None => {
                    return Err(HttpError::Credentials(
                        "OCI request signing is not available in this build".to_owned(),
                    ));
                }
            },
            Auth::Unavailable(source) => {
                return Err(HttpError::Credentials(format!(
                    "{source} are not available in this ogx yet: configure the provider with an API key (bearer auth) instead"
                )));
            }
        }
        let prepared = reqwest::Request::try_from(prepared).map_err(|error| {
            HttpError::InvalidRequest(format!(
                "the request cannot be built: {}",
                error_chain(&error)
            ))
        })?;
        Ok(Prepared {
            request: prepared,
            host,
            deadline,
            total,
            span,
        })
    }
}

/// A request ready to go, with what its errors and timeouts need.
struct Prepared {
    request: reqwest::Request,
    /// The URL's host, for error messages (the full URL may hold a key in its query).
    host: String,
    deadline: Instant,
    total: Duration,
    /// The exchange's CLIENT span, when tracing is on.
    span: Option<crate::telemetry::trace::Span>,
}

/// A redirect that the policy refused; found again in the error chain to report `Denied`.
#[derive(Debug)]
struct RedirectRefused(String);

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redirect refused: {}", self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// One pooled reqwest client with the egress policy's resolver and redirect check.
fn build_client(
    policy: &Arc<EgressPolicy>,
    options: &ClientOptions,
    certificates: Vec<reqwest::Certificate>,
) -> Result<reqwest::Client, ClientSetupError> {
    let redirect_policy = Arc::clone(policy);
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(options.connect_timeout)
        .dns_resolver(PolicyResolver {
            rules: policy.addresses(),
        })
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match redirect_policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(denied) => attempt.error(RedirectRefused(denied.to_string())),
            }
        }))
        .tls_certs_merge(certificates)
        .danger_accept_invalid_certs(options.accept_invalid_certs)
        .default_headers(default_headers(&options.default_headers)?)
        .build()
        .map_err(|error| {
            ClientSetupError(format!(
                "cannot start the HTTP client: {}",
                error_chain(&error)
            ))
        })
}

/// The configured `network.headers`; a name or value HTTP does not allow fails the set-up.
fn default_headers(headers: &[(String, String)]) -> Result<HeaderMap, ClientSetupError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = || {
            ClientSetupError(format!(
                "network.headers: {name:?} is not a valid HTTP header"
            ))
        };
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        value.set_sensitive(true);
        map.insert(name, value);
    }
    Ok(map)
}

/// The plugin's headers, checked, with hop-by-hop (and, when the host authenticates,
/// `authorization`) headers removed. Errors name the header, never its value.
fn build_headers(
    headers: &[(String, String)],
    strip_authorization: bool,
) -> Result<HeaderMap, HttpError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| HttpError::InvalidRequest(format!("invalid header name {name:?}")))?;
        if is_hop_by_hop(name.as_str()) || (strip_authorization && name == AUTHORIZATION) {
            continue;
        }
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| HttpError::InvalidRequest(format!("invalid value for header {name}")))?;
        if name == AUTHORIZATION {
            value.set_sensitive(true);
        }
        map.append(name, value);
    }
    Ok(map)
}

/// Whether the host drops this (lower-case) header name from a plugin's request.
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP_HEADERS.contains(&name) || name.starts_with("proxy-")
}

fn lower_case_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    // `HeaderName`s are stored in lower case already.
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

pub(super) fn timed_out(host: &str, total: Duration) -> HttpError {
    HttpError::Timeout(format!(
        "the exchange with {host} took longer than {}",
        seconds(total)
    ))
}

pub(super) fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// The messages of `error`'s sources, outermost first. reqwest's own message includes the
/// URL (whose query may hold a key), so it is skipped; the sources below it do not.
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        "unknown error".to_owned()
    } else {
        parts.join(": ")
    }
}

/// Maps a reqwest failure to the WIT error, naming `host` but not the URL.
pub(super) fn map_reqwest_error(error: &reqwest::Error, host: &str) -> HttpError {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(forbidden) = cause.downcast_ref::<ForbiddenAddress>() {
            return HttpError::Denied(forbidden.to_string());
        }
        if let Some(RedirectRefused(why)) = cause.downcast_ref::<RedirectRefused>() {
            return HttpError::Denied(format!("{host} redirected: {why}"));
        }
        source = cause.source();
    }
    let detail = error_chain(error);
    if error.is_timeout() {
        HttpError::Timeout(format!("{host}: {detail}"))
    } else if error.is_connect() {
        HttpError::Connect(format!("could not connect to {host}: {detail}"))
    } else if error.is_builder() {
        HttpError::InvalidRequest(detail)
    } else {
        HttpError::Protocol(format!("the exchange with {host} failed: {detail}"))
    }
}
