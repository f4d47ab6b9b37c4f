//! A Converse answer as an OpenAI `chat.completion`, and the pieces the stream shares.
//!
//! One choice (Converse answers one): text blocks joined into `content`; `toolUse` blocks →
//! `tool_calls` (`input` serialised as `arguments`); `reasoningContent` → `reasoning_content`
//! (the text) and `thinking_blocks` (`{"type": "thinking", "thinking", "signature"}` or
//! `{"type": "redacted_thinking", "data"}`), the signed blocks a client sends back on its
//! assistant message to continue a tool turn with extended thinking. The forced
//! `response_format` tool's input becomes the `content` instead of a tool call.
//!
//! `stopReason` → `finish_reason`: `end_turn`, `stop_sequence` → `stop`; `tool_use` →
//! `tool_calls`; `max_tokens`, `model_context_window_exceeded` → `length`;
//! `guardrail_intervened`, `content_filtered` → `content_filter`; anything else → `stop`.
//! Usage: `prompt_tokens` counts cache reads and writes too (Bedrock's `inputTokens` does
//! not), with `prompt_tokens_details.cached_tokens` (reads) and `cache_creation_tokens`
//! (writes). Converse answers carry no id, model or time: the request id Bedrock sends
//! (`x-amzn-requestid`) or a generated one, the requested model and now are used. A 200
//! without `output` is a 502 naming the stop reason.

use ogx_provider_sdk::{Map, ProviderError, Value};
use serde_json::json;

/// The fields every chunk and completion of one answer share.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// `chatcmpl-…`.
    pub id: String,
    /// The model the request named.
    pub model: String,
    /// Unix seconds.
    pub created: u64,
}

/// OpenAI's `finish_reason` for a Converse `stopReason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "tool_use" => "tool_calls",
        "max_tokens" | "model_context_window_exceeded" => "length",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop",
    }
}

/// OpenAI `usage` for a Converse `usage` object.
pub fn usage(usage: &Value) -> Value {
    let n = |key: &str| usage.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (input, output) = (n("inputTokens"), n("outputTokens"));
    let (read, write) = (n("cacheReadInputTokens"), n("cacheWriteInputTokens"));
    let prompt = input + read + write;
    let total = usage
        .get("totalTokens")
        .and_then(Value::as_u64)
        .unwrap_or(prompt + output)
        .max(prompt + output);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": write},
    })
}

/// A thinking block as the answer shows it, from a Converse `reasoningContent`.
pub fn thinking_block(reasoning: &Value) -> Option<Value> {
    if let Some(text) = reasoning.get("reasoningText") {
        return Some(json!({
            "type": "thinking",
            "thinking": text.get("text").and_then(Value::as_str).unwrap_or_default(),
            "signature": text.get("signature").and_then(Value::as_str),
        }));
    }
    reasoning
        .get("redactedContent")
        .map(|data| json!({"type": "redacted_thinking", "data": data}))
}

