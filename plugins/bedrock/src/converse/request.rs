//! An OpenAI chat-completions body as a Converse request body.
//!
//! Messages: `system` and `developer` → top-level `system` text blocks, in order; `user` →
//! user turns (text, images, documents: [`super::content`]); `assistant` → assistant turns:
//! its `thinking_blocks` (signed reasoning sent back, see below) first, then text, then one
//! `toolUse` per `tool_calls` entry with the arguments parsed (empty → `{}`); `tool` →
//! a `toolResult` in a user turn. Consecutive turns of one role are merged into one message
//! (Converse needs strict user/assistant alternation; parallel tool results become one turn),
//! and messages left without content are dropped. Tool-call ids are cut to Bedrock's
//! `[a-zA-Z0-9_-]{1,64}` the same way on both sides of a round trip.
//!
//! Reasoning sent back: an assistant message's `thinking_blocks` (`[{"type": "thinking",
//! "thinking", "signature"}]` or `{"type": "redacted_thinking", "data"}`, the shape this
//! plugin answers with) become `reasoningContent` blocks. A bare `reasoning_content` string
//! has no signature, which Claude would refuse, so it is not sent.
//!
//! Tools: `tools` → `toolConfig.tools[].toolSpec`; `tool_choice` `auto` → `{auto}`, `required`
//! → `{any}`, a named function → `{tool}`, `none` → no `toolConfig` at all (Converse has no
//! "none") unless the history holds tool blocks, which need one; tool blocks in the history
//! without `tools` get minimal specs synthesised from their names. `response_format`
//! `json_schema` (and `json_object`, with an open object schema) → one more tool that the
//! model is made to call; its input comes back as the message content.
//!
//! Parameters: `max_completion_tokens` (else `max_tokens`) → `maxTokens`, `temperature`
//! (clamped to Bedrock's 0..1), `top_p` → `topP`, `stop` → `stopSequences`;
//! `reasoning_effort` → Claude `thinking` (low 1024, medium 2048, high 4096 budget tokens;
//! not when the last assistant turn calls tools without a signed reasoning block, which
//! Claude would refuse with thinking on),
//! Nova 2 `reasoningConfig`, OpenAI models' `reasoning_effort`; a `thinking` object and
//! `top_k` go to `additionalModelRequestFields` as they are. From the request's extra body
//! (camel or snake case): `guardrailConfig`, `additionalModelRequestFields` (merged over
//! everything above), `additionalModelResponseFieldPaths`, `performanceConfig`,
//! `requestMetadata`, `promptVariables`. `model_overrides` settings apply first.
//! `n` > 1 is refused (Converse answers one choice); logprobs, seed, penalties, logit_bias
//! and audio have no Converse field and are ignored.

use ogx_provider_sdk::{Map, ProviderError, Value};
use serde_json::json;

use super::content::{self, DocumentNames, FetchImage, cache_point};
use crate::routing::ModelSettings;

/// Name of the forced tool that carries `response_format` when the schema has no usable name.
pub const JSON_TOOL: &str = "json_response";

/// A Converse request, with what the answer's mapping needs to know.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The Converse body.
    pub body: Value,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// The tool carrying `response_format`, whose input is the answer's content.
    pub json_tool: Option<String>,
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidRequest(message.into())
}

