//! Recording chat completions in the [`InferenceStore`] once the provider has answered.
//!
//! A JSON answer is recorded as it is (with the client's model). A streamed answer is
//! assembled from its chunks by [`StreamAssembler`] and recorded when the stream ends
//! normally, as OGX does: per choice index the `content` pieces are concatenated, `tool_calls`
//! are merged by their index (name and arguments concatenated; a call that never got an `id`
//! is dropped), `finish_reason` defaults to `"stop"`, `logprobs.content` pieces are kept, and
//! `created` and `id` come from the chunks. A stream without an id, or one that failed or was
//! abandoned by the client, is not recorded.
//!
//! Recording only queues the write ([`InferenceStore::record`]): it never delays an answer.

use crate::storage::inference_store::{InferenceStore, StoredCompletion};
use crate::storage::owner::Owner;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Records a provider's JSON answer to a chat-completion request, answered by routing target
/// `target`. An answer without an `id` is not recorded.
pub fn record_answer(
    store: &InferenceStore,
    answer: &Map<String, Value>,
    input_messages: Value,
    owner: Owner,
    target: &str,
) {
    let Some(id) = answer.get("id").and_then(Value::as_str) else {
        tracing::debug!("chat completion without an id: not recorded");
        return;
    };
    store.record(StoredCompletion {
        id: id.to_string(),
        created: answer.get("created").and_then(Value::as_i64).unwrap_or(0),
        model: answer
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        choices: answer.get("choices").cloned().unwrap_or(json!([])),
        input_messages,
        owner,
        target: Some(target.to_owned()),
    });
}

/// Assembles a streamed chat completion and records it when told the stream ended well.
pub struct StreamRecorder {
    store: Arc<InferenceStore>,
    client_model: String,
    input_messages: Value,
    owner: Owner,
    target: String,
    assembler: StreamAssembler,
}

impl StreamRecorder {
    pub fn new(
        store: Arc<InferenceStore>,
        client_model: String,
        input_messages: Value,
        owner: Owner,
        target: &str,
    ) -> Self {
        Self {
            store,
            client_model,
            input_messages,
            owner,
            target: target.to_owned(),
            assembler: StreamAssembler::default(),
        }
    }

    /// Takes in one chunk, already parsed by the stream that forwards it.
    pub fn chunk(&mut self, chunk: &Map<String, Value>) {
        self.assembler.push_object(chunk);
    }

    /// The stream ended normally: record what was assembled.
    pub fn finish(self) {
        match self.assembler.finish() {
            Some(assembled) => self.store.record(StoredCompletion {
                id: assembled.id,
                created: assembled.created,
                model: self.client_model,
                choices: assembled.choices,
                input_messages: self.input_messages,
                owner: self.owner,
                target: Some(self.target),
            }),
            None => tracing::debug!("chat completion stream without an id: not recorded"),
        }
    }
}

/// A chat completion put together from its chunks.
#[derive(Debug, Clone, PartialEq)]
pub struct Assembled {
    pub id: String,
    pub created: i64,
    /// `choices` of a `chat.completion`, sorted by index.
    pub choices: Value,
}

/// Folds `chat.completion.chunk`s into one completion (see the module docs).
#[derive(Debug, Default)]
pub struct StreamAssembler {
    id: Option<String>,
    created: Option<i64>,
    choices: BTreeMap<u64, ChoiceParts>,
}

#[derive(Debug, Default)]
struct ChoiceParts {
    content: String,
    tool_calls: BTreeMap<u64, ToolCallParts>,
    finish_reason: Option<String>,
    logprobs: Vec<Value>,
}

#[derive(Debug, Default)]
struct ToolCallParts {
    id: Option<String>,
    kind: Option<String>,
    name: String,
    arguments: String,
}

impl StreamAssembler {
    /// Takes in one chunk; text that is not a JSON object is ignored.
    pub fn push(&mut self, json: &str) {
        if let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(json) {
            self.push_object(&chunk);
        }
    }