/// The `chat.completion` for a Converse answer.
pub fn completion(
    answer: &Value,
    envelope: &Envelope,
    json_tool: Option<&str>,
) -> Result<Value, ProviderError> {
    let stop_reason = answer
        .get("stopReason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    let Some(blocks) = answer
        .pointer("/output/message/content")
        .and_then(Value::as_array)
    else {
        return Err(ProviderError::BadGateway(format!(
            "the Converse answer has no output message (stopReason={stop_reason})"
        )));
    };
    let mut content = String::new();
    let mut has_text = false;
    let (mut reasoning, mut thinking) = (String::new(), Vec::new());
    let mut tool_calls = Vec::new();
    let mut answered_json = false;
    for block in blocks {
        if let Some(text) = block.get("text").and_then(Value::as_str) {
            content.push_str(text);
            has_text = true;
        } else if let Some(tool) = block.get("toolUse") {
            let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
            let input = tool.get("input").cloned().unwrap_or_else(|| json!({}));
            if Some(name) == json_tool {
                content = input.to_string();
                has_text = true;
                answered_json = true;
                continue;
            }
            tool_calls.push(json!({
                "id": tool.get("toolUseId").and_then(Value::as_str).unwrap_or_default(),
                "type": "function",
                "function": {"name": name, "arguments": input.to_string()},
            }));
        } else if let Some(r) = block.get("reasoningContent") {
            if let Some(text) = r.pointer("/reasoningText/text").and_then(Value::as_str) {
                reasoning.push_str(text);
            }
            thinking.extend(thinking_block(r));
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    message.insert(
        "content".into(),
        if has_text {
            json!(content)
        } else {
            Value::Null
        },
    );
    if !reasoning.is_empty() {
        message.insert("reasoning_content".into(), json!(reasoning));
    }
    if !thinking.is_empty() {
        message.insert("thinking_blocks".into(), Value::Array(thinking));
    }
    let finish = if answered_json && tool_calls.is_empty() {
        "stop"
    } else {
        finish_reason(stop_reason)
    };
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    let mut completion = json!({
        "id": envelope.id,
        "object": "chat.completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
    });
    if let Some(u) = answer.get("usage") {
        completion["usage"] = usage(u);
    }
    if let Some(trace) = answer.get("trace").filter(|t| !t.is_null()) {
        completion["trace"] = trace.clone();
    }
    if let Some(fields) = answer
        .get("additionalModelResponseFields")
        .filter(|t| !t.is_null())
    {
        completion["additional_model_response_fields"] = fields.clone();
    }
    Ok(completion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            id: "chatcmpl-1".into(),
            model: "m".into(),
            created: 7,
        }
    }

    #[test]
    fn text_reasoning_and_parallel_tool_calls() {
        let answer = json!({
            "output": {"message": {"role": "assistant", "content": [
                {"reasoningContent": {"reasoningText": {"text": "think", "signature": "sig"}}},
                {"reasoningContent": {"redactedContent": "cmVk"}},
                {"text": "Let me check."},
                {"toolUse": {"toolUseId": "tooluse_1", "name": "weather", "input": {"city": "Paris"}}},
                {"toolUse": {"toolUseId": "tooluse_2", "name": "weather", "input": {"city": "Rome"}}},
            ]}},
            "stopReason": "tool_use",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 45, "cacheReadInputTokens": 20, "cacheWriteInputTokens": 10},
            "metrics": {"latencyMs": 3},
        });
        let got = completion(&answer, &envelope(), None).unwrap();
        assert_eq!(
            got,
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 7, "model": "m",
                "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {
                    "role": "assistant", "content": "Let me check.", "reasoning_content": "think",
                    "thinking_blocks": [
                        {"type": "thinking", "thinking": "think", "signature": "sig"},
                        {"type": "redacted_thinking", "data": "cmVk"},
                    ],
                    "tool_calls": [
                        {"id": "tooluse_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                        {"id": "tooluse_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}},
                    ],
                }}],
                "usage": {"prompt_tokens": 40, "completion_tokens": 5, "total_tokens": 45,
                          "prompt_tokens_details": {"cached_tokens": 20, "cache_creation_tokens": 10}},
            })
        );
    }

    #[test]
    fn the_json_tool_is_the_content() {
        let answer = json!({"output": {"message": {"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "t", "name": "shape", "input": {"answer": "42"}}}]}},
            "stopReason": "tool_use"});
        let got = completion(&answer, &envelope(), Some("shape")).unwrap();
        assert_eq!(
            got["choices"][0]["message"]["content"],
            "{\"answer\":\"42\"}"
        );
        assert_eq!(got["choices"][0]["finish_reason"], "stop");
        assert!(got["choices"][0]["message"].get("tool_calls").is_none());
    }

    #[test]
    fn stop_reasons() {
        let cases = [
            ("end_turn", "stop"),
            ("stop_sequence", "stop"),
            ("tool_use", "tool_calls"),
            ("max_tokens", "length"),
            ("model_context_window_exceeded", "length"),
            ("guardrail_intervened", "content_filter"),
            ("content_filtered", "content_filter"),
            ("malformed_model_output", "stop"),
            ("something_new", "stop"),
        ];
        for (stop, want) in cases {
            assert_eq!(finish_reason(stop), want, "{stop}");
        }
    }

    #[test]
    fn no_output_is_a_bad_gateway() {
        let err = completion(
            &json!({"stopReason": "guardrail_intervened"}),
            &envelope(),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(err, ProviderError::BadGateway(m) if m.contains("stopReason=guardrail_intervened"))
        );
        let got = completion(&json!({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "guardrail_intervened"}), &envelope(), None).unwrap();
        assert_eq!(got["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(got["choices"][0]["finish_reason"], "content_filter");
    }
}
