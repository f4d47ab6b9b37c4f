//! Reading and checking OpenAI request bodies before they reach a provider.
//!
//! ogx checks what it must understand itself (the model, the messages, `stream`, the tool
//! rules OGX enforces, documented ranges) and passes every other field through unchanged, so
//! new OpenAI fields work without a gateway release. Each failure is a 400 naming the field.

use super::errors::ApiError;
use serde_json::{Map, Value};

/// Roles a chat message may have.
const MESSAGE_ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// Numeric fields with OpenAI's documented ranges: (field, minimum, maximum).
const NUMERIC_RANGES: &[(&str, f64, f64)] = &[
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("frequency_penalty", -2.0, 2.0),
    ("presence_penalty", -2.0, 2.0),
    ("n", 1.0, f64::MAX),
    ("max_tokens", 1.0, f64::MAX),
    ("max_completion_tokens", 1.0, f64::MAX),
    ("top_logprobs", 0.0, 20.0),
];

/// Which endpoint a body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Completions,
    Embeddings,
}

impl Endpoint {
    /// The model type this endpoint serves.
    pub fn model_type(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions | Endpoint::Completions => "llm",
            Endpoint::Embeddings => "embedding",
        }
    }

    /// The OpenTelemetry GenAI `gen_ai.operation.name` of this endpoint.
    pub fn operation_name(self) -> &'static str {
        match self {
            Endpoint::ChatCompletions => "chat",
            Endpoint::Completions => "text_completion",
            Endpoint::Embeddings => "embeddings",
        }
    }
}

/// A checked request body.
#[derive(Debug)]
pub struct ApiRequest {
    pub body: Map<String, Value>,
    /// The model id as the client sent it.
    pub model: String,
    pub stream: bool,
}

impl ApiRequest {
    /// Parses and checks `bytes` for `endpoint`.
    pub fn parse(bytes: &[u8], endpoint: Endpoint) -> Result<Self, ApiError> {
        let mut body = json_object(bytes)?;
        let model = match body.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.clone(),
            Some(_) => return Err(invalid("model", "must be a non-empty string")),
            None => return Err(missing("model")),
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(stream)) => *stream,
            Some(_) => return Err(invalid("stream", "must be true or false")),
        };
        if stream && endpoint == Endpoint::Embeddings {
            return Err(invalid("stream", "is not supported for embeddings"));
        }
        check_ranges(&body)?;
        match endpoint {
            Endpoint::ChatCompletions => check_chat(&mut body)?,
            Endpoint::Completions => require(&body, "prompt")?,
            Endpoint::Embeddings => require(&body, "input")?,
        }
        Ok(ApiRequest {
            body,
            model,
            stream,
        })
    }

    /// The body with `model` replaced by the upstream id, as JSON text (once per attempt:
    /// each target of a routed model has its own upstream id).
    pub fn upstream_json(&mut self, upstream_model: &str) -> String {
        self.body
            .insert("model".into(), Value::String(upstream_model.to_string()));
        serde_json::to_string(&self.body).unwrap_or_default()
    }
}

fn check_chat(body: &mut Map<String, Value>) -> Result<(), ApiError> {
    let messages = match body.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) => {
            return Err(invalid("messages", "must contain at least one message"));
        }
        Some(_) => return Err(invalid("messages", "must be a list of messages")),
        None => return Err(missing("messages")),
    };
    for (index, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str);
        match role {
            Some(role) if MESSAGE_ROLES.contains(&role) => {}
            Some(role) => {
                return Err(invalid(
                    &format!("messages[{index}].role"),
                    &format!("'{role}' is not one of {}", MESSAGE_ROLES.join(", ")),
                ));
            }
            None => return Err(missing(&format!("messages[{index}].role"))),
        }
    }
    let has_tools = matches!(body.get("tools"), Some(Value::Array(tools)) if !tools.is_empty());
    match body.get("tool_choice") {
        None | Some(Value::Null) => {}
        Some(_) if !has_tools => {
            return Err(ApiError::BadRequest(
                "'tool_choice' is only allowed when 'tools' is also provided".into(),
            ));
        }
        Some(Value::String(choice)) if choice == "none" => {
            // OGX drops both, so upstreams that reject `tool_choice: none` still answer.
            body.remove("tool_choice");
            body.remove("tools");
        }
        Some(_) => {}
    }
    Ok(())
}

