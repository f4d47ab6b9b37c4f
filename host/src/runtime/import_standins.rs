//! TEMPORARY stand-ins for the host-native import implementations that the `imports` branch
//! provides in `crate::imports::{http, config, logging, kv}`. This is the ONE place the runtime
//! names them: at merge, delete this file and point the `use` in `host_imports.rs`,
//! `instance.rs` and `provider.rs` at `crate::imports` instead.
//!
//! The shapes (names, fields, `async fn` signatures) follow the agreed contract so the swap is
//! mechanical. The behaviour is deliberately minimal:
//! - `OutboundClient`: one reqwest client; the egress check only matches the URL's host
//!   against the declared patterns (no DNS-rebinding or metadata-address checks, no header
//!   stripping, no body caps); `aws-sigv4` is refused with `HttpError::Credentials`;
//!   framings `raw` and `sse` only (`aws-event-stream` is a `Protocol` error).
//! - `EnvView`: the declared names, read through the runtime's env lookup.
//! - `PluginLogger`: `tracing` events with provider id and request id.
//! - `KvStore` / `KvNamespace`: in memory (the SQLite path is accepted and ignored).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// Where AWS credentials come from (no field is a secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsCredentialSource {
    pub profile_name: Option<String>,
    pub role_arn: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub role_session_name: Option<String>,
    pub session_ttl_seconds: Option<u32>,
}

/// How the host authenticates an outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Bearer(String),
    AwsSigV4 {
        service: String,
        region: String,
        credentials: AwsCredentialSource,
    },
}

/// How a streamed body is split into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Raw,
    Sse,
    AwsEventStream,
}

#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub auth: Auth,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: Option<String>,
    pub data: Vec<u8>,
}

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
    #[allow(
        dead_code,
        reason = "part of the imports contract; the stand-in never hits a limit"
    )]
    TooLarge(String),
}

/// Stand-in for the pooled, policy-checked client of one provider.
pub struct OutboundClient {
    client: reqwest::Client,
    allowed_hosts: Vec<String>,
}

impl OutboundClient {
    /// A client that may reach the hosts matching `outbound_hosts` (the descriptor's list).
    pub fn new(outbound_hosts: &[String]) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(OutboundClient {
            client,
            allowed_hosts: outbound_hosts.to_vec(),
        })
    }

    fn allows(&self, url: &reqwest::Url) -> bool {
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or_default();
        self.allowed_hosts.iter().any(|pattern| {
            let (scheme, rest) = match pattern.split_once("://") {
                Some((s, r)) => (Some(s), r),
                None => (None, pattern.as_str()),
            };
            let (pat_host, pat_port) = match rest.rsplit_once(':') {
                Some((h, p)) => (h, p.parse::<u16>().ok()),
                None => (rest, None),
            };
            scheme.is_none_or(|s| s == url.scheme())
                && pat_port.is_none_or(|p| p == port)
                && (pat_host == "*"
                    || pat_host.eq_ignore_ascii_case(host)
                    || pat_host
                        .strip_prefix("*.")
                        .is_some_and(|d| host.len() > d.len() && host.ends_with(&format!(".{d}"))))
        })
    }

    async fn start(&self, req: OutboundRequest) -> Result<reqwest::Response, HttpError> {
        let url = reqwest::Url::parse(&req.url)
            .map_err(|e| HttpError::InvalidRequest(format!("bad URL {}: {e}", req.url)))?;
        if !self.allows(&url) {
            return Err(HttpError::Denied(format!(
                "{} is not a declared outbound host",
                url.host_str().unwrap_or("")
            )));
        }
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Head => reqwest::Method::HEAD,
        };
        let mut builder = self.client.request(method, url).body(req.body);
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        match req.auth {
            Auth::None => {}
            Auth::Bearer(token) => builder = builder.bearer_auth(token),
            Auth::AwsSigV4 { .. } => {
                return Err(HttpError::Credentials(
                    "AWS signing is not available in this build".into(),
                ));
            }
        }
        if let Some(timeout) = req.timeout {
            builder = builder.timeout(timeout);
        }
        builder.send().await.map_err(|e| {
            if e.is_timeout() {
                HttpError::Timeout(e.to_string())
            } else if e.is_builder() {
                HttpError::InvalidRequest(e.to_string())
            } else {
                HttpError::Connect(e.to_string())
            }
        })
    }

    pub async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, HttpError> {
        let response = self.start(req).await?;
        let (status, headers) = head(&response);
        let body = response
            .bytes()
            .await
            .map_err(|e| HttpError::Protocol(e.to_string()))?;
        Ok(OutboundResponse {
            status,
            headers,
            body: body.to_vec(),
        })
    }

    pub async fn send_streaming(
        &self,
        req: OutboundRequest,
        framing: Framing,
    ) -> Result<(u16, Vec<(String, String)>, BodyStream), HttpError> {
        if framing == Framing::AwsEventStream {
            return Err(HttpError::Protocol(
                "aws-event-stream framing is not available in this build".into(),
            ));
        }
        let response = self.start(req).await?;
        let (status, headers) = head(&response);
        Ok((
            status,
            headers,
            BodyStream {
                response,
                framing,
                buffer: Vec::new(),
                done: false,
            },
        ))
    }
}

