//! Reading a `POST /v1/responses` body into a [`CreateResponse`].
//!
//! Checked here: `model`, `input` (a string or a list of items), `stream`, `store`, the
//! numeric ranges OpenAI documents (`temperature` 0–2, `top_p` 0–1, `max_output_tokens` at
//! least [`MIN_MAX_OUTPUT_TOKENS`]), `metadata` (at most [`MAX_METADATA_PAIRS`] string pairs),
//! `tools` (only `function` tools: built-in tools that need the server to run them answer 400
//! naming the type), `tool_choice`, `text.format` and `reasoning`. Fields OpenAI defines that
//! change nothing here (`include`, `user`, `truncation: disabled`, …) are accepted.
//!
//! Form-encoded bodies are read as OGX reads them: each value is tried as JSON and kept as a
//! string otherwise; a repeated key becomes a list.

use super::{ResponsesError, invalid};
use serde_json::{Map, Value};

/// OpenAI's smallest `max_output_tokens`.
pub const MIN_MAX_OUTPUT_TOKENS: u64 = 16;
/// OpenAI's limit on `metadata` pairs.
pub const MAX_METADATA_PAIRS: usize = 16;
/// Built-in tool types OpenAI runs on its servers; ogx does not run them yet.
pub const SERVER_SIDE_TOOL_TYPES: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "web_search_2025_08_26",
    "file_search",
    "mcp",
    "code_interpreter",
    "computer_use_preview",
    "image_generation",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
];

/// A checked create-response request.
#[derive(Debug, Clone)]
pub struct CreateResponse {
    /// The whole body, for echoing fields into the Response object.
    pub body: Map<String, Value>,
    pub model: String,
    /// The input as a list of items (a string input becomes one user message).
    pub input: Vec<Value>,
    pub instructions: Option<String>,
    pub previous_response_id: Option<String>,
    pub stream: bool,
    pub store: bool,
}

impl CreateResponse {
    /// Parses a JSON body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ResponsesError> {
        match serde_json::from_slice(bytes) {
            Ok(Value::Object(body)) => Self::from_body(body),
            Ok(_) => Err(ResponsesError::Invalid(
                "Invalid request body: expected a JSON object.".into(),
            )),
            Err(error) => Err(ResponsesError::Invalid(format!(
                "Invalid request body: not valid JSON ({error}). Send a JSON object with Content-Type: application/json."
            ))),
        }
    }

    /// Parses an `application/x-www-form-urlencoded` body.
    pub fn from_form(bytes: &[u8]) -> Result<Self, ResponsesError> {
        let mut values: Vec<(String, Vec<Value>)> = Vec::new();
        for (key, text) in form_urlencoded::parse(bytes) {
            let value = serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()));
            match values.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(value),
                None => values.push((key.into_owned(), vec![value])),
            }
        }
        let body = values
            .into_iter()
            .map(|(key, mut list)| {
                let value = if list.len() == 1 {
                    list.remove(0)
                } else {
                    Value::Array(list)
                };
                (key, value)
            })
            .collect();
        Self::from_body(body)
    }

    /// Checks a body.
    pub fn from_body(body: Map<String, Value>) -> Result<Self, ResponsesError> {
        let model = match body.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.clone(),
            Some(_) => return Err(invalid("model", "must be a non-empty string")),
            None => return Err(missing("model")),
        };
        let input = match body.get("input") {
            Some(Value::String(text)) => vec![serde_json::json!({
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            })],
            Some(Value::Array(items)) => items.clone(),
            Some(_) => return Err(invalid("input", "must be a string or a list of items")),
            None => return Err(missing("input")),
        };
        let stream = flag(&body, "stream", false)?;
        let store = flag(&body, "store", true)?;
        let instructions = optional_string(&body, "instructions")?;
        let previous_response_id = optional_string(&body, "previous_response_id")?;
        check_range(&body, "temperature", 0.0, 2.0)?;
        check_range(&body, "top_p", 0.0, 1.0)?;
        check_range(
            &body,
            "max_output_tokens",
            MIN_MAX_OUTPUT_TOKENS as f64,
            f64::MAX,
        )?;
        check_metadata(&body)?;
        check_tools(&body)?;
        check_text_format(&body)?;
        if body
            .get("reasoning")
            .is_some_and(|v| !v.is_null() && !v.is_object())
        {
            return Err(invalid(
                "reasoning",
                "must be an object such as {\"effort\": \"low\"}",
            ));
        }
        match body.get("include") {
            None | Some(Value::Null) | Some(Value::Array(_)) => {}
            Some(_) => return Err(invalid("include", "must be a list of strings")),
        }
        if body.get("background") == Some(&Value::Bool(true)) {
            return Err(invalid(
                "background",
                "is not supported by ogx yet; leave it out",
            ));
        }
        if body.get("conversation").is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                "conversation",
                "is not supported by ogx yet; chain responses with previous_response_id",
            ));
        }
        Ok(Self {
            body,
            model,
            input,
            instructions,
            previous_response_id,
            stream,
            store,
        })
    }
}

fn missing(field: &str) -> ResponsesError {
    ResponsesError::Invalid(format!("Invalid request body: '{field}' is required."))
}

fn flag(body: &Map<String, Value>, field: &str, default: bool) -> Result<bool, ResponsesError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(_) => Err(invalid(field, "must be true or false")),
    }
}