/// Builds the Converse request for `request` to `model`.
pub fn build(
    request: &Value,
    model: &str,
    settings: &ModelSettings,
    fetch: FetchImage,
) -> Result<Plan, ProviderError> {
    let get = |key: &str| request.get(key).filter(|v| !v.is_null());
    if get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(bad(
            "n > 1 is not supported by Converse models: they answer one choice",
        ));
    }
    let messages = get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("messages must be a list"))?;
    let conversation = Conversation::from_messages(messages, fetch)?;
    let mut body = Map::new();
    let mut system = conversation.system;
    if settings.prompt_caching && !system.is_empty() {
        system.push(cache_point());
    }
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    body.insert("messages".into(), Value::Array(conversation.turns));

    let mut inference = Map::new();
    if let Some(max) = get("max_completion_tokens").or_else(|| get("max_tokens")) {
        inference.insert("maxTokens".into(), max.clone());
    }
    if let Some(t) = get("temperature").and_then(Value::as_f64) {
        inference.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = get("top_p") {
        inference.insert("topP".into(), p.clone());
    }
    match get("stop") {
        Some(Value::String(s)) => {
            inference.insert("stopSequences".into(), json!([s]));
        }
        Some(Value::Array(list)) if !list.is_empty() => {
            inference.insert("stopSequences".into(), Value::Array(list.clone()));
        }
        _ => {}
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }

    let json_tool = json_tool(get("response_format"))?;
    if let Some(tool_config) = tool_config(
        request,
        conversation.history_tools,
        json_tool.as_ref(),
        settings.prompt_caching,
    )? {
        body.insert("toolConfig".into(), tool_config);
    }

    let unsigned_tool_turn = last_tool_turn_unsigned(&conversation_turns(&body));
    let fields = additional_fields(request, model, settings, unsigned_tool_turn);
    if !fields.is_empty() {
        body.insert("additionalModelRequestFields".into(), Value::Object(fields));
    }
    if let Some(guardrail) =
        extra(request, "guardrailConfig", "guardrail_config").or(settings.guardrail_config.as_ref())
    {
        body.insert("guardrailConfig".into(), guardrail.clone());
    }
    for (camel, snake) in [
        (
            "additionalModelResponseFieldPaths",
            "additional_model_response_field_paths",
        ),
        ("performanceConfig", "performance_config"),
        ("requestMetadata", "request_metadata"),
        ("promptVariables", "prompt_variables"),
    ] {
        if let Some(value) = extra(request, camel, snake) {
            body.insert(camel.into(), value.clone());
        }
    }
    Ok(Plan {
        body: Value::Object(body),
        include_usage: request
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        json_tool: json_tool.map(|(name, _)| name),
    })
}