fn check_ranges(body: &Map<String, Value>) -> Result<(), ApiError> {
    for (field, min, max) in NUMERIC_RANGES {
        match body.get(*field) {
            None | Some(Value::Null) => {}
            Some(Value::Number(number)) => {
                let value = number.as_f64().unwrap_or(f64::NAN);
                if !(value >= *min && value <= *max) {
                    let range = if *max == f64::MAX {
                        format!("at least {min}")
                    } else {
                        format!("between {min} and {max}")
                    };
                    return Err(invalid(field, &format!("must be {range}, got {number}")));
                }
            }
            Some(_) => return Err(invalid(field, "must be a number")),
        }
    }
    Ok(())
}

/// A request body that must be a JSON object.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|error| {
        ApiError::BadRequest(format!(
            "Invalid request body: not valid JSON ({error}). Send a JSON object with Content-Type: application/json."
        ))
    })?;
    let Value::Object(body) = value else {
        return Err(ApiError::BadRequest(
            "Invalid request body: expected a JSON object.".into(),
        ));
    };
    Ok(body)
}

fn require(body: &Map<String, Value>, field: &str) -> Result<(), ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(_) => Ok(()),
    }
}

/// A 400 naming a missing field.
pub fn missing(field: &str) -> ApiError {
    ApiError::BadRequest(format!("Invalid request body: '{field}' is required."))
}

/// A 400 naming a field and what is wrong with it.
pub fn invalid(field: &str, problem: &str) -> ApiError {
    ApiError::BadRequest(format!("Invalid request body: '{field}' {problem}."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, endpoint: Endpoint) -> Result<ApiRequest, String> {
        ApiRequest::parse(body.as_bytes(), endpoint).map_err(|e| e.status_and_message().1)
    }

    #[test]
    fn bad_bodies_are_rejected_with_the_field_named() {
        use Endpoint::*;
        let cases = [
            ("{", ChatCompletions, "not valid JSON"),
            ("[1]", ChatCompletions, "expected a JSON object"),
            (
                r#"{"messages":[{"role":"user","content":"hi"}]}"#,
                ChatCompletions,
                "'model' is required",
            ),
            (
                r#"{"model":"","messages":[]}"#,
                ChatCompletions,
                "'model' must be a non-empty string",
            ),
            (
                r#"{"model":"m"}"#,
                ChatCompletions,
                "'messages' is required",
            ),
            (
                r#"{"model":"m","messages":[]}"#,
                ChatCompletions,
                "at least one message",
            ),
            (
                r#"{"model":"m","messages":"hi"}"#,
                ChatCompletions,
                "must be a list",
            ),
            (
                r#"{"model":"m","messages":[{"content":"hi"}]}"#,
                ChatCompletions,
                "'messages[0].role' is required",
            ),
            (
                r#"{"model":"m","messages":[{"role":"robot"}]}"#,
                ChatCompletions,
                "'robot' is not one of",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"stream":"yes"}"#,
                ChatCompletions,
                "'stream' must be true or false",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"temperature":3}"#,
                ChatCompletions,
                "'temperature' must be between 0 and 2, got 3",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"n":0}"#,
                ChatCompletions,
                "'n' must be at least 1",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"top_p":"x"}"#,
                ChatCompletions,
                "'top_p' must be a number",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user"}],"tool_choice":"auto"}"#,
                ChatCompletions,
                "'tool_choice' is only allowed when 'tools' is also provided",
            ),
            (r#"{"model":"m"}"#, Completions, "'prompt' is required"),
            (r#"{"model":"m"}"#, Embeddings, "'input' is required"),
            (
                r#"{"model":"m","input":"x","stream":true}"#,
                Embeddings,
                "not supported for embeddings",
            ),
        ];
        for (body, endpoint, expected) in cases {
            let message = check(body, endpoint).expect_err(body);
            assert!(message.contains(expected), "{body}: {message}");
        }
    }

    #[test]
    fn good_bodies_keep_unknown_fields_and_get_the_upstream_model() {
        let mut request = check(
            r#"{"model":"vllm/m","messages":[{"role":"user","content":"hi"}],"stream":true,"vendor_knob":{"a":1}}"#,
            Endpoint::ChatCompletions,
        )
        .unwrap();
        assert_eq!((request.model.as_str(), request.stream), ("vllm/m", true));
        let upstream: Value = serde_json::from_str(&request.upstream_json("m")).unwrap();
        assert_eq!(upstream["model"], "m");
        assert_eq!(upstream["vendor_knob"]["a"], 1);
    }

    #[test]
    fn tool_choice_none_drops_the_tools() {
        let request = check(
            r#"{"model":"m","messages":[{"role":"user"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}"#,
            Endpoint::ChatCompletions,
        )
        .unwrap();
        assert!(!request.body.contains_key("tools") && !request.body.contains_key("tool_choice"));
    }
}
