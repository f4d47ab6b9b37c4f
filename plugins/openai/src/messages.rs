//! Anthropic's Messages API, natively, for the types whose upstream speaks it — the adapters
//! OGX 1.5.0 builds on its `AnthropicMixin`: `remote::anthropic`, `remote::deepseek`,
//! `remote::fireworks`, `remote::meta`, `remote::ollama` and `remote::vllm`
//! ([`Family::native_messages`]). The client's body (its `model` already the upstream's id)
//! goes to `{root}/v1/messages` with `anthropic-version` and the type's credential header;
//! the answer, or each SSE event of a streamed one, comes back as the upstream wrote it, so
//! extended thinking, cache control and every other Anthropic field survive.
//!
//! The other types, and a provider whose config says `native_messages: false`, answer
//! `unsupported` ([`not_native`]): the host then serves them by
//! translating to chat completions, and stops asking. `count_tokens` goes to the upstream's
//! `/v1/messages/count_tokens`, or, where there is none (DeepSeek, Fireworks), is a message
//! with `max_tokens: 1` whose `usage.input_tokens` is the count, as OGX counts.
//!
//! **Failures**: an upstream error status is passed on with the upstream's own message (the
//! `error.message` of Anthropic's error body, as OGX's `AnthropicMixin` shows it) and its
//! headers (the host forwards `retry-after`); a missing key where the type needs one is
//! OGX's 400; an `error` event inside a stream ends it with that error.

use ogx_provider_sdk::http::{Framing, Request, Response};
use ogx_provider_sdk::{Context, EventStream, Map, MessagesEvent, ProviderError, Value};

use crate::config::Resolved;
use crate::family::{ANTHROPIC_VERSION, AnthropicAuth, NativeMessages};
use crate::target;

/// The upstream of one native Messages request.
struct Native {
    root: String,
    headers: Vec<(String, String)>,
}

/// What a type that does not speak Messages answers: the host translates instead.
pub fn not_native(ctx: &Context) -> ProviderError {
    ProviderError::unsupported(ctx.provider_type(), "native /v1/messages")
}

fn native(config: &Resolved, ctx: &Context) -> Result<(Native, NativeMessages), ProviderError> {
    let (Some(kind), Some(root)) = (config.family.native_messages(), &config.anthropic_root) else {
        return Err(not_native(ctx));
    };
    let key = target::credential(config, ctx);
    if key.is_none() && config.requires_key() {
        return Err(target::missing_key_error(ctx.provider_id()));
    }
    let mut headers = vec![(
        "anthropic-version".to_string(),
        ANTHROPIC_VERSION.to_string(),
    )];
    headers.extend(config.headers.iter().cloned());
    match (kind.auth, key) {
        (AnthropicAuth::ApiKey, Some(key)) => headers.push(("x-api-key".into(), key)),
        (AnthropicAuth::ApiKey, None) => {
            if let Some(placeholder) = kind.no_key_placeholder {
                headers.push(("x-api-key".into(), placeholder.into()));
            }
        }
        (AnthropicAuth::Bearer, Some(key)) => {
            headers.push(("authorization".into(), format!("Bearer {key}")));
        }
        (AnthropicAuth::Bearer, None) => {}
    }
    let root = root.clone();
    Ok((Native { root, headers }, kind))
}

/// The error for an upstream error answer: its status, Anthropic's `error.message` (or OGX's
/// generic text when the body has none) and its headers.
fn upstream_error(status: u16, headers: &[(String, String)], body: &[u8]) -> ProviderError {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("Failed to complete Anthropic API request: status {status}"));
    if (400..=599).contains(&status) {
        ProviderError::UpstreamWithHeaders {
            status,
            message,
            headers: headers.to_vec(),
        }
    } else {
        ProviderError::BadGateway(message)
    }
}

/// `response` when it is a success, else its [`upstream_error`].
fn success(response: Response) -> Result<Response, ProviderError> {
    if response.is_success() {
        Ok(response)
    } else {
        Err(upstream_error(
            response.status,
            &response.headers,
            &response.body,
        ))
    }
}

impl Native {
    /// `POST {root}/v1/{path}`; the body's `anthropic_beta` (the client's `anthropic-beta`
    /// header, which the host passes in the body) goes back into that header.
    fn post(&self, path: &str, body: &Map<String, Value>) -> Request {
        let (body, betas) = split_betas(body);
        let mut request = Request::post(format!("{}/v1/{path}", self.root)).json(&body);
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(betas) = betas {
            request = request.header("anthropic-beta", betas.as_str());
        }
        request
    }
}

/// The body without `anthropic_beta`, and its strings joined as the `anthropic-beta` header
/// (`None` when there are none).
fn split_betas(body: &Map<String, Value>) -> (Map<String, Value>, Option<String>) {
    let mut body = body.clone();
    let removed = body.remove("anthropic_beta");
    let betas: Vec<&str> = match &removed {
        Some(Value::Array(values)) => values.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(value)) => vec![value.as_str()],
        _ => Vec::new(),
    }
    .into_iter()
    .map(str::trim)
    .filter(|beta| !beta.is_empty())
    .collect();
    let header = (!betas.is_empty()).then(|| betas.join(","));
    (body, header)
}

/// The body as sent upstream: a JSON object with its top-level nulls dropped, whose model
/// `allowed_models` permits (as OGX checks it).
fn body(config: &Resolved, request: Value) -> Result<Map<String, Value>, ProviderError> {
    let Value::Object(mut body) = request else {
        return Err(ProviderError::InvalidRequest(
            "the request body must be a JSON object".into(),
        ));
    };
    body.retain(|_, v| !v.is_null());
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ProviderError::InvalidRequest("the request has no `model` string".into()))?;
    target::check_allowed_model(config, model)?;
    Ok(body)
}