fn conversation_turns(body: &Map<String, Value>) -> Vec<Value> {
    body.get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Whether the last assistant turn calls tools without a signed reasoning block: Claude
/// refuses extended thinking on such a conversation, so `reasoning_effort` is not turned into
/// `thinking` for it (a Responses API tool loop, whose reasoning items carry no signature).
fn last_tool_turn_unsigned(turns: &[Value]) -> bool {
    let Some(last) = turns.iter().rev().find(|t| t["role"] == "assistant") else {
        return false;
    };
    let blocks = last["content"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    blocks.iter().any(|b| b.get("toolUse").is_some())
        && !blocks.iter().any(|b| b.get("reasoningContent").is_some())
}

/// An extra-body field under its camel-case or snake-case name.
fn extra<'a>(request: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    request
        .get(camel)
        .or_else(|| request.get(snake))
        .filter(|v| !v.is_null())
}

/// The messages, turned into Converse turns.
struct Conversation {
    system: Vec<Value>,
    turns: Vec<Value>,
    /// Names of the tools the history's `toolUse` blocks call (empty: no tool blocks).
    history_tools: Option<Vec<String>>,
}

/// A tool-call id within Bedrock's `[a-zA-Z0-9_-]{1,64}`.
pub fn tool_use_id(id: &str) -> String {
    let clean: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if clean.is_empty() {
        "call".into()
    } else {
        clean
    }
}

impl Conversation {
    fn from_messages(messages: &[Value], fetch: FetchImage) -> Result<Self, ProviderError> {
        let mut system = Vec::new();
        let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
        let mut history_tools: Option<Vec<String>> = None;
        let mut names = DocumentNames::default();
        for (i, message) in messages.iter().enumerate() {
            let role = message
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let content = message.get("content").unwrap_or(&Value::Null);
            let (role, mut blocks) = match role {
                "system" | "developer" => {
                    let mut blocks = content::blocks(content, fetch, &mut names)?;
                    if blocks
                        .iter()
                        .any(|b| b.get("text").is_none() && b.get("cachePoint").is_none())
                    {
                        return Err(bad(format!(
                            "messages[{i}]: {role} messages take text only"
                        )));
                    }
                    if has_cache_control(message) {
                        blocks.push(cache_point());
                    }
                    system.extend(blocks);
                    continue;
                }
                "user" => ("user", content::blocks(content, fetch, &mut names)?),
                "assistant" => {
                    let mut blocks = thinking_blocks(message);
                    blocks.extend(content::blocks(content, fetch, &mut names)?);
                    for call in message
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let block = tool_use(call, i)?;
                        let name = block["toolUse"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                        history_tools.get_or_insert_with(Vec::new).push(name);
                        blocks.push(block);
                    }
                    ("assistant", blocks)
                }
                "tool" => {
                    let id = message
                        .get("tool_call_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            bad(format!("messages[{i}]: a tool message needs tool_call_id"))
                        })?;
                    let text = content::text_of(content);
                    let result = if text.is_empty() {
                        json!([])
                    } else {
                        json!([{"text": text}])
                    };
                    history_tools.get_or_insert_with(Vec::new);
                    (
                        "user",
                        vec![
                            json!({"toolResult": {"toolUseId": tool_use_id(id), "content": result}}),
                        ],
                    )
                }
                other => {
                    return Err(bad(format!(
                        "messages[{i}]: role `{other}` cannot be sent to a Converse model"
                    )));
                }
            };
            if blocks.iter().all(|b| b.get("cachePoint").is_some()) {
                continue;
            }
            if has_cache_control(message) {
                blocks.push(cache_point());
            }
            match turns.last_mut() {
                Some((last, existing)) if *last == role => existing.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }
        let turns = turns
            .into_iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        Ok(Conversation {
            system,
            turns,
            history_tools,
        })
    }
}

fn has_cache_control(message: &Value) -> bool {
    message.get("cache_control").is_some_and(|c| !c.is_null())
}

fn thinking_blocks(message: &Value) -> Vec<Value> {
    let blocks = message.get("thinking_blocks").and_then(Value::as_array);
    blocks
        .into_iter()
        .flatten()
        .filter_map(|block| match block.get("type").and_then(Value::as_str) {
            Some("thinking") => {
                let signature = block.get("signature").and_then(Value::as_str)?;
                let text = block.get("thinking").and_then(Value::as_str).unwrap_or_default();
                Some(json!({"reasoningContent": {"reasoningText": {"text": text, "signature": signature}}}))
            }
            Some("redacted_thinking") => {
                let data = block.get("data").and_then(Value::as_str)?;
                Some(json!({"reasoningContent": {"redactedContent": data}}))
            }
            _ => None,
        })
        .collect()
}

fn tool_use(call: &Value, i: usize) -> Result<Value, ProviderError> {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("messages[{i}]: every tool call needs an id")))?;
    let name = call
        .pointer("/function/name")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(format!(
                "messages[{i}]: every tool call needs function.name"
            ))
        })?;
    let arguments = call
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .unwrap_or("");
    let input: Value = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments).map_err(|err| {
            bad(format!(
                "messages[{i}]: the arguments of tool call {id} are not JSON: {err}"
            ))
        })?
    };
    Ok(json!({"toolUse": {"toolUseId": tool_use_id(id), "name": name, "input": input}}))
}

/// `response_format` as a (tool name, input schema), when it asks for JSON.
fn json_tool(format: Option<&Value>) -> Result<Option<(String, Value)>, ProviderError> {
    let Some(format) = format else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("json_schema") => {
            let spec = format.get("json_schema").unwrap_or(&Value::Null);
            let schema = spec
                .get("schema")
                .filter(|s| s.is_object())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            let name = spec
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| {
                    n.len() <= 64
                        && n.starts_with(|c: char| c.is_ascii_alphabetic())
                        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .unwrap_or(JSON_TOOL);
            Ok(Some((name.to_string(), schema)))
        }
        Some("json_object") => Ok(Some((JSON_TOOL.into(), json!({"type": "object"})))),
        Some("text") | None => Ok(None),
        Some(other) => Err(bad(format!(
            "response_format type `{other}` is not supported"
        ))),
    }
}

