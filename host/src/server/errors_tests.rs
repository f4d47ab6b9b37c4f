//! Unit tests of [`super`].

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
            ApiError::Access(AccessDenied::Auth(AuthFailure::Unauthorized(
                "Invalid JWT token".into(),
            ))),
            401,
            "Invalid JWT token",
        ),
        (
            ApiError::Access(AccessDenied::Auth(AuthFailure::Forbidden("proxy".into()))),
            403,
            "proxy",
        ),
        (
            ApiError::Access(AccessDenied::Auth(AuthFailure::Unavailable)),
            503,
            "Authentication service unavailable",
        ),
        (
            ApiError::Access(AccessDenied::Auth(AuthFailure::Timeout)),
            503,
            "Authentication service timeout",
        ),
        (
            ApiError::Access(AccessDenied::Route("/v1/models".into())),
            403,
            "Access denied: insufficient permissions for route /v1/models",
        ),
        (
            ApiError::Access(AccessDenied::NoTenant),
            401,
            "Tenant context required but not resolved from authentication",
        ),
        (ApiError::Quota(QuotaError::Exceeded), 429, "Quota exceeded"),
        (
            ApiError::Quota(QuotaError::Unavailable),
            500,
            "Quota service error",
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
            ApiError::history_off("List chat completions"),
            501,
            "List chat completions is not supported: inference store is not configured.",
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
            RoutingError::QueueFull {
                provider_id: "c".into(),
                max_concurrent: 20,
                max_queued: 5,
            }
            .into(),
            429,
            "provider c is busy: 20 requests are running and 5 waiting (its routing max_concurrent and max_queued); retry later",
        ),
        (
            RoutingError::QueueTimeout {
                provider_id: "c".into(),
                max_concurrent: 20,
                waited: Duration::from_secs(10),
            }
            .into(),
            503,
            "provider c is busy: no slot of its 20 concurrent requests freed up within 10s (its routing queue_timeout); retry later",
        ),
        (
            RoutingError::NoTarget {
                model: "claude".into(),
                probe_in: Duration::from_secs(3),
            }
            .into(),
            503,
            "every target of model claude is taken out after repeated failures; the next one is probed in 3s",
        ),
        (
            RoutingError::Call(CallError::Timeout(Duration::from_secs(2))).into(),
            504,
            "provider call timed out after 2s",
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
fn messages_errors_are_anthropic_shaped_with_anthropics_types() {
    let cases: Vec<(ApiError, u16, &str)> = vec![
        (
            MessagesError::Invalid("max_tokens: Field required".into()).into(),
            400,
            "invalid_request_error",
        ),
        (
            CallError::from(ProviderError::Unauthenticated("who".into())).into(),
            401,
            "authentication_error",
        ),
        (
            CallError::from(ProviderError::PermissionDenied("no".into())).into(),
            403,
            "permission_error",
        ),
        (ApiError::model_not_found("m"), 404, "not_found_error"),
        (
            MessagesError::NotEnabled("enable it".into()).into(),
            404,
            "not_found_error",
        ),
        (
            MessagesError::TooLarge("too big".into()).into(),
            413,
            "request_too_large",
        ),
        (
            CallError::from(ProviderError::RateLimited("slow".into())).into(),
            429,
            "rate_limit_error",
        ),
        (
            CallError::from(ProviderError::Internal("oops".into())).into(),
            500,
            "api_error",
        ),
        (
            MessagesError::NotServed("later".into()).into(),
            501,
            "api_error",
        ),
        (
            CallError::from(ProviderError::BadGateway("down".into())).into(),
            502,
            "api_error",
        ),
        (
            CallError::Unavailable("busy".into()).into(),
            503,
            "overloaded_error",
        ),
        (
            CallError::from(ProviderError::Upstream {
                status: 529,
                message: "Overloaded".into(),
                headers: Vec::new(),
            })
            .into(),
            529,
            "overloaded_error",
        ),
        (
            CallError::Timeout(Duration::from_secs(2)).into(),
            504,
            "timeout_error",
        ),
    ];
    for (error, status, error_type) in cases {
        let (got_status, message) = error.status_and_message();
        assert_eq!(got_status.as_u16(), status, "{error:?}");
        let body = AnthropicError(error).body();
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": error_type, "message": message}})
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
