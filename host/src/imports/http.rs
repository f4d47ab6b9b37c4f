//! `ogx:provider/outbound-http`: requests a plugin sends upstream, through one pooled client.
//! (Skeleton: the types are the contract with `runtime`; bodies are filled in by the imports work.)

use std::time::Duration;

/// An HTTP method a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
}

/// Non-secret description of where AWS credentials come from (WIT `aws-credential-source`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AwsCredentialSource {
    pub profile_name: Option<String>,
    pub role_arn: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub role_session_name: Option<String>,
    pub session_ttl_seconds: Option<u32>,
}

/// How a request is authenticated (WIT `auth`).
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

/// How a streamed body is split (WIT `framing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Raw,
    Sse,
    AwsEventStream,
}

/// A request from a plugin (WIT `request`).
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub auth: Auth,
    /// Already capped by the caller at the time left for the API request.
    pub timeout: Option<Duration>,
}

/// A buffered response (WIT `response`).
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One piece of a streamed body (WIT `frame`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: Option<String>,
    pub data: Vec<u8>,
}

/// Why a request failed (WIT `http-error`). Messages never contain secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("request denied: {0}")]
    Denied(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("AWS credentials: {0}")]
    Credentials(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("too large: {0}")]
    TooLarge(String),
}
