//! Responses items ⇄ chat-completions messages, and the chat-completions request for a
//! Responses request.
//!
//! Items → messages (in order): a `message` keeps its role (`input_text`/`output_text` parts
//! become text, `input_image` an `image_url` part, `input_file` a `file` part); consecutive
//! `function_call` items join the preceding assistant message as its `tool_calls` (one
//! assistant turn, as chat completions and strict-alternation backends such as Bedrock
//! expect); a `function_call_output` becomes a `tool` message; `reasoning` items are context
//! the upstream cannot take back and are dropped. Any other item type is a 400 naming it.
//!
//! Output items are valid input items, so a turn's output joins the chain's context through
//! the same conversion.

use super::request::CreateResponse;
use super::{ResponsesError, invalid, new_id};
use serde_json::{Map, Value, json};

/// The chat messages for `items`.
pub fn items_to_messages(items: &[Value]) -> Result<Vec<Value>, ResponsesError> {
    let mut messages: Vec<Value> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let field = |name: &str| format!("input[{index}].{name}");
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        match kind {
            "message" => messages.push(message(item, index)?),
            "function_call" => {
                let text = |name: &str| {
                    item.get(name)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| invalid(&field(name), "is required and must be a string"))
                };
                let call = json!({
                    "id": text("call_id")?,
                    "type": "function",
                    "function": {"name": text("name")?, "arguments": text("arguments")?},
                });
                match messages.last_mut() {
                    Some(last) if last["role"] == "assistant" => {
                        let calls = last
                            .as_object_mut()
                            .expect("messages are objects")
                            .entry("tool_calls")
                            .or_insert_with(|| json!([]));
                        if let Value::Array(calls) = calls {
                            calls.push(call);
                        }
                    }
                    _ => messages
                        .push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
                }
            }
            "function_call_output" => {
                let call_id = item.get("call_id").and_then(Value::as_str).ok_or_else(|| {
                    invalid(&field("call_id"), "is required and must be a string")
                })?;
                let output = match item.get("output") {
                    Some(Value::String(text)) => text.clone(),
                    Some(Value::Array(parts)) => parts_text(parts),
                    _ => return Err(invalid(&field("output"), "is required")),
                };
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            "reasoning" => {}
            other => {
                return Err(invalid(
                    &field("type"),
                    &format!(
                        "'{other}' is not supported by ogx yet: send message, function_call and function_call_output items"
                    ),
                ));
            }
        }
    }
    Ok(messages)
}

