//! What a type changes in a request before it goes upstream, or in an answer before it comes
//! back, as its OGX 1.5.0 adapter does; the types not named here pass bodies through as is.
//!
//! - `remote::openai`: `max_tokens` becomes `max_completion_tokens` when that is unset, and
//!   both are clamped to the model's known output limit.
//! - `remote::anthropic`: an empty tool `parameters` object becomes `{"type": "object"}`; a
//!   `json_schema` response format is made strict (`strict: true`, `additionalProperties:
//!   false` on every object schema), as Anthropic's endpoint requires.
//! - `remote::deepseek`: a `json_schema` response format is refused (400).
//! - `remote::vllm`: `developer` messages become `system` messages.
//! - `remote::fireworks`: a `type` key inside a tool's `function` is dropped (Fireworks
//!   rejects it); a completions stream gets `stream_options.include_usage: false` unless the
//!   client asked for usage (Fireworks would send a usage chunk).
//! - `remote::together`: embeddings refuse `user` and `dimensions` (400); a missing `usage`
//!   becomes `-1` tokens; the answer's `model` is the requested one.
//! - `remote::mistral`: embeddings refuse `encoding_format: "base64"` (400).
//! - `remote::gemini`: a missing embeddings `usage` becomes `0` tokens; stream `usage`, which
//!   Gemini sends on every chunk, is moved into one final chunk ([`UsageCoalescer`]).
//!
//! Every refusal is a 400 with OGX's message; nothing here fails otherwise.

use ogx_provider_sdk::{Map, ProviderError, Value};

use crate::family::Family;

/// OGX's `_MODEL_MAX_OUTPUT_TOKENS` of `remote::openai`.
const OPENAI_MAX_OUTPUT_TOKENS: [(&str, u64); 14] = [
    ("gpt-4.1", 32768),
    ("gpt-4.1-mini", 32768),
    ("gpt-4.1-nano", 32768),
    ("gpt-4o", 16384),
    ("gpt-4o-mini", 16384),
    ("gpt-4-turbo", 4096),
    ("gpt-4", 8192),
    ("o1", 100000),
    ("o1-mini", 65536),
    ("o1-pro", 100000),
    ("o3", 100000),
    ("o3-mini", 100000),
    ("o3-pro", 100000),
    ("o4-mini", 100000),
];

/// Substrings of OpenAI model ids that OGX leaves out of the listing (audio and realtime).
pub const OPENAI_UNLISTED: [&str; 4] = ["whisper", "tts", "realtime", "audio"];

/// The output-token limit OGX knows for an OpenAI model: an exact id, else the longest known
/// id that `model` extends with `-` (`gpt-4o-2024-08-06` → `gpt-4o`).
pub fn openai_max_output_tokens(model: &str) -> Option<u64> {
    if let Some((_, limit)) = OPENAI_MAX_OUTPUT_TOKENS.iter().find(|(id, _)| *id == model) {
        return Some(*limit);
    }
    OPENAI_MAX_OUTPUT_TOKENS
        .iter()
        .filter(|(id, _)| model.starts_with(&format!("{id}-")))
        .max_by_key(|(id, _)| id.len())
        .map(|(_, limit)| *limit)
}