fn head(response: &reqwest::Response) -> (u16, Vec<(String, String)>) {
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    (response.status().as_u16(), headers)
}

/// Stand-in for a streamed response body split into frames.
pub struct BodyStream {
    response: reqwest::Response,
    framing: Framing,
    buffer: Vec<u8>,
    done: bool,
}

impl BodyStream {
    pub async fn next(&mut self) -> Result<Option<Frame>, HttpError> {
        loop {
            if self.framing == Framing::Sse
                && let Some(frame) = self.take_sse_event()
            {
                return Ok(Some(frame));
            }
            if self.done {
                return Ok(None);
            }
            match self
                .response
                .chunk()
                .await
                .map_err(|e| HttpError::Protocol(e.to_string()))?
            {
                Some(chunk) if self.framing == Framing::Raw => {
                    return Ok(Some(Frame {
                        event: None,
                        data: chunk.to_vec(),
                    }));
                }
                Some(chunk) => self.buffer.extend_from_slice(&chunk),
                None => {
                    self.done = true;
                    if self.framing == Framing::Sse && !self.buffer.is_empty() {
                        self.buffer.extend_from_slice(b"\n\n");
                    }
                }
            }
        }
    }

    fn take_sse_event(&mut self) -> Option<Frame> {
        loop {
            let text = String::from_utf8_lossy(&self.buffer).replace("\r\n", "\n");
            let end = text.find("\n\n")?;
            let block = text[..end].to_owned();
            self.buffer = text.as_bytes()[end + 2..].to_vec();
            let mut event = None;
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = Some(v.trim_start().to_owned());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if !data.is_empty() {
                return Some(Frame {
                    event,
                    data: data.join("\n").into_bytes(),
                });
            }
        }
    }
}

/// Stand-in for the plugin's view of the environment: only declared names.
pub struct EnvView {
    vars: HashMap<String, String>,
}

impl EnvView {
    pub fn new(declared: &[String], lookup: impl Fn(&str) -> Option<String>) -> Self {
        let vars = declared
            .iter()
            .filter_map(|name| {
                lookup(name)
                    .filter(|v| !v.is_empty())
                    .map(|v| (name.clone(), v))
            })
            .collect();
        EnvView { vars }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

/// Log levels of the `logging` import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Stand-in for the logger of one provider.
pub struct PluginLogger {
    provider_id: String,
}

impl PluginLogger {
    pub fn new(provider_id: &str) -> Self {
        PluginLogger {
            provider_id: provider_id.to_owned(),
        }
    }

    pub fn log(&self, level: LogLevel, request_id: &str, message: &str) {
        let provider_id = self.provider_id.as_str();
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "ogx::plugin", provider_id, request_id, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "ogx::plugin", provider_id, request_id, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "ogx::plugin", provider_id, request_id, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "ogx::plugin", provider_id, request_id, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "ogx::plugin", provider_id, request_id, "{message}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    #[error("too large: {0}")]
    #[allow(
        dead_code,
        reason = "part of the imports contract; the stand-in never hits a limit"
    )]
    TooLarge(String),
    #[error("backend: {0}")]
    Backend(String),
}

type Namespaces = Arc<Mutex<HashMap<String, BTreeMap<String, Vec<u8>>>>>;

/// Stand-in for the SQLite key-value store.
#[derive(Clone, Default)]
pub struct KvStore {
    namespaces: Namespaces,
}

impl KvStore {
    /// Opens the store. The stand-in keeps everything in memory and ignores `path`.
    pub fn open(path: Option<&Path>) -> Result<Self, String> {
        let _ = path;
        Ok(KvStore::default())
    }

    pub fn namespace(&self, provider_id: &str) -> KvNamespace {
        KvNamespace {
            namespaces: self.namespaces.clone(),
            id: provider_id.to_owned(),
        }
    }
}

/// The keys of one provider id.
pub struct KvNamespace {
    namespaces: Namespaces,
    id: String,
}

impl KvNamespace {
    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Vec<u8>>) -> R) -> Result<R, KvError> {
        let mut all = self
            .namespaces
            .lock()
            .map_err(|_| KvError::Backend("store poisoned".into()))?;
        Ok(f(all.entry(self.id.clone()).or_default()))
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.with(|m| m.get(key).cloned())
    }

    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.with(|m| {
            m.insert(key.to_owned(), value);
        })
    }

    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.with(|m| {
            m.remove(key);
        })
    }

    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        self.with(|m| {
            m.keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect()
        })
    }
}
