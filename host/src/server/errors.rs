//! The one place where errors become HTTP answers.
//!
//! Every failure a client can see goes through [`ApiError`]: its status code follows OGX's
//! mapping (400 for a bad body, 404 for an unknown model, 501 for an operation a provider does
//! not support, the upstream's status passed through; one exception: an unknown stored chat
//! completion is OpenAI's 404, not OGX's 400) and its body is OpenAI's error shape
//! `{"error": {"message": ...}}`. Messages never carry secrets; details of plugin crashes and
//! database failures go to the log, and the client gets OGX's generic internal-error text.
//!
//! Gateway keys' refusals ([`GatewayKeyError`]) carry OpenAI's `type` and `code` too
//! (`invalid_api_key`, `rate_limit_exceeded`, `insufficient_quota`, ...) and, for limits, a
//! `Retry-After` header; they name the limit or budget, never the key.
//!
//! The Messages API answers the same errors in Anthropic's shape instead,
//! `{"type": "error", "error": {"type": ..., "message": ...}}`, through [`AnthropicError`]: same
//! status and message, and the error type Anthropic gives that status ([`anthropic_error_type`]).

use crate::auth::authenticator::AuthFailure;
use crate::auth::middleware::AccessDenied;
use crate::gateway_keys::GatewayKeyError;
use crate::messages::MessagesError;
use crate::quota::QuotaError;
use crate::responses::ResponsesError;
use crate::routing::RoutingError;
use crate::runtime::{CallError, ProviderError};
use crate::storage::inference_store::StoreError;
use crate::storage::kv::KvError;
use crate::storage::prompts::PromptError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// OGX's text for failures whose details are not for the client.
pub const INTERNAL_ERROR_MESSAGE: &str = "Internal server error: An unexpected error occurred.";

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed or asks for something invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The model, provider or route does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The server is configured without what the request needs (501), e.g. the history with
    /// `storage.stores.inference.enabled: false`.
    #[error("{0}")]
    NotImplemented(String),
    /// A provider call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A Prompts API operation failed.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The chat-completion history could not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A Responses API request cannot be served.
    #[error(transparent)]
    Responses(#[from] ResponsesError),
    /// A Messages API request cannot be served.
    #[error(transparent)]
    Messages(#[from] MessagesError),
    /// `server.auth` / `server.tenancy` refused the request before its handler (401, 403, or
    /// 503 when the authentication service is down).
    #[error("{0:?}")]
    Access(AccessDenied),
    /// `server.quota` refused the request (429), or its counters failed (500).
    #[error("{0:?}")]
    Quota(QuotaError),
    /// A gateway key refused the request, or an admin request failed.
    #[error(transparent)]
    GatewayKey(#[from] GatewayKeyError),
    /// Routing refused the request (a provider's limit, every target taken out); a failed
    /// provider call is [`ApiError::Call`].
    #[error(transparent)]
    Routing(RoutingError),
}

impl From<RoutingError> for ApiError {
    fn from(error: RoutingError) -> Self {
        match error {
            RoutingError::Call(error) => ApiError::Call(error),
            refused => ApiError::Routing(refused),
        }
    }
}

impl ApiError {
    /// OGX's message for a model that is neither registered nor routable by prefix.
    pub fn model_not_found(model: &str) -> Self {
        ApiError::NotFound(format!(
            "Model '{model}' not found. Use 'client.models.list()' to list available Models."
        ))
    }

    /// A history route while `storage.stores.inference.enabled` is false: OGX 1.5.0's 501,
    /// `operation` being e.g. "List chat completions".
    pub fn history_off(operation: &str) -> Self {
        ApiError::NotImplemented(format!(
            "{operation} is not supported: inference store is not configured."
        ))
    }

    /// A chat completion that is not in the history: 404 as OpenAI answers (OGX gives 400).
    pub fn completion_not_found(id: &str) -> Self {
        ApiError::NotFound(format!("No chat completion found with id '{id}'"))
    }

    /// The status code and the message shown to the client.
    pub fn status_and_message(&self) -> (StatusCode, String) {
        match self {
            ApiError::BadRequest(message)
            | ApiError::Responses(ResponsesError::Invalid(message)) => {
                (StatusCode::BAD_REQUEST, message.clone())
            }
            ApiError::Responses(ResponsesError::NotFound(message)) => {
                (StatusCode::NOT_FOUND, message.clone())
            }
            ApiError::NotFound(message)
            | ApiError::Messages(MessagesError::NotEnabled(message)) => {
                (StatusCode::NOT_FOUND, message.clone())
            }
            ApiError::Messages(MessagesError::Invalid(message)) => {
                (StatusCode::BAD_REQUEST, message.clone())
            }
            ApiError::Messages(MessagesError::TooLarge(message)) => {
                (StatusCode::PAYLOAD_TOO_LARGE, message.clone())
            }
            ApiError::Messages(MessagesError::NotServed(message)) => {
                (StatusCode::NOT_IMPLEMENTED, message.clone())
            }
            ApiError::NotImplemented(message) => (StatusCode::NOT_IMPLEMENTED, message.clone()),
            ApiError::Routing(error @ RoutingError::QueueFull { .. }) => {
                (StatusCode::TOO_MANY_REQUESTS, error.to_string())
            }
            ApiError::Routing(error) => (StatusCode::SERVICE_UNAVAILABLE, error.to_string()),
            ApiError::Call(CallError::Provider(error)) => {
                (provider_status(error), error.to_string())
            }
            ApiError::Call(CallError::Trap { .. }) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_ERROR_MESSAGE.to_string(),
            ),
            ApiError::Call(error @ CallError::Timeout(_)) => {
                (StatusCode::GATEWAY_TIMEOUT, error.to_string())
            }
            ApiError::Call(error @ CallError::Unavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
            }
            ApiError::Prompt(
                error @ (PromptError::NotFound(_) | PromptError::VersionNotFound { .. }),
            ) => (StatusCode::NOT_FOUND, error.to_string()),
            ApiError::Prompt(PromptError::Invalid(message)) => {
                (StatusCode::BAD_REQUEST, message.clone())
            }
            // A prompt over a size limit is the client's to fix; the text gives the limit.
            ApiError::Prompt(PromptError::Store(error @ KvError::TooLarge(_))) => {
                (StatusCode::BAD_REQUEST, error.to_string())
            }
            ApiError::Store(error @ StoreError::UnknownAfter { .. }) => {
                (StatusCode::BAD_REQUEST, error.to_string())
            }
            ApiError::Prompt(PromptError::Store(KvError::Backend(_)))
            | ApiError::Store(StoreError::Backend(_)) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                INTERNAL_ERROR_MESSAGE.to_string(),
            ),
            ApiError::Access(denied) => access_denied(denied),
            ApiError::Quota(QuotaError::Exceeded) => {
                (StatusCode::TOO_MANY_REQUESTS, "Quota exceeded".into())
            }
            ApiError::Quota(QuotaError::Unavailable) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Quota service error".into(),
            ),
            ApiError::GatewayKey(error) => gateway_key_status_and_message(error),
        }
    }

    /// The OpenAI error body, `{"error": {"message": ...}}`; a gateway key's refusal adds
    /// OpenAI's `type`, `param` and `code`.
    pub fn body(&self) -> Value {
        let (_, message) = self.status_and_message();
        match self {
            ApiError::GatewayKey(error) => {
                let (error_type, code) = gateway_key_type_and_code(error);
                json!({ "error": { "message": message, "type": error_type, "param": null, "code": code } })
            }
            _ => json!({ "error": { "message": message } }),
        }
    }

    /// The body of the SSE event that ends a stream which failed after it started:
    /// `{"error": {"message": ..., "code": "<status>"}}`, as OGX sends it.
    pub fn stream_event(&self) -> Value {
        let (status, message) = self.status_and_message();
        json!({ "error": { "message": message, "code": status.as_u16().to_string() } })
    }

    fn log(&self) {
        match self {
            ApiError::Call(CallError::Trap { plugin, detail }) => {
                tracing::error!(plugin = %plugin, "provider plugin crashed: {detail}");
            }
            ApiError::Call(error) => tracing::warn!("provider call failed: {error}"),
            ApiError::Prompt(PromptError::Store(error @ KvError::Backend(_))) => {
                tracing::error!("the prompts store failed: {error}");
            }
            ApiError::Store(StoreError::Backend(detail)) => {
                tracing::error!(
                    "a stored-history table (chat completions or responses) failed: {detail}"
                );
            }
            ApiError::Store(StoreError::UnknownAfter { .. }) => {}
            ApiError::GatewayKey(GatewayKeyError::Store(detail)) => {
                tracing::error!("the gateway key store failed: {detail}");
            }
            ApiError::GatewayKey(_) => {}
            ApiError::Routing(error) => tracing::warn!("request refused: {error}"),
            ApiError::BadRequest(_)
            | ApiError::NotFound(_)
            | ApiError::NotImplemented(_)
            | ApiError::Prompt(_)
            | ApiError::Responses(_)
            | ApiError::Messages(_) => {}
            ApiError::Access(AccessDenied::Auth(
                AuthFailure::Unavailable | AuthFailure::Timeout,
            )) => {
                tracing::warn!("the authentication service could not be reached");
            }
            ApiError::Access(_) | ApiError::Quota(_) => {}
        }
    }
}

