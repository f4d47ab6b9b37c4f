//! Anthropic's Messages API, natively, for Claude on Bedrock: `/v1/messages` goes to
//! InvokeModel (`POST {runtime}/model/{modelId}/invoke`) or InvokeModelWithResponseStream
//! (`/invoke-with-response-stream`) with Bedrock's Anthropic body, and `count_tokens` to
//! CountTokens (`/count-tokens`). Nothing is translated, so extended thinking and its
//! signatures, `cache_control`, tool_use ids and every other Anthropic field survive both ways
//! (the Converse path cannot carry them all).
//!
//! **Which models.** A model whose id — after an inference-profile prefix (`us.`, `eu.`,
//! `apac.`, `global.`…), or the last part of an ARN — starts with `anthropic.claude`
//! ([`is_claude`]); `model_overrides` may say `messages: translate` (keep the translated
//! path) or `messages: native` (e.g. an application inference profile ARN, whose id names no
//! model). Every other model is declined with `unsupported`: the host translates it to chat
//! completions (Converse) as before.
//!
//! **The body** ([`invoke_body`]): the client's, without `model` and `stream`, with
//! `"anthropic_version": "bedrock-2023-05-31"`; the client's `anthropic-beta` header values
//! arrive from the host in the body's `anthropic_beta` array, which is where Bedrock reads
//! them. CountTokens takes that body base64-encoded (a `blob` in botocore's model), with
//! `max_tokens` (required by InvokeModel) set to 1 when the client sent none, for the
//! foundation-model id (CountTokens refuses inference-profile ids).
//!
//! **The stream**: each event-stream message `chunk` holds `{"bytes": "<base64>"}`, the
//! base64 of one Anthropic event, which is sent on as the SSE event its `type` names.
//!
//! **Failures**: HTTP errors and exception frames map as Converse's do
//! ([`crate::converse::errors`]: throttling 429, validation 400, access denied 403…), with
//! Bedrock's message; a throttling answer's `Retry-After`, when Bedrock sends one, is passed
//! on. An Anthropic `error` event inside the stream ends it with that error's status.

use ogx_provider_sdk::http::{Framing, Request, StreamingResponse};
use ogx_provider_sdk::{EventStream, Map, MessagesEvent, ProviderError, Value};

use crate::auth::AuthMode;
use crate::base64;
use crate::converse::{self, errors};
use crate::routing;

/// The `anthropic_version` Bedrock's Anthropic body must carry.
pub const BEDROCK_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// The foundation-model id in a model id, an inference-profile id or an ARN's last part.
pub fn base_model(model: &str) -> &str {
    let tail = match model.strip_prefix("arn:") {
        Some(rest) => rest.rsplit('/').next().unwrap_or(rest),
        None => model,
    };
    routing::strip_profile_prefix(tail)
}

/// Whether `model` is a Claude model (InvokeModel takes Anthropic's Messages body for it).
pub fn is_claude(model: &str) -> bool {
    base_model(model).starts_with("anthropic.claude")
}

/// The InvokeModel body for a client's Messages request (see the module docs).
pub fn invoke_body(mut body: Map<String, Value>) -> Map<String, Value> {
    body.remove("model");
    body.remove("stream");
    body.insert(
        "anthropic_version".into(),
        Value::String(BEDROCK_ANTHROPIC_VERSION.into()),
    );
    if matches!(body.get("anthropic_beta"), Some(Value::Array(betas)) if betas.is_empty()) {
        body.remove("anthropic_beta");
    }
    body
}

/// The CountTokens body for a client's `count_tokens` request.
pub fn count_tokens_body(body: Map<String, Value>) -> Value {
    let mut invoke = invoke_body(body);
    invoke.entry("max_tokens").or_insert(Value::from(1));
    let text = Value::Object(invoke).to_string();
    serde_json::json!({"input": {"invokeModel": {"body": base64::encode(text.as_bytes())}}})
}

/// The model id CountTokens takes: the foundation model of a profile id or ARN, when it is one.
pub fn count_tokens_model(model: &str) -> &str {
    let base = base_model(model);
    if base.starts_with("anthropic.") {
        base
    } else {
        model
    }
}

/// What one native call needs from the provider.
pub struct Call<'a> {
    /// The runtime endpoint, e.g. `https://bedrock-runtime.us-west-2.amazonaws.com`.
    pub runtime_url: &'a str,
    /// The region (for error hints).
    pub region: &'a str,
    /// How the request authenticates.
    pub mode: &'a AuthMode,
    /// Adds the configured headers, the auth and the time limit to an upstream request.
    pub finish: &'a dyn Fn(Request) -> Request,
}

