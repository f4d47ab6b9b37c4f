//! ConverseStream events as OpenAI `chat.completion.chunk`s.
//!
//! The host splits the `application/vnd.amazon.eventstream` body into messages (prelude and
//! CRCs checked); each arrives here as its `:event-type` (or `:exception-type`) and JSON
//! payload. [`Translator::event`] turns one into zero or more chunks:
//!
//! | event | chunk |
//! | --- | --- |
//! | `messageStart` | `delta: {role: "assistant", content: ""}` |
//! | `contentBlockStart` with `toolUse` | `delta.tool_calls[{index: k, id, type, function: {name, arguments: ""}}]` |
//! | `contentBlockDelta` `text` | `delta.content` |
//! | `contentBlockDelta` `toolUse.input` | `delta.tool_calls[{index: k, function: {arguments}}]` |
//! | `contentBlockDelta` `reasoningContent` `text` | `delta.reasoning_content` |
//! | `contentBlockDelta` `reasoningContent` `signature` / `redactedContent` | `delta.thinking_blocks[…]` |
//! | `contentBlockStop` of a tool that streamed no input | `arguments: "{}"` |
//! | `messageStop` | `delta: {}`, `finish_reason` |
//! | `metadata` | with `stream_options.include_usage`: `choices: []`, `usage` |
//! | an exception | the error: the host sends one SSE error event and ends the stream |
//!
//! `k` counts tool calls in the order they start (Bedrock's `contentBlockIndex` also counts
//! text and reasoning blocks, so it is not used as the OpenAI index). The forced
//! `response_format` tool streams its input as `content`. Unknown events and fields are
//! ignored; a payload that is not JSON is a 502.

use std::collections::HashMap;

use ogx_provider_sdk::{ProviderError, Value};
use serde_json::json;

use super::errors;
use super::response::{Envelope, finish_reason, thinking_block, usage};

/// What one content block of the answer is, by `contentBlockIndex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    /// A tool call: its OpenAI index and whether any input arrived.
    Tool { index: usize, had_input: bool },
    /// The `response_format` tool: its input is content.
    Json,
}

/// The translation state of one streamed answer.
#[derive(Debug)]
pub struct Translator {
    envelope: Envelope,
    include_usage: bool,
    json_tool: Option<String>,
    region: String,
    blocks: HashMap<u64, Block>,
    tools: usize,
    answered_json: bool,
}