/// OGX 1.5.0's answers from its authentication, tenancy and route-policy middleware.
fn access_denied(denied: &AccessDenied) -> (StatusCode, String) {
    match denied {
        AccessDenied::Auth(AuthFailure::Unauthorized(message)) => {
            (StatusCode::UNAUTHORIZED, message.clone())
        }
        AccessDenied::Auth(AuthFailure::Forbidden(message)) => {
            (StatusCode::FORBIDDEN, message.clone())
        }
        AccessDenied::Auth(AuthFailure::Unavailable) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Authentication service unavailable".into(),
        ),
        AccessDenied::Auth(AuthFailure::Timeout) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Authentication service timeout".into(),
        ),
        AccessDenied::Route(path) => (
            StatusCode::FORBIDDEN,
            format!("Access denied: insufficient permissions for route {path}"),
        ),
        AccessDenied::NoTenant => (
            StatusCode::UNAUTHORIZED,
            "Tenant context required but not resolved from authentication".into(),
        ),
    }
}

/// An [`ApiError`] answered in Anthropic's shape, for the Messages API's routes.
#[derive(Debug)]
pub struct AnthropicError(pub ApiError);

impl<E: Into<ApiError>> From<E> for AnthropicError {
    fn from(error: E) -> Self {
        AnthropicError(error.into())
    }
}