/// Applies the family's chat-request changes to `body` (top-level nulls already dropped).
pub fn prepare_chat(family: Family, body: &mut Map<String, Value>) -> Result<(), ProviderError> {
    match family {
        Family::OpenAi => clamp_openai_tokens(body),
        Family::Anthropic => {
            fill_empty_tool_parameters(body);
            make_json_schema_strict(body);
        }
        Family::Vllm => developer_to_system(body),
        Family::Fireworks => strip_function_type(body),
        Family::Deepseek if response_format_type(body) == Some("json_schema") => {
            return Err(ProviderError::InvalidRequest(
                "DeepSeek does not support response_format type 'json_schema'. Use 'json_object' or 'text' instead.".into(),
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Applies the family's completions-request changes to `body` (top-level nulls dropped).
pub fn prepare_completion(family: Family, body: &mut Map<String, Value>) {
    if family != Family::Fireworks || body.get("stream") != Some(&Value::Bool(true)) {
        return;
    }
    let options = body
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(options) = options
        && options.get("include_usage") != Some(&Value::Bool(true))
    {
        options.insert("include_usage".into(), false.into());
    }
}

/// Applies the family's embeddings-request checks to `body` (top-level nulls already dropped).
pub fn prepare_embeddings(family: Family, body: &Map<String, Value>) -> Result<(), ProviderError> {
    let refuse = |message: &str| Err(ProviderError::InvalidRequest(message.into()));
    match family {
        Family::Together if body.contains_key("user") => {
            refuse("Together's embeddings endpoint does not support user param.")
        }
        Family::Together if body.contains_key("dimensions") => {
            refuse("Together's embeddings endpoint does not support dimensions param.")
        }
        Family::Mistral
            if body.get("encoding_format").and_then(Value::as_str) == Some("base64") =>
        {
            refuse("Mistral's embeddings endpoint does not support encoding_format='base64'.")
        }
        _ => Ok(()),
    }
}

/// Applies the family's changes to an embeddings answer; `model` is the requested model.
pub fn finish_embeddings(family: Family, model: &str, response: &mut Value) {
    let missing_usage = match family {
        Family::Together => -1,
        Family::Gemini => 0,
        _ => return,
    };
    let Value::Object(answer) = response else {
        return;
    };
    answer.insert("model".into(), model.into());
    if answer.get("usage").is_none_or(Value::is_null) {
        let mut usage = Map::new();
        usage.insert("prompt_tokens".into(), missing_usage.into());
        usage.insert("total_tokens".into(), missing_usage.into());
        answer.insert("usage".into(), Value::Object(usage));
    }
}

fn response_format_type(body: &Map<String, Value>) -> Option<&str> {
    body.get("response_format")?.get("type")?.as_str()
}

/// OGX's OpenAI adapter: `max_tokens` moves to `max_completion_tokens` when that is unset,
/// then both are clamped to the model's known limit.
fn clamp_openai_tokens(body: &mut Map<String, Value>) {
    if !body.contains_key("max_completion_tokens")
        && let Some(max_tokens) = body.remove("max_tokens")
    {
        body.insert("max_completion_tokens".into(), max_tokens);
    }
    let Some(limit) = body
        .get("model")
        .and_then(Value::as_str)
        .and_then(openai_max_output_tokens)
    else {
        return;
    };
    for field in ["max_tokens", "max_completion_tokens"] {
        if body
            .get(field)
            .and_then(Value::as_u64)
            .is_some_and(|n| n > limit)
        {
            body.insert(field.into(), limit.into());
        }
    }
}

/// vLLM: the `developer` role is sent as `system`.
fn developer_to_system(body: &mut Map<String, Value>) {
    let Some(Value::Array(messages)) = body.get_mut("messages") else {
        return;
    };
    for message in messages {
        if let Some(role) = message.get_mut("role")
            && role == "developer"
        {
            *role = "system".into();
        }
    }
}

/// Fireworks rejects a `type` key inside a tool's `function`.
fn strip_function_type(body: &mut Map<String, Value>) {
    let Some(Value::Array(tools)) = body.get_mut("tools") else {
        return;
    };
    for tool in tools {
        if let Some(Value::Object(function)) = tool.get_mut("function") {
            function.remove("type");
        }
    }
}

/// Anthropic rejects `parameters: {}`, which OpenAI accepts.
fn fill_empty_tool_parameters(body: &mut Map<String, Value>) {
    let Some(Value::Array(tools)) = body.get_mut("tools") else {
        return;
    };
    for tool in tools {
        if let Some(parameters) = tool
            .get_mut("function")
            .and_then(|f| f.get_mut("parameters"))
            && parameters.as_object().is_some_and(Map::is_empty)
        {
            *parameters = serde_json::json!({"type": "object"});
        }
    }
}

/// Anthropic requires `strict: true` for `json_schema`; OGX sets it when unset and then adds
/// `additionalProperties: false` to every object schema reachable through `properties`.
fn make_json_schema_strict(body: &mut Map<String, Value>) {
    let Some(Value::Object(json_schema)) = body
        .get_mut("response_format")
        .and_then(|f| f.get_mut("json_schema"))
    else {
        return;
    };
    if json_schema.is_empty() {
        return;
    }
    if json_schema.get("strict").is_none_or(Value::is_null) {
        json_schema.insert("strict".into(), true.into());
    }
    let strict = match json_schema.get("strict") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64() != Some(0.0),
        Some(Value::String(s)) => !s.is_empty(),
        _ => false,
    };
    if strict && let Some(schema @ Value::Object(_)) = json_schema.get_mut("schema") {
        close_object_schemas(schema);
    }
}

fn close_object_schemas(schema: &mut Value) {
    let Value::Object(schema) = schema else {
        return;
    };
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return;
    }
    if !schema.contains_key("additionalProperties") {
        schema.insert("additionalProperties".into(), false.into());
    }
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        for property in properties.values_mut() {
            close_object_schemas(property);
        }
    }
}

/// Moves the `usage` of stream chunks into one final chunk (OGX's `coalesce_streaming_usage`):
/// every chunk with a `usage` is passed on with `usage: null`, and after the last one a chunk
/// with no choices carries the last usage seen, with that chunk's `id`, `created` and `model`.
#[derive(Debug, Default)]
pub struct UsageCoalescer {
    last: Option<Map<String, Value>>,
}

impl UsageCoalescer {
    /// The chunk to pass on in place of `chunk` (the text unchanged when it has no usage).
    pub fn pass(&mut self, chunk: String) -> String {
        if !chunk.contains("\"usage\"") {
            return chunk;
        }
        let Ok(Value::Object(mut parsed)) = serde_json::from_str::<Value>(&chunk) else {
            return chunk;
        };
        let Some(usage) = parsed.get("usage").filter(|u| !u.is_null()).cloned() else {
            return chunk;
        };
        let mut last = Map::new();
        for field in ["id", "created", "model"] {
            last.insert(
                field.into(),
                parsed.get(field).cloned().unwrap_or(Value::Null),
            );
        }
        last.insert("usage".into(), usage);
        self.last = Some(last);
        parsed.insert("usage".into(), Value::Null);
        Value::Object(parsed).to_string()
    }

    /// The final usage chunk, when any chunk carried usage.
    pub fn finish(&mut self) -> Option<String> {
        let last = self.last.take()?;
        let mut chunk = Map::new();
        chunk.insert("id".into(), last["id"].clone());
        chunk.insert("choices".into(), Value::Array(Vec::new()));
        chunk.insert("created".into(), last["created"].clone());
        chunk.insert("model".into(), last["model"].clone());
        chunk.insert("object".into(), "chat.completion.chunk".into());
        chunk.insert("usage".into(), last["usage"].clone());
        Some(Value::Object(chunk).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn anthropic_fills_empty_parameters_and_makes_schemas_strict() {
        let mut body = object(json!({
            "model": "claude",
            "tools": [
                {"type": "function", "function": {"name": "a", "parameters": {}}},
                {"type": "function", "function": {"name": "b", "parameters": {"type": "object", "properties": {}}}},
                {"type": "function", "function": {"name": "c"}}
            ],
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {
                "type": "object",
                "properties": {
                    "inner": {"type": "object", "properties": {"x": {"type": "string"}}},
                    "open": {"type": "object", "additionalProperties": true},
                    "list": {"type": "array", "items": {"type": "object"}}
                }
            }}}
        }));
        prepare_chat(Family::Anthropic, &mut body).unwrap();
        assert_eq!(
            body["tools"][0]["function"]["parameters"],
            json!({"type": "object"})
        );
        assert_eq!(
            body["tools"][1]["function"]["parameters"],
            json!({"type": "object", "properties": {}})
        );
        assert!(body["tools"][2]["function"].get("parameters").is_none());
        let js = &body["response_format"]["json_schema"];
        assert_eq!(js["strict"], true);
        assert_eq!(js["schema"]["additionalProperties"], false);
        assert_eq!(
            js["schema"]["properties"]["inner"]["additionalProperties"],
            false
        );
        assert_eq!(
            js["schema"]["properties"]["open"]["additionalProperties"],
            true
        );
        assert!(
            js["schema"]["properties"]["list"]["items"]
                .get("additionalProperties")
                .is_none()
        );
    }

    #[test]
    fn anthropic_leaves_an_explicitly_non_strict_schema_open() {
        let mut body = object(json!({"response_format": {"type": "json_schema",
            "json_schema": {"name": "s", "strict": false, "schema": {"type": "object"}}}}));
        prepare_chat(Family::Anthropic, &mut body).unwrap();
        assert!(
            body["response_format"]["json_schema"]["schema"]
                .get("additionalProperties")
                .is_none()
        );
    }

    #[test]
    fn vllm_and_fireworks_adjust_chat_like_ogx() {
        let mut body = object(json!({"messages": [
            {"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]}));
        prepare_chat(Family::Vllm, &mut body).unwrap();
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][1]["role"], "user");
        let mut body = object(json!({"tools": [
            {"type": "function", "function": {"name": "f", "type": "function", "parameters": {}}}]}));
        prepare_chat(Family::Fireworks, &mut body).unwrap();
        assert_eq!(
            body["tools"][0],
            json!({"type": "function", "function": {"name": "f", "parameters": {}}})
        );
    }

    #[test]
    fn fireworks_completion_streams_opt_out_of_usage_unless_asked() {
        let cases = [
            (
                json!({"stream": true}),
                json!({"stream": true, "stream_options": {"include_usage": false}}),
            ),
            (
                json!({"stream": true, "stream_options": {"include_usage": true}}),
                json!({"stream": true, "stream_options": {"include_usage": true}}),
            ),
            (
                json!({"stream": true, "stream_options": {"x": 1}}),
                json!({"stream": true, "stream_options": {"x": 1, "include_usage": false}}),
            ),
            (json!({"prompt": "p"}), json!({"prompt": "p"})),
        ];
        for (request, want) in cases {
            let mut body = object(request);
            prepare_completion(Family::Fireworks, &mut body);
            assert_eq!(Value::Object(body), want);
        }
        let mut body = object(json!({"stream": true}));
        prepare_completion(Family::Groq, &mut body);
        assert_eq!(Value::Object(body), json!({"stream": true}));
    }

    #[test]
    fn deepseek_refuses_json_schema_only() {
        let mut body =
            object(json!({"response_format": {"type": "json_schema", "json_schema": {}}}));
        let err = prepare_chat(Family::Deepseek, &mut body).unwrap_err();
        assert_eq!(
            err.message(),
            "DeepSeek does not support response_format type 'json_schema'. Use 'json_object' or 'text' instead."
        );
        let mut body = object(json!({"response_format": {"type": "json_object"}}));
        assert!(prepare_chat(Family::Deepseek, &mut body).is_ok());
    }

    #[test]
    fn openai_moves_and_clamps_max_tokens() {
        let cases = [
            (
                json!({"model": "gpt-4o", "max_tokens": 99999}),
                json!({"model": "gpt-4o", "max_completion_tokens": 16384}),
            ),
            (
                json!({"model": "gpt-4o-2024-08-06", "max_tokens": 10}),
                json!({"model": "gpt-4o-2024-08-06", "max_completion_tokens": 10}),
            ),
            (
                json!({"model": "gpt-4.1-mini-x", "max_tokens": 99999, "max_completion_tokens": 40000}),
                json!({"model": "gpt-4.1-mini-x", "max_tokens": 32768, "max_completion_tokens": 32768}),
            ),
            (
                json!({"model": "unknown", "max_tokens": 99999}),
                json!({"model": "unknown", "max_completion_tokens": 99999}),
            ),
        ];
        for (request, want) in cases {
            let mut body = object(request);
            prepare_chat(Family::OpenAi, &mut body).unwrap();
            assert_eq!(Value::Object(body), want);
        }
        assert_eq!(openai_max_output_tokens("o1-mini-2024"), Some(65536));
        assert_eq!(openai_max_output_tokens("o1"), Some(100000));
        assert_eq!(openai_max_output_tokens("gpt-5"), None);
    }

    #[test]
    fn embeddings_refusals_match_ogx() {
        let cases = [
            (
                Family::Together,
                json!({"user": "u"}),
                Some("Together's embeddings endpoint does not support user param."),
            ),
            (
                Family::Together,
                json!({"dimensions": 8}),
                Some("Together's embeddings endpoint does not support dimensions param."),
            ),
            (Family::Together, json!({"encoding_format": "float"}), None),
            (
                Family::Mistral,
                json!({"encoding_format": "base64"}),
                Some("Mistral's embeddings endpoint does not support encoding_format='base64'."),
            ),
            (
                Family::Mistral,
                json!({"encoding_format": "float", "dimensions": 8}),
                None,
            ),
            (
                Family::OpenAi,
                json!({"user": "u", "encoding_format": "base64"}),
                None,
            ),
        ];
        for (family, body, want) in cases {
            let got = prepare_embeddings(family, &object(body.clone())).err();
            assert_eq!(
                got.as_ref().map(ProviderError::message),
                want,
                "{family:?} {body}"
            );
        }
    }

    #[test]
    fn missing_embeddings_usage_is_filled_per_family() {
        let mut answer = json!({"object": "list", "model": "upstream-id", "data": []});
        finish_embeddings(Family::Together, "asked", &mut answer);
        assert_eq!(
            answer["usage"],
            json!({"prompt_tokens": -1, "total_tokens": -1})
        );
        assert_eq!(answer["model"], "asked");
        let mut answer = json!({"model": "m", "usage": null});
        finish_embeddings(Family::Gemini, "m", &mut answer);
        assert_eq!(
            answer["usage"],
            json!({"prompt_tokens": 0, "total_tokens": 0})
        );
        let mut answer = json!({"model": "m", "usage": {"prompt_tokens": 3, "total_tokens": 3}});
        finish_embeddings(Family::Gemini, "m", &mut answer);
        assert_eq!(answer["usage"]["prompt_tokens"], 3);
        let mut answer = json!({"model": "upstream"});
        finish_embeddings(Family::OpenAi, "asked", &mut answer);
        assert_eq!(answer, json!({"model": "upstream"}));
    }

    #[test]
    fn usage_moves_into_one_final_chunk() {
        let mut coalescer = UsageCoalescer::default();
        let plain = r#"{"id":"a","choices":[{"delta":{"content":"usage"}}]}"#.to_string();
        assert_eq!(coalescer.pass(plain.clone()), plain);
        let first = coalescer.pass(
            json!({"id": "a", "created": 1, "model": "g", "choices": [{"delta": {"content": "x"}}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
            .to_string(),
        );
        assert_eq!(
            serde_json::from_str::<Value>(&first).unwrap()["usage"],
            Value::Null
        );
        coalescer.pass(
            json!({"id": "b", "created": 2, "model": "g", "choices": [],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6}})
            .to_string(),
        );
        let last: Value = serde_json::from_str(&coalescer.finish().unwrap()).unwrap();
        assert_eq!(
            last,
            json!({"id": "b", "choices": [], "created": 2, "model": "g",
                   "object": "chat.completion.chunk",
                   "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6}})
        );
        assert!(coalescer.finish().is_none());
        assert!(UsageCoalescer::default().finish().is_none());
    }
}
