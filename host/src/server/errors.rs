//! The one place where errors become HTTP answers.
//!
//! Every failure a client can see goes through [`ApiError`]: its status code follows OGX's
//! mapping (400 for a bad body, 404 for an unknown model, 501 for an operation a provider does
//! not support, the upstream's status passed through; one exception: an unknown stored chat
//! completion is OpenAI's 404, not OGX's 400) and its body is OpenAI's error shape
//! `{"error": {"message": ...}}`. Messages never carry secrets; details of plugin crashes and
//! database failures go to the log, and the client gets OGX's generic internal-error text.

use crate::responses::ResponsesError;
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
}

impl ApiError {
    /// OGX's message for a model that is neither registered nor routable by prefix.
    pub fn model_not_found(model: &str) -> Self {
        ApiError::NotFound(format!(
            "Model '{model}' not found. Use 'client.models.list()' to list available Models."
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
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, message.clone()),
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
        }
    }

    /// The OpenAI error body, `{"error": {"message": ...}}`.
    pub fn body(&self) -> Value {
        let (_, message) = self.status_and_message();
        json!({ "error": { "message": message } })
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
            ApiError::BadRequest(_)
            | ApiError::NotFound(_)
            | ApiError::Prompt(_)
            | ApiError::Responses(_) => {}
        }
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

/// How long a client should wait before trying again, in whole seconds, when the provider
/// said: a plugin's rate limit with a retry-after, or an upstream 429/503 whose `retry-after`
/// header gives seconds (an HTTP date is not passed on).
fn retry_after_seconds(error: &ApiError) -> Option<u64> {
    match error {
        ApiError::Call(CallError::Provider(ProviderError::RateLimited(limit))) => limit
            .retry_after
            .map(|wait| wait.as_secs_f64().ceil() as u64),
        ApiError::Call(CallError::Provider(ProviderError::Upstream {
            status: 429 | 503,
            headers,
            ..
        })) => headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, value)| value.trim().parse().ok()),
        _ => None,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let (status, _) = self.status_and_message();
        let mut response = (status, Json(self.body())).into_response();
        if let Some(seconds) = retry_after_seconds(&self) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_error_maps_to_its_status_and_message() {
        let upstream = |status| ProviderError::Upstream {
            status,
            message: format!("Error code: {status} - {{}}"),
            headers: Vec::new(),
        };
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::BadRequest("bad body".into()), 400, "bad body"),
            (
                ApiError::model_not_found("m"),
                404,
                "Model 'm' not found. Use 'client.models.list()' to list available Models.",
            ),
            (
                CallError::from(ProviderError::InvalidRequest("no key".into())).into(),
                400,
                "no key",
            ),
            (
                CallError::from(ProviderError::Unauthenticated("who".into())).into(),
                401,
                "who",
            ),
            (
                CallError::from(ProviderError::PermissionDenied("no".into())).into(),
                403,
                "no",
            ),
            (
                CallError::from(ProviderError::NotFound("gone".into())).into(),
                404,
                "gone",
            ),
            (
                CallError::from(ProviderError::RateLimited("slow".into())).into(),
                429,
                "slow",
            ),
            (
                CallError::from(upstream(429)).into(),
                429,
                "Error code: 429 - {}",
            ),
            (
                CallError::from(upstream(503)).into(),
                503,
                "Error code: 503 - {}",
            ),
            (
                CallError::from(upstream(200)).into(),
                502,
                "Error code: 200 - {}",
            ),
            (
                CallError::from(ProviderError::BadGateway("down".into())).into(),
                502,
                "down",
            ),
            (
                CallError::from(ProviderError::Timeout("late".into())).into(),
                504,
                "late",
            ),
            (
                CallError::from(ProviderError::Unsupported("nope".into())).into(),
                501,
                "nope",
            ),
            (
                CallError::from(ProviderError::Internal("oops".into())).into(),
                500,
                "oops",
            ),
            (
                CallError::Trap {
                    plugin: "p.wasm".into(),
                    detail: "wasm trap: unreachable secret-detail".into(),
                }
                .into(),
                500,
                INTERNAL_ERROR_MESSAGE,
            ),
            (
                CallError::Timeout(Duration::from_secs(2)).into(),
                504,
                "provider call timed out after 2s",
            ),
            (
                ApiError::completion_not_found("c1"),
                404,
                "No chat completion found with id 'c1'",
            ),
            (
                StoreError::UnknownAfter {
                    id: "x".into(),
                    table: "inference_store".into(),
                }
                .into(),
                400,
                "Record with id='x' not found in table 'inference_store'",
            ),
            (
                StoreError::Backend("disk I/O error at /secret/path".into()).into(),
                500,
                INTERNAL_ERROR_MESSAGE,
            ),
            (
                CallError::Unavailable("busy".into()).into(),
                503,
                "could not start a provider instance: busy",
            ),
            (
                ResponsesError::Invalid("Tool type 'mcp' is not supported yet".into()).into(),
                400,
                "Tool type 'mcp' is not supported yet",
            ),
            (
                ResponsesError::response_not_found("resp_x").into(),
                404,
                "Response 'resp_x' not found. Use 'client.responses.list()' to list available Responses.",
            ),
            (
                PromptError::NotFound("pmpt_x".into()).into(),
                404,
                "Prompt 'pmpt_x' not found. Use 'client.prompts.list()' to list available Prompts.",
            ),
            (
                PromptError::VersionNotFound {
                    version: 3,
                    prompt_id: "pmpt_x".into(),
                }
                .into(),
                404,
                "Prompt version '3' not found in prompt 'pmpt_x'. Use 'client.prompts.list_versions(\"pmpt_x\")' to list available prompt versions.",
            ),
            (
                PromptError::Invalid("Invalid value for 'version': 0. Must be >= 1.".into()).into(),
                400,
                "Invalid value for 'version': 0. Must be >= 1.",
            ),
            (
                PromptError::Store(KvError::TooLarge("the value is 2 bytes".into())).into(),
                400,
                "too large: the value is 2 bytes",
            ),
            (
                PromptError::Store(KvError::Backend("disk full at /secret/path".into())).into(),
                500,
                INTERNAL_ERROR_MESSAGE,
            ),
        ];
        for (error, status, message) in cases {
            let (got_status, got_message) = error.status_and_message();
            assert_eq!(
                (got_status.as_u16(), got_message.as_str()),
                (status, message),
                "{error:?}"
            );
            assert_eq!(error.body(), json!({"error": {"message": message}}));
            assert_eq!(
                error.stream_event()["error"]["code"],
                json!(status.to_string())
            );
        }
    }

    #[test]
    fn a_known_retry_after_is_sent_as_the_retry_after_header() {
        let retry_after = |error: ProviderError| {
            ApiError::from(CallError::from(error))
                .into_response()
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let limited = ProviderError::RateLimited(crate::runtime::RateLimit {
            message: "slow down".into(),
            retry_after: Some(Duration::from_millis(2500)),
        });
        assert_eq!(retry_after(limited).as_deref(), Some("3"));
        assert_eq!(retry_after(ProviderError::RateLimited("slow".into())), None);
        let upstream = |status, value: &str| ProviderError::Upstream {
            status,
            message: "busy".into(),
            headers: vec![("retry-after".into(), value.into())],
        };
        assert_eq!(retry_after(upstream(429, "7")).as_deref(), Some("7"));
        assert_eq!(retry_after(upstream(503, " 1 ")).as_deref(), Some("1"));
        assert_eq!(
            retry_after(upstream(400, "7")),
            None,
            "only for 429 and 503"
        );
        assert_eq!(
            retry_after(upstream(429, "Wed, 21 Oct 2015 07:28:00 GMT")),
            None,
            "dates are not passed on"
        );
    }
}