fn tool_config(
    request: &Value,
    history_tools: Option<Vec<String>>,
    json_tool: Option<&(String, Value)>,
    prompt_caching: bool,
) -> Result<Option<Value>, ProviderError> {
    let mut tools = Vec::new();
    for (i, tool) in request
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let function = tool.get("function").ok_or_else(|| {
            bad(format!(
                "tools[{i}]: only function tools can be sent to a Converse model"
            ))
        })?;
        let name = function
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("tools[{i}]: function.name is required")))?;
        let mut spec = json!({"name": name, "inputSchema": {"json": function
            .get("parameters")
            .filter(|p| p.is_object())
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}))}});
        if let Some(description) = function
            .get("description")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            spec["description"] = json!(description);
        }
        tools.push(json!({"toolSpec": spec}));
        if tool.get("cache_control").is_some_and(|c| !c.is_null()) {
            tools.push(cache_point());
        }
    }
    let user_tools = !tools.is_empty();
    let choice = request.get("tool_choice").filter(|c| !c.is_null());
    let none = choice.and_then(Value::as_str) == Some("none");
    let mut tool_choice = match choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
            "none" => None,
            other => {
                return Err(bad(format!(
                    "tool_choice `{other}` is not one of auto, required, none"
                )));
            }
        },
        Some(named) => {
            let name = named
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("tool_choice must be auto, required, none or {\"type\": \"function\", \"function\": {\"name\": ...}}"))?;
            Some(json!({"tool": {"name": name}}))
        }
    };
    if none && history_tools.is_none() && json_tool.is_none() {
        return Ok(None);
    }
    if !user_tools && let Some(names) = &history_tools {
        let mut seen = std::collections::HashSet::new();
        for name in names.iter().filter(|n| seen.insert(n.as_str())) {
            tools.push(
                json!({"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}}),
            );
        }
    }
    if let Some((name, schema)) = json_tool {
        tools.push(json!({"toolSpec": {"name": name, "description": "Answer with JSON that matches this schema.", "inputSchema": {"json": schema}}}));
        if !user_tools {
            tool_choice = Some(json!({"tool": {"name": name}}));
        } else if tool_choice.is_none() || tool_choice == Some(json!({"auto": {}})) {
            tool_choice = Some(json!({"any": {}}));
        }
    }
    if tools.is_empty() {
        return Ok(None);
    }
    if prompt_caching && user_tools {
        tools.push(cache_point());
    }
    let mut config = json!({"tools": tools});
    if let Some(choice) = tool_choice.filter(|_| !none) {
        config["toolChoice"] = choice;
    }
    Ok(Some(config))
}

/// `additionalModelRequestFields`: model settings, then reasoning and `top_k`, then the
/// request's own.
fn additional_fields(
    request: &Value,
    model: &str,
    settings: &ModelSettings,
    unsigned_tool_turn: bool,
) -> Map<String, Value> {
    let mut fields = settings
        .additional_model_request_fields
        .clone()
        .unwrap_or_default();
    if let Some(thinking) = request.get("thinking").filter(|t| t.is_object()) {
        fields.insert("thinking".into(), thinking.clone());
    } else if let Some(effort) = request.get("reasoning_effort").and_then(Value::as_str) {
        let effort = effort.to_ascii_lowercase();
        let enabled = !matches!(effort.as_str(), "none" | "minimal");
        if model.contains("anthropic.") {
            let budget = match effort.as_str() {
                "low" => 1024,
                "medium" => 2048,
                _ => 4096,
            };
            if enabled && !unsigned_tool_turn {
                fields.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": budget}),
                );
            }
        } else if model.contains("amazon.nova-2") && enabled {
            fields.insert(
                "reasoningConfig".into(),
                json!({"type": "enabled", "maxReasoningEffort": effort}),
            );
        } else if model.contains("openai.") {
            fields.insert("reasoning_effort".into(), json!(effort));
        }
    }
    if let Some(top_k) = request.get("top_k").filter(|k| !k.is_null()) {
        fields.insert("top_k".into(), top_k.clone());
    }
    if let Some(Value::Object(own)) = extra(
        request,
        "additionalModelRequestFields",
        "additional_model_request_fields",
    ) {
        fields.extend(own.clone());
    }
    fields
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
