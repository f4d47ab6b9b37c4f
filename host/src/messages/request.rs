//! Reading a `POST /v1/messages` (or `/v1/messages/count_tokens`) body.
//!
//! Checked here, as Anthropic documents them: `model` (a non-empty string), `messages` (a
//! non-empty list of `user` / `assistant` messages; `system` messages are accepted too, as
//! Claude Code sends them and OGX takes them), `max_tokens` (required to create, at least 1),
//! `stream`, `temperature` and `top_p` (0–1), `top_k` (at least 1), `stop_sequences` (strings),
//! `system` (a string or text blocks), `tools` (a list of objects), `tool_choice` (`auto`, `any`,
//! `none`, or `tool` with a `name`; a bare string is taken as its type, as OGX does),
//! `thinking` (`enabled` with `budget_tokens` of at least 1,024, `disabled`, `adaptive`) and
//! `metadata` (an object). Every other field (`context_management`, `container`, `mcp_servers`,
//! …) is accepted and not acted on. Content blocks are checked while they are converted
//! ([`super::convert`]). Failures are 400s naming the field by Anthropic's path.

use super::{MessagesError, invalid};
use serde_json::{Map, Value};

/// The smallest `thinking.budget_tokens` Anthropic accepts.
pub const MIN_THINKING_BUDGET: u64 = 1024;

/// What a body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `POST /v1/messages`.
    Create,
    /// `POST /v1/messages/count_tokens` (no `max_tokens`).
    CountTokens,
}

/// A checked Messages request.
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    /// The whole body, for the conversion.
    pub body: Map<String, Value>,
    /// The model id as the client sent it.
    pub model: String,
    pub stream: bool,
    /// `thinking` is `enabled` or `adaptive`.
    pub thinking: bool,
}

impl MessagesRequest {
    /// Parses and checks `bytes` for `purpose`.
    pub fn parse(bytes: &[u8], purpose: Purpose) -> Result<Self, MessagesError> {
        let body = match serde_json::from_slice(bytes) {
            Ok(Value::Object(body)) => body,
            Ok(_) => {
                return Err(MessagesError::Invalid(
                    "The request body must be a JSON object.".into(),
                ));
            }
            Err(error) => {
                return Err(MessagesError::Invalid(format!(
                    "The request body is not valid JSON ({error}). Send a JSON object with Content-Type: application/json."
                )));
            }
        };
        let model = match body.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.clone(),
            None | Some(Value::Null) => return Err(invalid("model", "Field required")),
            Some(_) => return Err(invalid("model", "must be a non-empty string")),
        };
        check_messages(&body)?;
        if purpose == Purpose::Create {
            match body.get("max_tokens") {
                None | Some(Value::Null) => return Err(invalid("max_tokens", "Field required")),
                Some(value) if value.as_u64().is_some_and(|n| n >= 1) => {}
                Some(_) => return Err(invalid("max_tokens", "must be an integer of at least 1")),
            }
        }
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(stream)) => *stream,
            Some(_) => return Err(invalid("stream", "must be true or false")),
        };
        check_number(&body, "temperature", 0.0, 1.0)?;
        check_number(&body, "top_p", 0.0, 1.0)?;
        if let Some(top_k) = body.get("top_k").filter(|v| !v.is_null())
            && top_k.as_u64().is_none_or(|n| n < 1)
        {
            return Err(invalid("top_k", "must be an integer of at least 1"));
        }
        match body.get("stop_sequences") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) if list.iter().all(Value::is_string) => {}
            Some(_) => return Err(invalid("stop_sequences", "must be a list of strings")),
        }
        check_system(&body)?;
        check_tools(&body)?;
        check_tool_choice(&body)?;
        let thinking = check_thinking(&body)?;
        if body
            .get("metadata")
            .is_some_and(|v| !v.is_null() && !v.is_object())
        {
            return Err(invalid("metadata", "must be an object"));
        }
        Ok(Self {
            body,
            model,
            stream,
            thinking,
        })
    }
}

fn check_messages(body: &Map<String, Value>) -> Result<(), MessagesError> {
    let messages = match body.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) => {
            return Err(invalid("messages", "at least one message is required"));
        }
        None | Some(Value::Null) => return Err(invalid("messages", "Field required")),
        Some(_) => return Err(invalid("messages", "must be a list of messages")),
    };
    for (index, message) in messages.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some("user" | "assistant" | "system") => {}
            Some(role) => {
                return Err(invalid(
                    &format!("messages.{index}.role"),
                    &format!("'{role}' is not one of user, assistant"),
                ));
            }
            None => return Err(invalid(&format!("messages.{index}.role"), "Field required")),
        }
        match message.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for (block_index, block) in blocks.iter().enumerate() {
                    if !block.get("type").is_some_and(Value::is_string) {
                        return Err(invalid(
                            &format!("messages.{index}.content.{block_index}.type"),
                            "Field required",
                        ));
                    }
                }
            }
            None | Some(Value::Null) => {
                return Err(invalid(
                    &format!("messages.{index}.content"),
                    "Field required",
                ));
            }
            Some(_) => {
                return Err(invalid(
                    &format!("messages.{index}.content"),
                    "must be a string or a list of content blocks",
                ));
            }
        }
    }
    Ok(())
}

fn check_number(
    body: &Map<String, Value>,
    field: &str,
    min: f64,
    max: f64,
) -> Result<(), MessagesError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Number(number)) if number.as_f64().is_some_and(|v| v >= min && v <= max) => {
            Ok(())
        }
        Some(value) => Err(invalid(
            field,
            &format!("must be a number between {min} and {max}, got {value}"),
        )),
    }
}

