//! An Anthropic Messages request → the chat-completions request for the model's provider.
//!
//! - `system` (a string, or text blocks joined by newlines; `cache_control` dropped) is the
//!   first `system` message; `system` messages inside `messages` stay system messages.
//! - A user message's `tool_result` blocks become `tool` messages, emitted before the rest of
//!   the turn (chat completions want them right after the assistant's calls); `is_error`
//!   prefixes the result with `Error: `; text in a result's content list is joined, images in
//!   it move to the user message. Every `tool_result` must answer a `tool_use` of the previous
//!   assistant message (400 otherwise, as Anthropic answers).
//! - The rest of a user message: `text` → text parts, `image` (base64 or URL) → `image_url`
//!   parts, `document` → a `file` part (base64 PDF) or text (plain-text and content
//!   documents), `search_result` → text. One text part alone becomes a plain string.
//! - An assistant message's `text` blocks join as its content, `tool_use` blocks become its
//!   `tool_calls` (ids kept, `input` as JSON text); `thinking` and `redacted_thinking` blocks
//!   are context the upstream cannot take back and are dropped.
//! - Custom tools become functions (`input_schema` → `parameters`); Anthropic's server tools
//!   (`web_search_*`, `bash_*`, `text_editor_*`, …) are dropped, as OGX drops them.
//! - `tool_choice`: `auto` → `auto`, `any` → `required`, `tool` → the named function, `none` →
//!   `none`; `disable_parallel_tool_use` → `parallel_tool_calls: false`.
//! - `stop_sequences` → `stop`, `temperature`, `top_p`, `top_k` (an extra field the upstream
//!   may refuse), `metadata.user_id` → `user`, `service_tier` (`standard_only` → `default`),
//!   `max_tokens` → `max_completion_tokens` for OpenAI's own API (which refuses `max_tokens` for
//!   reasoning models) and `max_tokens` elsewhere, `thinking` and `output_config.effort` →
//!   `reasoning_effort` ([`reasoning_effort`]). Streaming asks for `stream_options.include_usage`.
//!
//! Any other content block type is a 400 naming it.

use super::request::MessagesRequest;
use super::{MessagesError, invalid};
use serde_json::{Map, Value, json};

/// Budgets up to this many thinking tokens are `reasoning_effort: low` (OGX's threshold).
pub const LOW_EFFORT_MAX_BUDGET: u64 = 2048;
/// Budgets up to this many are `medium`; larger ones `high`.
pub const MEDIUM_EFFORT_MAX_BUDGET: u64 = 8192;

/// Provider types whose upstream is OpenAI's own API, where `max_tokens` is refused by
/// reasoning models and `max_completion_tokens` is what is understood.
const MAX_COMPLETION_TOKENS_PROVIDERS: &[&str] = &["remote::openai", "remote::azure"];

/// Content block types ogx translates; any other is a 400.
const BLOCK_TYPES: &str =
    "text, image, document, search_result, tool_use, tool_result, thinking, redacted_thinking";

/// The chat-completions request for `request`, sent to `upstream_model` of a provider of
/// `provider_type`, streamed or not.
pub fn chat_request(
    request: &MessagesRequest,
    upstream_model: &str,
    provider_type: &str,
    stream: bool,
) -> Result<Value, MessagesError> {
    let body = &request.body;
    let mut chat = Map::new();
    chat.insert("model".into(), json!(upstream_model));
    chat.insert("messages".into(), Value::Array(chat_messages(body)?));
    if let Some(max) = body.get("max_tokens").filter(|v| !v.is_null()) {
        let field = if MAX_COMPLETION_TOKENS_PROVIDERS.contains(&provider_type) {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        chat.insert(field.into(), max.clone());
    }
    for field in ["temperature", "top_p", "top_k"] {
        if let Some(value) = body.get(field).filter(|v| !v.is_null()) {
            chat.insert(field.into(), value.clone());
        }
    }
    if let Some(Value::Array(stops)) = body.get("stop_sequences")
        && !stops.is_empty()
    {
        chat.insert("stop".into(), Value::Array(stops.clone()));
    }
    if let Some(user) = body
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .filter(|u| u.is_string())
    {
        chat.insert("user".into(), user.clone());
    }
    let tier = match body.get("service_tier").and_then(Value::as_str) {
        Some("standard_only") => Some("default"),
        Some("auto") => Some("auto"),
        _ => None,
    };
    if let Some(tier) = tier {
        chat.insert("service_tier".into(), json!(tier));
    }
    if let Some(effort) = reasoning_effort(body) {
        chat.insert("reasoning_effort".into(), json!(effort));
    }
    let tools = chat_tools(body);
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = body.get("tool_choice").filter(|v| !v.is_null()) {
            let kind = choice
                .as_str()
                .or_else(|| choice.get("type").and_then(Value::as_str));
            let mapped = match kind {
                Some("any") => json!("required"),
                Some("none") => json!("none"),
                Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
                _ => json!("auto"),
            };
            chat.insert("tool_choice".into(), mapped);
            if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
                chat.insert("parallel_tool_calls".into(), json!(false));
            }
        }
    }
    chat.insert("stream".into(), json!(stream));
    if stream {
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(chat))
}