/// `POST /v1/messages`, not streamed.
pub fn create(config: &Resolved, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
    let (native, _) = native(config, ctx)?;
    let mut body = body(config, request)?;
    body.remove("stream");
    success(native.post("messages", &body).send()?)?.json()
}

/// `POST /v1/messages` with `"stream": true`: the upstream's events, one by one.
pub fn stream(
    config: &Resolved,
    ctx: &Context,
    request: Value,
) -> Result<EventStream, ProviderError> {
    let (native, _) = native(config, ctx)?;
    let mut body = body(config, request)?;
    body.insert("stream".into(), Value::Bool(true));
    let response = native
        .post("messages", &body)
        .header("accept", "text/event-stream")
        .send_streaming(Framing::Sse)?;
    if !response.is_success() {
        let body: Vec<u8> = response
            .body
            .map_while(Result::ok)
            .flat_map(|frame| frame.data)
            .collect();
        return Err(upstream_error(response.status, &response.headers, &body));
    }
    let mut frames = response.body;
    let mut finished = false;
    Ok(EventStream::new(std::iter::from_fn(move || {
        if finished {
            return None;
        }
        loop {
            let frame = match frames.next() {
                None => {
                    finished = true;
                    return None;
                }
                Some(Err(err)) => {
                    finished = true;
                    return Some(Err(err.into()));
                }
                Some(Ok(frame)) => frame,
            };
            let Some(event) = frame.event.filter(|e| !e.is_empty()) else {
                continue;
            };
            let data: Value = match serde_json::from_slice(&frame.data) {
                Ok(data) => data,
                Err(err) => {
                    finished = true;
                    return Some(Err(ProviderError::BadGateway(format!(
                        "the upstream sent a `{event}` event whose data is not JSON: {err}"
                    ))));
                }
            };
            if event == "error" {
                finished = true;
                return Some(Err(ProviderError::from_anthropic_error_event(&data)));
            }
            if event == "message_stop" {
                finished = true;
            }
            return Some(Ok(MessagesEvent {
                event_type: event,
                data,
            }));
        }
    })))
}

/// `POST /v1/messages/count_tokens`: the upstream's count, or (without that endpoint) the
/// `input_tokens` of a one-token message.
pub fn count_tokens(
    config: &Resolved,
    ctx: &Context,
    request: Value,
) -> Result<Value, ProviderError> {
    let (native, kind) = native(config, ctx)?;
    let mut body = body(config, request)?;
    if kind.count_tokens {
        return success(native.post("messages/count_tokens", &body).send()?)?.json();
    }
    body.insert("max_tokens".into(), 1.into());
    body.remove("stream");
    let message: Value = success(native.post("messages", &body).send()?)?.json()?;
    let input_tokens = message
        .pointer("/usage/input_tokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| {
            ProviderError::BadGateway("the upstream's message has no usage.input_tokens".into())
        })?;
    Ok(serde_json::json!({ "input_tokens": input_tokens }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, validate};
    use crate::family::Family;

    fn resolved(family: Family, json: Value) -> Resolved {
        let config: Config = serde_json::from_value(json).unwrap();
        validate(family, "p", config, None).unwrap()
    }

    #[test]
    fn the_messages_root_is_the_base_url_without_v1_or_deepseeks_own() {
        let cases = [
            (
                Family::Anthropic,
                serde_json::json!({"api_key": "k"}),
                Some("https://api.anthropic.com"),
            ),
            (
                Family::Fireworks,
                serde_json::json!({}),
                Some("https://api.fireworks.ai/inference"),
            ),
            (
                Family::Vllm,
                serde_json::json!({"base_url": "http://127.0.0.1:8000/v1/"}),
                Some("http://127.0.0.1:8000"),
            ),
            (
                Family::Deepseek,
                serde_json::json!({}),
                Some("https://api.deepseek.com/anthropic"),
            ),
            (
                Family::Deepseek,
                serde_json::json!({"anthropic_base_url": "http://127.0.0.1:9/a/"}),
                Some("http://127.0.0.1:9/a"),
            ),
            (Family::OpenAi, serde_json::json!({"api_key": "k"}), None),
            (Family::Groq, serde_json::json!({"api_key": "k"}), None),
            (
                Family::Vllm,
                serde_json::json!({"base_url": "http://h/v1", "native_messages": false}),
                None,
            ),
        ];
        for (family, json, root) in cases {
            assert_eq!(
                resolved(family, json).anthropic_root.as_deref(),
                root,
                "{family:?}"
            );
        }
    }

    #[test]
    fn the_bodys_betas_go_back_into_the_header() {
        let body = serde_json::json!({"model": "m", "anthropic_beta": ["a", " b "]});
        let (rest, header) = split_betas(body.as_object().unwrap());
        assert_eq!(Value::Object(rest), serde_json::json!({"model": "m"}));
        assert_eq!(header.as_deref(), Some("a,b"));
        let (_, none) = split_betas(
            serde_json::json!({"anthropic_beta": []})
                .as_object()
                .unwrap(),
        );
        assert_eq!(none, None);
    }

    #[test]
    fn an_upstream_error_keeps_anthropics_message_status_and_headers() {
        let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
        let headers = vec![("retry-after".to_string(), "3".to_string())];
        assert_eq!(
            upstream_error(429, &headers, body),
            ProviderError::UpstreamWithHeaders {
                status: 429,
                message: "slow down".into(),
                headers,
            }
        );
        assert_eq!(
            upstream_error(500, &[], b"oops"),
            ProviderError::UpstreamWithHeaders {
                status: 500,
                message: "Failed to complete Anthropic API request: status 500".into(),
                headers: vec![],
            }
        );
    }
}