impl AnthropicError {
    /// `{"type": "error", "error": {"type": ..., "message": ...}}`, also the data of the `error`
    /// event that ends a Messages stream which failed after it started.
    pub fn body(&self) -> Value {
        let (status, message) = self.0.status_and_message();
        json!({"type": "error", "error": {"type": anthropic_error_type(status), "message": message}})
    }
}

impl IntoResponse for AnthropicError {
    fn into_response(self) -> Response {
        self.0.log();
        let (status, _) = self.0.status_and_message();
        let mut response = (status, Json(self.body())).into_response();
        with_retry_after(&mut response, &self.0);
        response
    }
}

/// Status and message of a gateway key's refusal. A store failure's detail goes to the log;
/// the client is told the key service is unavailable.
fn gateway_key_status_and_message(error: &GatewayKeyError) -> (StatusCode, String) {
    let status = match error {
        GatewayKeyError::Missing
        | GatewayKeyError::Unknown
        | GatewayKeyError::Disabled
        | GatewayKeyError::Expired
        | GatewayKeyError::AdminUnauthenticated => StatusCode::UNAUTHORIZED,
        GatewayKeyError::ModelNotAllowed(_) | GatewayKeyError::NotAdmin(_) => StatusCode::FORBIDDEN,
        GatewayKeyError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        GatewayKeyError::OverBudget { status, .. } => {
            StatusCode::from_u16(*status).unwrap_or(StatusCode::TOO_MANY_REQUESTS)
        }
        GatewayKeyError::KeyNotFound(_) | GatewayKeyError::NotConfigured => StatusCode::NOT_FOUND,
        GatewayKeyError::Invalid(_) => StatusCode::BAD_REQUEST,
        GatewayKeyError::Store(_) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "The gateway key service is unavailable; try again shortly.".to_string(),
            );
        }
    };
    (status, error.to_string())
}