impl Call<'_> {
    fn post(&self, model: &str, operation: &str, body: &Value, accept: &str) -> Request {
        let url = format!(
            "{}/model/{}/{operation}",
            self.runtime_url,
            routing::path_segment(model)
        );
        (self.finish)(Request::post(url).json(body)).header("accept", accept)
    }

    fn error(
        &self,
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
        model: &str,
    ) -> ProviderError {
        let error = converse::upstream_error(status, headers, body, self.mode, self.region, model);
        with_retry_after(error, headers)
    }

    /// `POST /model/{model}/{operation}` answering JSON; an error status is an error.
    fn json(&self, model: &str, operation: &str, body: &Value) -> Result<Value, ProviderError> {
        let response = self
            .post(model, operation, body, "application/json")
            .send()
            .map_err(|err| crate::errors::transport_error(err, self.mode))?;
        if !response.is_success() {
            return Err(self.error(response.status, &response.headers, &response.body, model));
        }
        response.json()
    }
}

/// A throttling error with the upstream's `Retry-After` seconds, when it sent them.
fn with_retry_after(error: ProviderError, headers: &[(String, String)]) -> ProviderError {
    let seconds = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, value)| value.trim().parse::<u32>().ok());
    match (error, seconds) {
        (ProviderError::RateLimited(message), Some(seconds)) => {
            ProviderError::RetryAfter { message, seconds }
        }
        (error, _) => error,
    }
}

/// `POST /v1/messages` without streaming: InvokeModel's answer, as Bedrock wrote it.
pub fn create(call: &Call, body: Map<String, Value>, model: &str) -> Result<Value, ProviderError> {
    call.json(model, "invoke", &Value::Object(invoke_body(body)))
}

/// `POST /v1/messages/count_tokens`: CountTokens' `inputTokens` as `input_tokens`.
pub fn count_tokens(
    call: &Call,
    body: Map<String, Value>,
    model: &str,
) -> Result<Value, ProviderError> {
    let model = count_tokens_model(model);
    let answer = call.json(model, "count-tokens", &count_tokens_body(body))?;
    let tokens = answer
        .get("inputTokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            ProviderError::BadGateway("Bedrock's CountTokens answer has no inputTokens".into())
        })?;
    Ok(serde_json::json!({ "input_tokens": tokens }))
}

/// `POST /v1/messages` with `"stream": true`: InvokeModelWithResponseStream's events.
pub fn stream(
    call: &Call,
    body: Map<String, Value>,
    model: &str,
) -> Result<EventStream, ProviderError> {
    let body = Value::Object(invoke_body(body));
    let response: StreamingResponse = call
        .post(
            model,
            "invoke-with-response-stream",
            &body,
            "application/vnd.amazon.eventstream",
        )
        .send_streaming(Framing::AwsEventStream)
        .map_err(|err| crate::errors::transport_error(err, call.mode))?;
    if !response.is_success() {
        let (status, headers) = (response.status, response.headers.clone());
        let body: Vec<u8> = response
            .body
            .map_while(Result::ok)
            .flat_map(|frame| frame.data)
            .collect();
        return Err(call.error(status, &headers, &body, model));
    }
    let (region, model) = (call.region.to_string(), model.to_string());
    let mut frames = response.body;
    let mut finished = false;
    Ok(EventStream::new(std::iter::from_fn(move || {
        if finished {
            return None;
        }
        let item = match frames.next() {
            None => return None,
            Some(Err(err)) => Err(err.into()),
            Some(Ok(frame)) => event(
                frame.event.as_deref().unwrap_or_default(),
                &frame.data,
                &region,
                &model,
            ),
        };
        match &item {
            Ok(event) if event.event_type != "message_stop" => {}
            _ => finished = true,
        }
        Some(item)
    })))
}