/// The `reasoning_effort` of a request: Anthropic's `output_config.effort` when given (`low`,
/// `medium`, `high` as they are, `max` as `high`; Claude Code sends it with adaptive thinking),
/// else `thinking` `enabled` by its budget (≤ 2,048 low, ≤ 8,192 medium, else high; no budget:
/// medium); `adaptive` and `disabled` thinking alone send none (the upstream's default).
pub fn reasoning_effort(body: &Map<String, Value>) -> Option<&'static str> {
    let effort = body
        .get("output_config")
        .and_then(|c| c.get("effort"))
        .and_then(Value::as_str);
    match effort {
        Some("low") => return Some("low"),
        Some("medium") => return Some("medium"),
        Some("high" | "max") => return Some("high"),
        _ => {}
    }
    let thinking = body.get("thinking")?;
    if thinking.get("type").and_then(Value::as_str) != Some("enabled") {
        return None;
    }
    Some(
        match thinking.get("budget_tokens").and_then(Value::as_u64) {
            None => "medium",
            Some(budget) if budget <= LOW_EFFORT_MAX_BUDGET => "low",
            Some(budget) if budget <= MEDIUM_EFFORT_MAX_BUDGET => "medium",
            Some(_) => "high",
        },
    )
}

/// The chat messages: `system` first, then each Anthropic message as one or more.
pub fn chat_messages(body: &Map<String, Value>) -> Result<Vec<Value>, MessagesError> {
    let mut out = Vec::new();
    match body.get("system") {
        Some(Value::String(text)) => out.push(json!({"role": "system", "content": text})),
        Some(Value::Array(blocks)) => {
            out.push(json!({"role": "system", "content": block_texts(blocks)}));
        }
        _ => {}
    }
    let empty = Vec::new();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    // The tool_use ids of the last assistant message, which the next tool_results answer.
    let mut open_calls: Vec<String> = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let role = message["role"].as_str().unwrap_or("user");
        let blocks = match &message["content"] {
            Value::String(text) => {
                out.push(json!({"role": role, "content": text}));
                continue;
            }
            Value::Array(blocks) => blocks,
            _ => continue,
        };
        match role {
            "assistant" => {
                let (message, calls) = assistant_message(blocks, index)?;
                out.push(message);
                open_calls = calls;
            }
            "system" => out.push(json!({"role": "system", "content": block_texts(blocks)})),
            _ => {
                out.extend(user_messages(blocks, index, &open_calls)?);
                open_calls.clear();
            }
        }
    }
    Ok(out)
}