fn optional_string(
    body: &Map<String, Value>,
    field: &str,
) -> Result<Option<String>, ResponsesError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn check_range(
    body: &Map<String, Value>,
    field: &str,
    min: f64,
    max: f64,
) -> Result<(), ResponsesError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(number)) => {
            let value = number.as_f64().unwrap_or(f64::NAN);
            if value >= min && value <= max {
                Ok(())
            } else if max == f64::MAX {
                Err(invalid(
                    field,
                    &format!("must be at least {min}, got {number}"),
                ))
            } else {
                Err(invalid(
                    field,
                    &format!("must be between {min} and {max}, got {number}"),
                ))
            }
        }
        Some(_) => Err(invalid(field, "must be a number")),
    }
}

fn check_metadata(body: &Map<String, Value>) -> Result<(), ResponsesError> {
    match body.get("metadata") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(pairs)) if pairs.len() > MAX_METADATA_PAIRS => Err(invalid(
            "metadata",
            &format!("may hold at most {MAX_METADATA_PAIRS} pairs"),
        )),
        Some(Value::Object(pairs)) => match pairs.iter().find(|(_, v)| !v.is_string()) {
            Some((key, _)) => Err(invalid(&format!("metadata.{key}"), "must be a string")),
            None => Ok(()),
        },
        Some(_) => Err(invalid("metadata", "must be an object of string values")),
    }
}

fn check_tools(body: &Map<String, Value>) -> Result<(), ResponsesError> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("tools", "must be a list of tools")),
    };
    for (index, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {
                if !tool.get("name").is_some_and(Value::is_string) {
                    return Err(missing(&format!("tools[{index}].name")));
                }
            }
            Some(kind) if SERVER_SIDE_TOOL_TYPES.contains(&kind) => {
                return Err(ResponsesError::Invalid(format!(
                    "Tool type '{kind}' (tools[{index}]) is not supported yet: ogx's Responses API runs only 'function' tools, which the client executes. Remove the '{kind}' tool or run it in the client as a function tool."
                )));
            }
            Some(kind) => {
                return Err(invalid(
                    &format!("tools[{index}].type"),
                    &format!("'{kind}' is not a tool type ogx knows; use 'function'"),
                ));
            }
            None => return Err(missing(&format!("tools[{index}].type"))),
        }
    }
    Ok(())
}

fn check_text_format(body: &Map<String, Value>) -> Result<(), ResponsesError> {
    let Some(format) = body
        .get("text")
        .and_then(|text| text.get("format"))
        .filter(|f| !f.is_null())
    else {
        return Ok(());
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") | Some("json_object") => Ok(()),
        Some("json_schema") => {
            if !format.get("name").is_some_and(Value::is_string) {
                return Err(missing("text.format.name"));
            }
            if !format.get("schema").is_some_and(Value::is_object) {
                return Err(missing("text.format.schema"));
            }
            Ok(())
        }
        _ => Err(invalid(
            "text.format.type",
            "must be one of text, json_schema, json_object",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(body: &str) -> String {
        match CreateResponse::from_json(body.as_bytes()) {
            Ok(_) => "accepted".into(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn bad_bodies_are_refused_naming_the_field() {
        let cases = [
            (r#"{"input":"hi"}"#, "'model' is required"),
            (r#"{"model":"m"}"#, "'input' is required"),
            (
                r#"{"model":"m","input":3}"#,
                "'input' must be a string or a list",
            ),
            (
                r#"{"model":"m","input":"x","temperature":3}"#,
                "'temperature' must be between 0 and 2",
            ),
            (
                r#"{"model":"m","input":"x","max_output_tokens":4}"#,
                "'max_output_tokens' must be at least 16",
            ),
            (
                r#"{"model":"m","input":"x","metadata":{"a":1}}"#,
                "'metadata.a' must be a string",
            ),
            (
                r#"{"model":"m","input":"x","tools":[{"type":"web_search"}]}"#,
                "Tool type 'web_search' (tools[0]) is not supported yet",
            ),
            (
                r#"{"model":"m","input":"x","tools":[{"type":"mcp","server_label":"s"}]}"#,
                "Tool type 'mcp'",
            ),
            (
                r#"{"model":"m","input":"x","tools":[{"type":"function"}]}"#,
                "'tools[0].name' is required",
            ),
            (
                r#"{"model":"m","input":"x","text":{"format":{"type":"json_schema","schema":{}}}}"#,
                "'text.format.name' is required",
            ),
            (
                r#"{"model":"m","input":"x","stream":"yes"}"#,
                "'stream' must be true or false",
            ),
            (r#"{"model":"m","input":"x"}"#, "accepted"),
        ];
        for (body, expected) in cases {
            let got = problem(body);
            assert!(got.contains(expected), "{body}: {got}");
        }
    }

    #[test]
    fn string_input_is_one_user_message_and_store_defaults_to_true() {
        let request = CreateResponse::from_json(br#"{"model":"m","input":"hello"}"#).unwrap();
        assert_eq!(request.input[0]["role"], "user");
        assert_eq!(request.input[0]["content"][0]["text"], "hello");
        assert!(request.store && !request.stream);
    }

    #[test]
    fn form_values_are_json_when_they_parse() {
        let request = CreateResponse::from_form(
            b"model=vllm%2Fm&input=hello&temperature=0.5&stream=false&metadata=%7B%22k%22%3A%22v%22%7D",
        )
        .unwrap();
        assert_eq!(request.model, "vllm/m");
        assert_eq!(request.body["temperature"], 0.5);
        assert_eq!(request.body["metadata"]["k"], "v");
        assert_eq!(request.input[0]["content"][0]["text"], "hello");
    }
}