/// The Anthropic event one event-stream message carries, or the error it reports.
pub fn event(
    name: &str,
    payload: &[u8],
    region: &str,
    model: &str,
) -> Result<MessagesEvent, ProviderError> {
    if name.ends_with("Exception") {
        return Err(errors::from_exception_frame(name, payload, region, model));
    }
    let bad = |why: &str| {
        ProviderError::BadGateway(format!(
            "Bedrock sent a `{name}` stream message that is not an Anthropic event: {why}"
        ))
    };
    let part: Value = serde_json::from_slice(payload).map_err(|err| bad(&err.to_string()))?;
    let bytes = part
        .get("bytes")
        .and_then(Value::as_str)
        .and_then(base64::decode)
        .ok_or_else(|| bad("no base64 `bytes`"))?;
    let data: Value = serde_json::from_slice(&bytes).map_err(|err| bad(&err.to_string()))?;
    let event_type = data
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no `type`"))?
        .to_string();
    if event_type == "error" {
        return Err(ProviderError::from_anthropic_error_event(&data));
    }
    Ok(MessagesEvent { event_type, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn claude_models_are_found_behind_profiles_and_arns() {
        let claude = [
            "anthropic.claude-3-5-haiku-20241022-v1:0",
            "us.anthropic.claude-sonnet-4-20250514-v1:0",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "apac.anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-west-2:123456789012:inference-profile/eu.anthropic.claude-3-haiku-20240307-v1:0",
            "arn:aws:bedrock:us-west-2::foundation-model/anthropic.claude-3-haiku-20240307-v1:0",
        ];
        for model in claude {
            assert!(is_claude(model), "{model}");
        }
        let others = [
            "amazon.nova-pro-v1:0",
            "us.meta.llama3-1-70b-instruct-v1:0",
            "openai.gpt-oss-20b-1:0",
            "arn:aws:bedrock:us-west-2:1:application-inference-profile/abc123",
            "anthropic.titan",
        ];
        for model in others {
            assert!(!is_claude(model), "{model}");
        }
    }

    #[test]
    fn the_invoke_body_drops_model_and_stream_and_keeps_the_rest() {
        let body = object(json!({
            "model": "us.anthropic.claude-x", "stream": true, "max_tokens": 5,
            "anthropic_version": "2023-06-01", "anthropic_beta": ["b1"],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}],
        }));
        let want = json!({
            "max_tokens": 5, "anthropic_version": "bedrock-2023-05-31", "anthropic_beta": ["b1"],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": "hi"}],
        });
        assert_eq!(Value::Object(invoke_body(body)), want);
        let empty = invoke_body(object(json!({"anthropic_beta": []})));
        assert!(!empty.contains_key("anthropic_beta"));
    }

    #[test]
    fn count_tokens_sends_the_base64_invoke_body_for_the_foundation_model() {
        let body = count_tokens_body(object(json!({"model": "m", "messages": []})));
        let blob = body
            .pointer("/input/invokeModel/body")
            .unwrap()
            .as_str()
            .unwrap();
        let inner: Value = serde_json::from_slice(&base64::decode(blob).unwrap()).unwrap();
        assert_eq!(
            inner,
            json!({"messages": [], "anthropic_version": "bedrock-2023-05-31", "max_tokens": 1})
        );
        assert_eq!(
            count_tokens_model("us.anthropic.claude-x-v1:0"),
            "anthropic.claude-x-v1:0"
        );
        let app = "arn:aws:bedrock:us-east-1:1:application-inference-profile/abc";
        assert_eq!(count_tokens_model(app), app);
    }

    #[test]
    fn stream_messages_become_anthropic_events_or_errors() {
        let inner = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}});
        let payload = json!({"bytes": base64::encode(inner.to_string().as_bytes())}).to_string();
        let got = event("chunk", payload.as_bytes(), "us-east-1", "m").unwrap();
        assert_eq!(got.event_type, "content_block_delta");
        assert_eq!(got.data, inner);
        let throttled = event(
            "throttlingException",
            br#"{"message":"Too many requests"}"#,
            "us-east-1",
            "m",
        );
        assert_eq!(
            throttled.unwrap_err(),
            ProviderError::RateLimited("Too many requests".into())
        );
        let overloaded =
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}});
        let payload =
            json!({"bytes": base64::encode(overloaded.to_string().as_bytes())}).to_string();
        assert_eq!(
            event("chunk", payload.as_bytes(), "r", "m").unwrap_err(),
            ProviderError::Upstream {
                status: 529,
                message: "busy".into()
            }
        );
        assert!(matches!(
            event("chunk", b"{}", "r", "m"),
            Err(ProviderError::BadGateway(_))
        ));
    }

    #[test]
    fn a_throttling_answer_keeps_its_retry_after() {
        let headers = vec![("Retry-After".to_string(), "7".to_string())];
        assert_eq!(
            with_retry_after(ProviderError::RateLimited("slow".into()), &headers),
            ProviderError::RetryAfter {
                message: "slow".into(),
                seconds: 7
            }
        );
        assert_eq!(
            with_retry_after(ProviderError::RateLimited("slow".into()), &[]),
            ProviderError::RateLimited("slow".into())
        );
    }
}