/// The text of text blocks, joined by newlines.
fn block_texts(blocks: &[Value]) -> String {
    blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assistant_message(
    blocks: &[Value],
    index: usize,
) -> Result<(Value, Vec<String>), MessagesError> {
    let mut texts = Vec::new();
    let mut calls = Vec::new();
    let mut ids = Vec::new();
    for (block_index, block) in blocks.iter().enumerate() {
        let path = format!("messages.{index}.content.{block_index}");
        match block["type"].as_str().unwrap_or_default() {
            "text" => texts.push(required_str(block, "text", &path)?),
            "tool_use" => {
                let id = required_str(block, "id", &path)?;
                let name = required_str(block, "name", &path)?;
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                ids.push(id.to_string());
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            "thinking" | "redacted_thinking" => {}
            other => return Err(unknown_block(&path, other, "an assistant message")),
        }
    }
    let mut message = json!({"role": "assistant", "content": null});
    if !texts.is_empty() {
        message["content"] = json!(texts.join("\n"));
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    Ok((message, ids))
}

/// A user message: its tool results first (as `tool` messages), then the rest of the turn.
fn user_messages(
    blocks: &[Value],
    index: usize,
    open_calls: &[String],
) -> Result<Vec<Value>, MessagesError> {
    let mut out = Vec::new();
    let mut parts = Vec::new();
    for (block_index, block) in blocks.iter().enumerate() {
        let path = format!("messages.{index}.content.{block_index}");
        match block["type"].as_str().unwrap_or_default() {
            "tool_result" => {
                let id = required_str(block, "tool_use_id", &path)?;
                if !open_calls.iter().any(|call| call == id) {
                    return Err(invalid(
                        &path,
                        &format!(
                            "unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                        ),
                    ));
                }
                let mut text = match block.get("content") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Array(inner)) => {
                        let mut texts = Vec::new();
                        for (inner_index, item) in inner.iter().enumerate() {
                            let inner_path = format!("{path}.content.{inner_index}");
                            match user_part(item, &inner_path)? {
                                Some(part) if part["type"] == "text" => texts
                                    .push(part["text"].as_str().unwrap_or_default().to_string()),
                                Some(part) => parts.push(part),
                                None => {}
                            }
                        }
                        texts.join("\n")
                    }
                    Some(_) => {
                        return Err(invalid(
                            &format!("{path}.content"),
                            "must be a string or a list of content blocks",
                        ));
                    }
                };
                if block.get("is_error") == Some(&Value::Bool(true)) {
                    text = format!("Error: {text}");
                }
                out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            _ => parts.extend(user_part(block, &path)?),
        }
    }
    if parts.len() == 1 && parts[0]["type"] == "text" {
        out.push(json!({"role": "user", "content": parts[0]["text"]}));
    } else if !parts.is_empty() || out.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(out)
}

/// One block of a user turn (or of a tool result) as a chat content part; `None` for blocks
/// the upstream cannot take (thinking).
fn user_part(block: &Value, path: &str) -> Result<Option<Value>, MessagesError> {
    let text_part = |text: &str| Some(json!({"type": "text", "text": text}));
    match block["type"].as_str().unwrap_or_default() {
        "text" => Ok(text_part(required_str(block, "text", path)?)),
        "image" => {
            let source = &block["source"];
            let url = match source["type"].as_str() {
                Some("base64") => format!(
                    "data:{};base64,{}",
                    required_str(source, "media_type", &format!("{path}.source"))?,
                    required_str(source, "data", &format!("{path}.source"))?
                ),
                Some("url") => required_str(source, "url", &format!("{path}.source"))?.to_string(),
                _ => {
                    return Err(invalid(
                        &format!("{path}.source.type"),
                        "must be base64 or url (Files API ids cannot be carried to chat completions)",
                    ));
                }
            };
            Ok(Some(
                json!({"type": "image_url", "image_url": {"url": url}}),
            ))
        }
        "document" => document_part(block, path),
        "search_result" => {
            let mut text = String::new();
            for key in ["title", "source"] {
                if let Some(value) = block[key].as_str() {
                    text.push_str(value);
                    text.push('\n');
                }
            }
            if let Some(Value::Array(content)) = block.get("content") {
                text.push_str(&block_texts(content));
            }
            Ok(text_part(&text))
        }
        "thinking" | "redacted_thinking" => Ok(None),
        other => Err(unknown_block(path, other, "a user message")),
    }
}

/// A `document` block: a base64 PDF as a `file` part, a plain-text or content document as
/// text. URL and Files API documents cannot be carried by chat completions (400).
fn document_part(block: &Value, path: &str) -> Result<Option<Value>, MessagesError> {
    let source = &block["source"];
    let source_path = format!("{path}.source");
    match source["type"].as_str() {
        Some("base64") => {
            let media_type = required_str(source, "media_type", &source_path)?;
            let data = required_str(source, "data", &source_path)?;
            let filename = block["title"].as_str().unwrap_or("document.pdf");
            Ok(Some(json!({"type": "file", "file": {
                "filename": filename,
                "file_data": format!("data:{media_type};base64,{data}"),
            }})))
        }
        Some("text") => Ok(Some(
            json!({"type": "text", "text": required_str(source, "data", &source_path)?}),
        )),
        Some("content") => {
            let text = match &source["content"] {
                Value::String(text) => text.clone(),
                Value::Array(blocks) => block_texts(blocks),
                _ => String::new(),
            };
            Ok(Some(json!({"type": "text", "text": text})))
        }
        _ => Err(invalid(
            &format!("{source_path}.type"),
            "must be base64, text or content: chat completions cannot fetch a document by URL or Files API id; send its data",
        )),
    }
}

/// The custom tools as chat functions.
fn chat_tools(body: &Map<String, Value>) -> Vec<Value> {
    let Some(Value::Array(tools)) = body.get("tools") else {
        return Vec::new();
    };
    tools
        .iter()
        .filter(|tool| {
            matches!(
                tool.get("type").and_then(Value::as_str),
                None | Some("custom")
            )
        })
        .map(|tool| {
            let mut function = json!({"name": tool["name"], "parameters": tool["input_schema"]});
            if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
                function["description"] = description.clone();
            }
            json!({"type": "function", "function": function})
        })
        .collect()
}

fn required_str<'a>(value: &'a Value, field: &str, path: &str) -> Result<&'a str, MessagesError> {
    value[field]
        .as_str()
        .ok_or_else(|| invalid(&format!("{path}.{field}"), "Field required (a string)"))
}

fn unknown_block(path: &str, kind: &str, place: &str) -> MessagesError {
    invalid(
        &format!("{path}.type"),
        &format!(
            "'{kind}' is not a content block ogx can translate in {place} (expected one of {BLOCK_TYPES})"
        ),
    )
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