/// Checks that every `tool` message of `messages` answers a tool call made before it (a
/// `function_call_output` whose `call_id` matches no `function_call` of the chain or of the
/// input), with OpenAI's message.
pub fn check_outputs_answer_calls(messages: &[Value]) -> Result<(), ResponsesError> {
    let mut calls: Vec<&Value> = Vec::new();
    for message in messages {
        if let Some(Value::Array(made)) = message.get("tool_calls") {
            calls.extend(made.iter().map(|call| &call["id"]));
        }
        if message["role"] == "tool" && !calls.contains(&&message["tool_call_id"]) {
            return Err(ResponsesError::Invalid(format!(
                "No tool call found for function call output with call_id {}.",
                message["tool_call_id"].as_str().unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// One `message` item as a chat message.
fn message(item: &Value, index: usize) -> Result<Value, ResponsesError> {
    let role = item.get("role").and_then(Value::as_str).unwrap_or("");
    if !["user", "system", "developer", "assistant"].contains(&role) {
        return Err(invalid(
            &format!("input[{index}].role"),
            "must be one of user, system, developer, assistant",
        ));
    }
    let content = match item.get("content") {
        Some(Value::String(text)) => Value::String(text.clone()),
        Some(Value::Array(parts)) if role != "user" => Value::String(parts_text(parts)),
        Some(Value::Array(parts)) => Value::Array(
            parts
                .iter()
                .enumerate()
                .map(|(part_index, part)| user_part(part, index, part_index))
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(invalid(
                &format!("input[{index}].content"),
                "must be a string or a list of content parts",
            ));
        }
    };
    Ok(json!({"role": role, "content": content}))
}

/// The text of content parts (`input_text`, `output_text`, `text`), joined.
fn parts_text(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .collect()
}

fn user_part(part: &Value, index: usize, part_index: usize) -> Result<Value, ResponsesError> {
    let field = format!("input[{index}].content[{part_index}]");
    match part.get("type").and_then(Value::as_str) {
        Some("input_text") | Some("output_text") | Some("text") => Ok(json!({
            "type": "text",
            "text": part.get("text").and_then(Value::as_str).unwrap_or_default(),
        })),
        Some("input_image") => {
            let url = part
                .get("image_url")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    invalid(
                        &format!("{field}.image_url"),
                        "is required (a URL or a data: URL; file_id is not supported yet)",
                    )
                })?;
            let mut image = json!({"url": url});
            if let Some(detail) = part.get("detail").filter(|d| d.is_string()) {
                image["detail"] = detail.clone();
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        Some("input_file") => {
            let mut file = Map::new();
            for key in ["file_data", "file_id", "filename"] {
                if let Some(value) = part.get(key).filter(|v| v.is_string()) {
                    file.insert(key.into(), value.clone());
                }
            }
            Ok(json!({"type": "file", "file": file}))
        }
        _ => Err(invalid(
            &format!("{field}.type"),
            "must be one of input_text, input_image, input_file",
        )),
    }
}

/// The input items as stored: each with an `id` (`msg_…`, `fc_…`, `fco_…`) and a `type`.
pub fn with_ids(items: &[Value]) -> Vec<Value> {
    items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            if let Value::Object(object) = &mut item {
                let kind = object
                    .entry("type")
                    .or_insert_with(|| json!("message"))
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let prefix = match kind.as_str() {
                    "function_call" => "fc",
                    "function_call_output" => "fco",
                    "reasoning" => "rs",
                    _ => "msg",
                };
                object.entry("id").or_insert_with(|| json!(new_id(prefix)));
                if kind == "message"
                    && let Some(Value::String(text)) = object.get("content")
                {
                    let part_type = if object.get("role") == Some(&json!("assistant")) {
                        "output_text"
                    } else {
                        "input_text"
                    };
                    let parts = json!([{"type": part_type, "text": text}]);
                    object.insert("content".into(), parts);
                }
            }
            item
        })
        .collect()
}

/// Request fields that mean the same in chat completions and are passed as they are.
/// (`top_logprobs` is not: chat completions refuse it without `logprobs`.)
const PASSED_FIELDS: &[&str] = &[
    "temperature",
    "top_p",
    "user",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
];

/// The streaming chat-completions request for `request`, with `context` (the chain's
/// messages and this turn's input, without instructions) and the upstream model id.
pub fn chat_request(request: &CreateResponse, context: &[Value], upstream_model: &str) -> Value {
    let body = &request.body;
    let mut messages = Vec::with_capacity(context.len() + 1);
    if let Some(instructions) = &request.instructions {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    messages.extend_from_slice(context);
    let mut chat = json!({
        "model": upstream_model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    for field in PASSED_FIELDS {
        if let Some(value) = body.get(*field).filter(|v| !v.is_null()) {
            chat[*field] = value.clone();
        }
    }
    if let Some(max) = body.get("max_output_tokens").filter(|v| !v.is_null()) {
        chat["max_completion_tokens"] = max.clone();
    }
    if let Some(effort) = body
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .filter(|e| e.is_string())
    {
        chat["reasoning_effort"] = effort.clone();
    }
    if let Some(format) = response_format(body) {
        chat["response_format"] = format;
    }
    let tools = chat_tools(body);
    if !tools.is_empty() {
        let (tools, choice) = tool_choice(body, tools);
        chat["tools"] = Value::Array(tools);
        if let Some(choice) = choice {
            chat["tool_choice"] = choice;
        }
        if let Some(parallel) = body.get("parallel_tool_calls").filter(|v| v.is_boolean()) {
            chat["parallel_tool_calls"] = parallel.clone();
        }
    }
    chat
}

/// `text.format` as a chat `response_format`; `None` for plain text.
fn response_format(body: &Map<String, Value>) -> Option<Value> {
    let format = body.get("text")?.get("format")?;
    match format.get("type")?.as_str()? {
        "json_object" => Some(json!({"type": "json_object"})),
        "json_schema" => {
            let mut schema = json!({"name": format["name"], "schema": format["schema"]});
            for key in ["strict", "description"] {
                if let Some(value) = format.get(key).filter(|v| !v.is_null()) {
                    schema[key] = value.clone();
                }
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
        _ => None,
    }
}

/// The request's `function` tools as chat tools.
fn chat_tools(body: &Map<String, Value>) -> Vec<Value> {
    let Some(Value::Array(tools)) = body.get("tools") else {
        return Vec::new();
    };
    tools
        .iter()
        .filter(|tool| tool["type"] == "function")
        .map(|tool| {
            let mut function = json!({"name": tool["name"]});
            for key in ["description", "parameters", "strict"] {
                if let Some(value) = tool.get(key).filter(|v| !v.is_null()) {
                    function[key] = value.clone();
                }
            }
            json!({"type": "function", "function": function})
        })
        .collect()
}

/// `tool_choice` for chat completions, and the tools it leaves: strings pass as they are, a
/// named function becomes chat's `{type: function, function: {name}}`, `allowed_tools` keeps
/// only the listed tools and sends its `mode`.
fn tool_choice(body: &Map<String, Value>, tools: Vec<Value>) -> (Vec<Value>, Option<Value>) {
    match body.get("tool_choice") {
        Some(Value::String(mode)) => (tools, Some(json!(mode))),
        Some(choice) if choice["type"] == "function" => (
            tools,
            Some(json!({"type": "function", "function": {"name": choice["name"]}})),
        ),
        Some(choice) if choice["type"] == "allowed_tools" => {
            let allowed: Vec<&Value> = choice["tools"]
                .as_array()
                .map(|list| list.iter().map(|tool| &tool["name"]).collect())
                .unwrap_or_default();
            let kept = tools
                .into_iter()
                .filter(|tool| allowed.contains(&&tool["function"]["name"]))
                .collect();
            (kept, choice.get("mode").cloned())
        }
        _ => (tools, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_chat_messages() {
        let items = vec![
            json!({"role": "system", "content": "be brief"}),
            json!({"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "what is "},
                {"type": "input_image", "image_url": "data:image/png;base64,AA", "detail": "low"},
            ]}),
            json!({"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "Checking.", "annotations": []}]}),
            json!({"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}),
            json!({"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{\"a\":1}"}),
            json!({"type": "reasoning", "id": "rs_1", "summary": []}),
            json!({"type": "function_call_output", "call_id": "c1", "output": "one"}),
            json!({"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]}),
        ];
        let messages = items_to_messages(&items).unwrap();
        assert_eq!(
            messages,
            vec![
                json!({"role": "system", "content": "be brief"}),
                json!({"role": "user", "content": [
                    {"type": "text", "text": "what is "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA", "detail": "low"}},
                ]}),
                json!({"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{\"a\":1}"}},
                ]}),
                json!({"role": "tool", "tool_call_id": "c1", "content": "one"}),
                json!({"role": "tool", "tool_call_id": "c2", "content": "two"}),
            ]
        );
    }

    #[test]
    fn outputs_must_answer_a_call_made_before_them() {
        let call =
            json!({"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"});
        let output =
            |id: &str| json!({"type": "function_call_output", "call_id": id, "output": "x"});
        let good = items_to_messages(&[call.clone(), output("c1")]).unwrap();
        assert_eq!(check_outputs_answer_calls(&good), Ok(()));
        for bad in [vec![output("c1")], vec![call, output("c2")]] {
            let messages = items_to_messages(&bad).unwrap();
            let error = check_outputs_answer_calls(&messages)
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with("No tool call found for function call output with call_id c"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_function_call_without_text_opens_an_assistant_message() {
        let messages = items_to_messages(&[
            json!({"role": "user", "content": "hi"}),
            json!({"type": "function_call", "call_id": "c", "name": "f", "arguments": ""}),
        ])
        .unwrap();
        assert_eq!(messages[1]["role"], "assistant");
        assert_eq!(messages[1]["content"], Value::Null);
        assert_eq!(messages[1]["tool_calls"][0]["id"], "c");
    }

    #[test]
    fn unknown_items_and_roles_are_refused_by_name() {
        let cases = [
            (
                json!({"type": "item_reference", "id": "x"}),
                "'input[0].type' 'item_reference' is not supported",
            ),
            (
                json!({"role": "tool", "content": "x"}),
                "'input[0].role' must be one of",
            ),
            (
                json!({"type": "function_call_output", "output": "x"}),
                "'input[0].call_id' is required",
            ),
            (
                json!({"role": "user", "content": [{"type": "audio"}]}),
                "'input[0].content[0].type'",
            ),
        ];
        for (item, expected) in cases {
            let error = items_to_messages(&[item]).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn the_chat_request_carries_every_mapped_field() {
        let request = CreateResponse::from_json(
            json!({
                "model": "vllm/m", "input": "hi", "instructions": "be brief",
                "temperature": 0.2, "top_p": 0.9, "max_output_tokens": 64,
                "reasoning": {"effort": "low"}, "parallel_tool_calls": false,
                "safety_identifier": "user-1", "top_logprobs": 2,
                "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}, "strict": true}},
                "tools": [
                    {"type": "function", "name": "f", "parameters": {"type": "object"}},
                    {"type": "function", "name": "g", "description": "d"},
                ],
                "tool_choice": {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "g"}]},
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let context = items_to_messages(&request.input).unwrap();
        let chat = chat_request(&request, &context, "upstream");
        assert_eq!(chat["model"], "upstream");
        assert_eq!(
            chat["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(
            chat["messages"][1],
            json!({"role": "user", "content": [{"type": "text", "text": "hi"}]})
        );
        assert_eq!(chat["stream_options"]["include_usage"], true);
        assert_eq!(chat["max_completion_tokens"], 64);
        assert_eq!(chat["reasoning_effort"], "low");
        assert_eq!(chat["temperature"], 0.2);
        assert_eq!(chat["safety_identifier"], "user-1");
        assert!(chat.get("top_logprobs").is_none());
        assert_eq!(
            chat["response_format"],
            json!({"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": true}})
        );
        assert_eq!(
            chat["tools"],
            json!([{"type": "function", "function": {"name": "g", "description": "d"}}])
        );
        assert_eq!(chat["tool_choice"], "required");
        assert_eq!(chat["parallel_tool_calls"], false);
    }

    #[test]
    fn a_named_function_choice_uses_the_chat_shape() {
        let request = CreateResponse::from_json(
            br#"{"model":"m","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"f"}}"#,
        )
        .unwrap();
        let chat = chat_request(&request, &[], "u");
        assert_eq!(
            chat["tool_choice"],
            json!({"type": "function", "function": {"name": "f"}})
        );
        assert!(chat.get("response_format").is_none());
    }

    #[test]
    fn stored_items_get_ids_and_part_lists() {
        let items = with_ids(&[
            json!({"role": "user", "content": "hi"}),
            json!({"type": "function_call_output", "call_id": "c", "output": "x"}),
            json!({"type": "message", "id": "msg_given", "role": "user", "content": []}),
        ]);
        assert!(items[0]["id"].as_str().unwrap().starts_with("msg_"));
        assert_eq!(items[0]["type"], "message");
        assert_eq!(
            items[0]["content"],
            json!([{"type": "input_text", "text": "hi"}])
        );
        assert!(items[1]["id"].as_str().unwrap().starts_with("fco_"));
        assert_eq!(items[2]["id"], "msg_given");
    }
}