fn check_system(body: &Map<String, Value>) -> Result<(), MessagesError> {
    match body.get("system") {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(blocks)) => {
            for (index, block) in blocks.iter().enumerate() {
                if block.get("type").and_then(Value::as_str) != Some("text")
                    || !block.get("text").is_some_and(Value::is_string)
                {
                    return Err(invalid(
                        &format!("system.{index}"),
                        "must be a text block ({\"type\": \"text\", \"text\": ...})",
                    ));
                }
            }
            Ok(())
        }
        Some(_) => Err(invalid(
            "system",
            "must be a string or a list of text blocks",
        )),
    }
}

fn check_tools(body: &Map<String, Value>) -> Result<(), MessagesError> {
    let tools = match body.get("tools") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(invalid("tools", "must be a list of tools")),
    };
    for (index, tool) in tools.iter().enumerate() {
        if !tool.get("name").is_some_and(Value::is_string) {
            return Err(invalid(&format!("tools.{index}.name"), "Field required"));
        }
        let custom = matches!(
            tool.get("type").and_then(Value::as_str),
            None | Some("custom")
        );
        if custom && !tool.get("input_schema").is_some_and(Value::is_object) {
            return Err(invalid(
                &format!("tools.{index}.input_schema"),
                "Field required (a JSON schema object)",
            ));
        }
    }
    Ok(())
}

fn check_tool_choice(body: &Map<String, Value>) -> Result<(), MessagesError> {
    let Some(choice) = body.get("tool_choice").filter(|v| !v.is_null()) else {
        return Ok(());
    };
    let kind = choice
        .as_str()
        .or_else(|| choice.get("type").and_then(Value::as_str));
    match kind {
        Some("auto" | "any" | "none") => Ok(()),
        Some("tool") if choice.get("name").is_some_and(Value::is_string) => Ok(()),
        Some("tool") => Err(invalid("tool_choice.name", "Field required")),
        _ => Err(invalid(
            "tool_choice.type",
            "must be one of auto, any, tool, none",
        )),
    }
}

fn check_thinking(body: &Map<String, Value>) -> Result<bool, MessagesError> {
    let Some(thinking) = body.get("thinking").filter(|v| !v.is_null()) else {
        return Ok(false);
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("disabled") => Ok(false),
        Some("adaptive") => Ok(true),
        Some("enabled") => match thinking.get("budget_tokens") {
            None | Some(Value::Null) => Ok(true),
            Some(budget) if budget.as_u64().is_some_and(|n| n >= MIN_THINKING_BUDGET) => Ok(true),
            Some(_) => Err(invalid(
                "thinking.budget_tokens",
                &format!("must be an integer of at least {MIN_THINKING_BUDGET}"),
            )),
        },
        _ => Err(invalid(
            "thinking.type",
            "must be one of enabled, disabled, adaptive",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(body: &str, purpose: Purpose) -> String {
        match MessagesRequest::parse(body.as_bytes(), purpose) {
            Ok(_) => "accepted".into(),
            Err(error) => error.to_string(),
        }
    }

    const HI: &str = r#""messages":[{"role":"user","content":"hi"}]"#;

    #[test]
    fn bad_bodies_are_refused_naming_the_field() {
        let cases = [
            ("{".to_string(), "not valid JSON"),
            ("[1]".to_string(), "must be a JSON object"),
            (format!(r#"{{{HI},"max_tokens":5}}"#), "model: Field required"),
            (format!(r#"{{"model":"m",{HI}}}"#), "max_tokens: Field required"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":0}}"#), "max_tokens: must be"),
            (r#"{"model":"m","messages":[],"max_tokens":5}"#.to_string(), "at least one message"),
            (
                r#"{"model":"m","messages":[{"role":"tool","content":"x"}],"max_tokens":5}"#.to_string(),
                "messages.0.role: 'tool' is not one of",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"text":"x"}]}],"max_tokens":5}"#.to_string(),
                "messages.0.content.0.type: Field required",
            ),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"temperature":1.5}}"#), "temperature: must be a number between 0 and 1"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"top_k":0}}"#), "top_k: must be"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"stop_sequences":[1]}}"#), "stop_sequences: must be a list of strings"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"system":[{{"type":"image"}}]}}"#), "system.0: must be a text block"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"tools":[{{"name":"f"}}]}}"#), "tools.0.input_schema: Field required"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"tool_choice":{{"type":"tool"}}}}"#), "tool_choice.name: Field required"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"thinking":{{"type":"enabled","budget_tokens":100}}}}"#), "thinking.budget_tokens: must be"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"stream":"yes"}}"#), "stream: must be true or false"),
            (format!(r#"{{"model":"m",{HI},"max_tokens":5,"context_management":{{"edits":[]}},"anything":1}}"#), "accepted"),
        ];
        for (body, expected) in cases {
            let got = problem(&body, Purpose::Create);
            assert!(got.contains(expected), "{body}: {got}");
        }
    }

    #[test]
    fn count_tokens_needs_no_max_tokens_and_thinking_is_read() {
        assert_eq!(
            problem(&format!(r#"{{"model":"m",{HI}}}"#), Purpose::CountTokens),
            "accepted"
        );
        let request = MessagesRequest::parse(
            format!(r#"{{"model":"vllm/m",{HI},"max_tokens":9,"stream":true,"thinking":{{"type":"enabled","budget_tokens":4000}}}}"#).as_bytes(),
            Purpose::Create,
        )
        .unwrap();
        assert!(request.stream && request.thinking);
        assert_eq!(request.model, "vllm/m");
    }
}