    /// Takes in one chunk object.
    pub fn push_object(&mut self, chunk: &Map<String, Value>) {
        if self.id.is_none() {
            self.id = chunk
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map(str::to_string);
        }
        if self.created.is_none() {
            self.created = chunk.get("created").and_then(Value::as_i64);
        }
        let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
            return;
        };
        for choice in choices {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
            let parts = self.choices.entry(index).or_default();
            let delta = choice.get("delta");
            if let Some(content) = delta.and_then(|d| d.get("content")).and_then(Value::as_str) {
                parts.content.push_str(content);
            }
            let calls = delta.and_then(|d| d.get("tool_calls"));
            for call in calls.and_then(Value::as_array).into_iter().flatten() {
                let call_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                let builder = parts.tool_calls.entry(call_index).or_default();
                let text = |key: &str| call.get(key).and_then(Value::as_str).map(str::to_string);
                builder.id = text("id").filter(|id| !id.is_empty()).or(builder.id.take());
                builder.kind = text("type").or(builder.kind.take());
                let function = call.get("function");
                let piece = |key: &str| {
                    function
                        .and_then(|f| f.get(key))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                };
                builder.name.push_str(piece("name"));
                builder.arguments.push_str(piece("arguments"));
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                parts.finish_reason = Some(reason.to_string());
            }
            let logprobs = choice.get("logprobs").and_then(|l| l.get("content"));
            if let Some(Value::Array(pieces)) = logprobs {
                parts.logprobs.extend(pieces.iter().cloned());
            }
        }
    }

    /// The completion, or `None` when no chunk carried an id.
    pub fn finish(self) -> Option<Assembled> {
        let id = self.id?;
        let choices = self
            .choices
            .into_iter()
            .map(|(index, parts)| {
                let tool_calls: Vec<Value> = parts
                    .tool_calls
                    .into_values()
                    .filter_map(|call| {
                        Some(json!({
                            "id": call.id?,
                            "type": call.kind.unwrap_or_else(|| "function".into()),
                            "function": {"name": call.name, "arguments": call.arguments},
                        }))
                    })
                    .collect();
                let content = Some(parts.content).filter(|c| !c.is_empty());
                json!({
                    "index": index,
                    "message": {
                        "role": "assistant",
                        "content": content,
                        "tool_calls": Some(tool_calls).filter(|t| !t.is_empty()),
                    },
                    "finish_reason": parts.finish_reason.unwrap_or_else(|| "stop".into()),
                    "logprobs": if parts.logprobs.is_empty() {
                        Value::Null
                    } else {
                        json!({ "content": parts.logprobs })
                    },
                })
            })
            .collect();
        Some(Assembled {
            id,
            created: self.created.unwrap_or(0),
            choices: Value::Array(choices),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(chunks: &[Value]) -> Option<Assembled> {
        let mut assembler = StreamAssembler::default();
        for chunk in chunks {
            assembler.push(&chunk.to_string());
        }
        assembler.finish()
    }

    fn chunk(choices: Value) -> Value {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "u", "choices": choices})
    }

    fn call(index: u64, id: Option<&str>, name: &str, arguments: &str) -> Value {
        let mut call = json!({"index": index, "function": {"name": name, "arguments": arguments}});
        if let Some(id) = id {
            call["id"] = json!(id);
            call["type"] = json!("function");
        }
        call
    }

    #[test]
    fn streams_assemble_like_ogx() {
        let cases: Vec<(&str, Vec<Value>, Value)> = vec![
            (
                "content is concatenated, finish reason kept",
                vec![
                    chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}])),
                    chunk(json!([{"index": 0, "delta": {"content": "lo"}}])),
                    chunk(json!([{"index": 0, "delta": {}, "finish_reason": "length"}])),
                ],
                json!([{"index": 0, "message": {"role": "assistant", "content": "Hello", "tool_calls": null},
                        "finish_reason": "length", "logprobs": null}]),
            ),
            (
                "two tool calls interleaved by index; a call without an id is dropped",
                vec![
                    chunk(
                        json!([{"index": 0, "delta": {"tool_calls": [call(0, Some("t0"), "get_", "{\"a\"")]}}]),
                    ),
                    chunk(
                        json!([{"index": 0, "delta": {"tool_calls": [call(1, Some("t1"), "other", "{")]}}]),
                    ),
                    chunk(
                        json!([{"index": 0, "delta": {"tool_calls": [call(0, None, "weather", ":1}")]}}]),
                    ),
                    chunk(
                        json!([{"index": 0, "delta": {"tool_calls": [call(1, None, "", "}"), call(2, None, "x", "{}")]}}]),
                    ),
                    chunk(json!([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])),
                ],
                json!([{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                            {"id": "t0", "type": "function", "function": {"name": "get_weather", "arguments": "{\"a\":1}"}},
                            {"id": "t1", "type": "function", "function": {"name": "other", "arguments": "{}"}}]},
                        "finish_reason": "tool_calls", "logprobs": null}]),
            ),
            (
                "several choices, finish reason defaults to stop, usage-only chunks ignored",
                vec![
                    chunk(
                        json!([{"index": 1, "delta": {"content": "b"}}, {"index": 0, "delta": {"content": "a"}, "logprobs": {"content": [{"token": "a"}]}}]),
                    ),
                    chunk(json!([])),
                    json!({"id": "c1", "created": 9, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"total_tokens": 3}}),
                ],
                json!([
                    {"index": 0, "message": {"role": "assistant", "content": "a", "tool_calls": null},
                     "finish_reason": "stop", "logprobs": {"content": [{"token": "a"}]}},
                    {"index": 1, "message": {"role": "assistant", "content": "b", "tool_calls": null},
                     "finish_reason": "stop", "logprobs": null},
                ]),
            ),
        ];
        for (name, chunks, choices) in cases {
            let assembled = assemble(&chunks).expect(name);
            assert_eq!(assembled.id, "c1", "{name}");
            assert_eq!(
                assembled.created, 7,
                "{name}: created comes from the first chunk"
            );
            assert_eq!(assembled.choices, choices, "{name}");
        }
    }

    #[test]
    fn streams_without_an_id_are_not_assembled() {
        let no_id = json!({"created": 1, "choices": [{"index": 0, "delta": {"content": "x"}}]});
        let empty_id = json!({"id": "", "choices": []});
        assert_eq!(assemble(&[no_id, empty_id]), None);
        assert_eq!(assemble(&[]), None);
        let mut assembler = StreamAssembler::default();
        assembler.push("not json");
        assert_eq!(assembler.finish(), None);
    }
}