impl Translator {
    /// A translator for the answer to one request.
    pub fn new(
        envelope: Envelope,
        include_usage: bool,
        json_tool: Option<String>,
        region: &str,
    ) -> Self {
        Translator {
            envelope,
            include_usage,
            json_tool,
            region: region.to_string(),
            blocks: HashMap::new(),
            tools: 0,
            answered_json: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": self.envelope.id,
            "object": "chat.completion.chunk",
            "created": self.envelope.created,
            "model": self.envelope.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        })
    }

    fn tool_delta(&self, index: usize, function: Value, head: Option<&str>) -> Value {
        let mut call = json!({"index": index, "function": function});
        if let Some(id) = head {
            call["id"] = json!(id);
            call["type"] = json!("function");
        }
        self.chunk(json!({"tool_calls": [call]}), None)
    }

    /// The chunks for one event-stream message; an exception is the stream's error.
    pub fn event(&mut self, name: &str, payload: &[u8]) -> Result<Vec<Value>, ProviderError> {
        if name.ends_with("Exception") {
            return Err(errors::from_exception_frame(
                name,
                payload,
                &self.region,
                &self.envelope.model,
            ));
        }
        let event: Value = serde_json::from_slice(payload).map_err(|err| {
            ProviderError::BadGateway(format!(
                "a ConverseStream `{name}` event is not JSON: {err}"
            ))
        })?;
        let index = event
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let mut out = Vec::new();
        match name {
            "messageStart" => {
                out.push(self.chunk(json!({"role": "assistant", "content": ""}), None))
            }
            "contentBlockStart" => {
                if let Some(tool) = event.pointer("/start/toolUse") {
                    let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
                    if Some(name) == self.json_tool.as_deref() {
                        self.blocks.insert(index, Block::Json);
                        self.answered_json = true;
                    } else {
                        let k = self.tools;
                        self.tools += 1;
                        self.blocks.insert(
                            index,
                            Block::Tool {
                                index: k,
                                had_input: false,
                            },
                        );
                        let id = tool
                            .get("toolUseId")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        out.push(self.tool_delta(
                            k,
                            json!({"name": name, "arguments": ""}),
                            Some(id),
                        ));
                    }
                }
            }
            "contentBlockDelta" => {
                let delta = event.get("delta").unwrap_or(&Value::Null);
                if let Some(text) = delta.get("text").and_then(Value::as_str) {
                    out.push(self.chunk(json!({"content": text}), None));
                } else if let Some(input) = delta.pointer("/toolUse/input").and_then(Value::as_str)
                {
                    match self.blocks.get_mut(&index) {
                        Some(Block::Json) => out.push(self.chunk(json!({"content": input}), None)),
                        Some(Block::Tool {
                            index: k,
                            had_input,
                        }) => {
                            *had_input = true;
                            let k = *k;
                            out.push(self.tool_delta(k, json!({"arguments": input}), None));
                        }
                        None => {}
                    }
                } else if let Some(reasoning) = delta.get("reasoningContent") {
                    if let Some(text) = reasoning.get("text").and_then(Value::as_str) {
                        out.push(self.chunk(json!({"reasoning_content": text}), None));
                    }
                    if let Some(signature) = reasoning.get("signature") {
                        let block =
                            json!({"type": "thinking", "thinking": "", "signature": signature});
                        out.push(self.chunk(json!({"thinking_blocks": [block]}), None));
                    }
                    if reasoning.get("redactedContent").is_some() {
                        let wrapped = json!({"redactedContent": reasoning["redactedContent"]});
                        if let Some(block) = thinking_block(&wrapped) {
                            out.push(self.chunk(json!({"thinking_blocks": [block]}), None));
                        }
                    }
                }
            }
            "contentBlockStop" => {
                if let Some(Block::Tool {
                    index: k,
                    had_input: false,
                }) = self.blocks.get(&index).copied()
                {
                    out.push(self.tool_delta(k, json!({"arguments": "{}"}), None));
                }
            }
            "messageStop" => {
                let stop = event
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                let finish = if self.answered_json && self.tools == 0 {
                    "stop"
                } else {
                    finish_reason(stop)
                };
                out.push(self.chunk(json!({}), Some(finish)));
            }
            "metadata" => {
                if self.include_usage
                    && let Some(u) = event.get("usage")
                {
                    let mut chunk = self.chunk(json!({}), None);
                    chunk["choices"] = json!([]);
                    chunk["usage"] = usage(u);
                    out.push(chunk);
                }
            }
            _ => {}
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translator(include_usage: bool, json_tool: Option<&str>) -> Translator {
        let envelope = Envelope {
            id: "chatcmpl-s".into(),
            model: "m".into(),
            created: 1,
        };
        Translator::new(
            envelope,
            include_usage,
            json_tool.map(str::to_string),
            "us-west-2",
        )
    }

    fn run(t: &mut Translator, events: &[(&str, Value)]) -> Vec<Value> {
        events
            .iter()
            .flat_map(|(name, payload)| t.event(name, payload.to_string().as_bytes()).unwrap())
            .map(|chunk| {
                assert_eq!(
                    (chunk["id"].as_str(), chunk["object"].as_str()),
                    (Some("chatcmpl-s"), Some("chat.completion.chunk"))
                );
                match chunk["choices"].get(0) {
                    Some(choice) => {
                        json!({"delta": choice["delta"], "finish": choice["finish_reason"]})
                    }
                    None => json!({"usage": chunk["usage"]}),
                }
            })
            .collect()
    }

    #[test]
    fn text_reasoning_and_parallel_tools_with_stable_indexes() {
        let events = [
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "sig"}}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 1, "delta": {"text": "Checking."}, "p": "padding"}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 1})),
            (
                "contentBlockStart",
                json!({"contentBlockIndex": 2, "start": {"toolUse": {"toolUseId": "t1", "name": "weather"}}}),
            ),
            (
                "contentBlockStart",
                json!({"contentBlockIndex": 3, "start": {"toolUse": {"toolUseId": "t2", "name": "time"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "{\"city\":"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 2, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 2})),
            ("contentBlockStop", json!({"contentBlockIndex": 3})),
            ("messageStop", json!({"stopReason": "tool_use"})),
            (
                "metadata",
                json!({"usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7}, "metrics": {"latencyMs": 1}}),
            ),
            ("somethingNew", json!({})),
        ];
        let got = run(&mut translator(true, None), &events);
        let tool = |index: usize, function: Value, id: Option<&str>| {
            let mut call = json!({"index": index, "function": function});
            if let Some(id) = id {
                call["id"] = json!(id);
                call["type"] = json!("function");
            }
            json!({"delta": {"tool_calls": [call]}, "finish": null})
        };
        assert_eq!(
            got,
            vec![
                json!({"delta": {"role": "assistant", "content": ""}, "finish": null}),
                json!({"delta": {"reasoning_content": "hmm"}, "finish": null}),
                json!({"delta": {"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": "sig"}]}, "finish": null}),
                json!({"delta": {"content": "Checking."}, "finish": null}),
                tool(0, json!({"name": "weather", "arguments": ""}), Some("t1")),
                tool(1, json!({"name": "time", "arguments": ""}), Some("t2")),
                tool(0, json!({"arguments": "{\"city\":"}), None),
                tool(0, json!({"arguments": "\"Paris\"}"}), None),
                tool(1, json!({"arguments": "{}"}), None),
                json!({"delta": {}, "finish": "tool_calls"}),
                json!({"usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                                 "prompt_tokens_details": {"cached_tokens": 0, "cache_creation_tokens": 0}}}),
            ]
        );
    }

    #[test]
    fn json_tool_streams_as_content_and_usage_only_when_asked() {
        let events = [
            ("messageStart", json!({"role": "assistant"})),
            (
                "contentBlockStart",
                json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "shape"}}}),
            ),
            (
                "contentBlockDelta",
                json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": "{\"a\":1}"}}}),
            ),
            ("contentBlockStop", json!({"contentBlockIndex": 0})),
            ("messageStop", json!({"stopReason": "tool_use"})),
            (
                "metadata",
                json!({"usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}}),
            ),
        ];
        let got = run(&mut translator(false, Some("shape")), &events);
        assert_eq!(
            got,
            vec![
                json!({"delta": {"role": "assistant", "content": ""}, "finish": null}),
                json!({"delta": {"content": "{\"a\":1}"}, "finish": null}),
                json!({"delta": {}, "finish": "stop"}),
            ]
        );
    }

    #[test]
    fn exceptions_and_garbage_end_the_stream_with_an_error() {
        let mut t = translator(false, None);
        let err = t
            .event("throttlingException", br#"{"message":"Too many requests"}"#)
            .unwrap_err();
        assert_eq!(err, ProviderError::RateLimited("Too many requests".into()));
        let err = t.event("contentBlockDelta", b"not json").unwrap_err();
        assert!(matches!(err, ProviderError::BadGateway(_)));
        let got = run(
            &mut t,
            &[("messageStop", json!({"stopReason": "guardrail_intervened"}))],
        );
        assert_eq!(got, vec![json!({"delta": {}, "finish": "content_filter"})]);
    }
}