/// OpenAI's `type` and `code` for a gateway key's refusal.
fn gateway_key_type_and_code(error: &GatewayKeyError) -> (&'static str, &'static str) {
    match error {
        GatewayKeyError::Missing => ("invalid_request_error", "missing_api_key"),
        GatewayKeyError::Unknown | GatewayKeyError::Disabled | GatewayKeyError::Expired => {
            ("invalid_request_error", "invalid_api_key")
        }
        GatewayKeyError::AdminUnauthenticated => ("invalid_request_error", "missing_api_key"),
        GatewayKeyError::ModelNotAllowed(_) => ("invalid_request_error", "model_not_allowed"),
        GatewayKeyError::NotAdmin(_) => ("invalid_request_error", "insufficient_permissions"),
        GatewayKeyError::RateLimited { limit, .. } => (
            if limit.starts_with("tokens") {
                "tokens"
            } else {
                "requests"
            },
            "rate_limit_exceeded",
        ),
        GatewayKeyError::OverBudget { .. } => ("insufficient_quota", "insufficient_quota"),
        GatewayKeyError::KeyNotFound(_) | GatewayKeyError::NotConfigured => {
            ("invalid_request_error", "not_found")
        }
        GatewayKeyError::Invalid(_) => ("invalid_request_error", "invalid_value"),
        GatewayKeyError::Store(_) => ("server_error", "service_unavailable"),
    }
}

/// Adds `Retry-After` when the error knows how long to wait.
fn with_retry_after(response: &mut Response, error: &ApiError) {
    if let Some(seconds) = retry_after_seconds(error) {
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, seconds.into());
    }
}

/// Anthropic's error type for a status (its documented pairs; any other status is `api_error`).
pub fn anthropic_error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The HTTP status for each case of the plugin's typed error.
fn provider_status(error: &ProviderError) -> StatusCode {
    match error {
        ProviderError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        ProviderError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        ProviderError::PermissionDenied(_) => StatusCode::FORBIDDEN,
        ProviderError::NotFound(_) => StatusCode::NOT_FOUND,
        ProviderError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        ProviderError::Upstream { status, .. } => StatusCode::from_u16(*status)
            .ok()
            .filter(|code| code.is_client_error() || code.is_server_error())
            .unwrap_or(StatusCode::BAD_GATEWAY),
        ProviderError::BadGateway(_) => StatusCode::BAD_GATEWAY,
        ProviderError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        ProviderError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
        ProviderError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// How long a client should wait before trying again, in whole seconds, when known: the
/// provider's own wait ([`crate::routing::failure::retry_after`]), a second for a provider
/// whose queue is full, the time to the next probe when every target is taken out.
fn retry_after_seconds(error: &ApiError) -> Option<u64> {
    let wait = match error {
        ApiError::Call(error) => crate::routing::failure::retry_after(error)?,
        ApiError::Routing(RoutingError::QueueFull { .. }) => std::time::Duration::from_secs(1),
        ApiError::Routing(RoutingError::NoTarget { probe_in, .. }) => *probe_in,
        ApiError::GatewayKey(GatewayKeyError::RateLimited { retry_after, .. }) => {
            return Some(*retry_after);
        }
        ApiError::GatewayKey(GatewayKeyError::OverBudget { retry_after, .. }) => {
            return *retry_after;
        }
        _ => return None,
    };
    Some(wait.as_secs_f64().ceil() as u64)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let (status, _) = self.status_and_message();
        let mut response = (status, Json(self.body())).into_response();
        with_retry_after(&mut response, &self);
        response
    }
}

#[cfg(test)]
#[path = "errors_tests.rs"]
mod tests;
