//! From chat-completion chunks (or one whole completion) to Anthropic's streaming events and
//! the final Message object.
//!
//! [`MessageBuilder`] is fed the provider's chunks one by one and returns the events each one
//! causes, in Anthropic's order: `message_start` and one `ping` ([`MessageBuilder::start`]);
//! per content block `content_block_start`, its deltas (`text_delta`, `thinking_delta` then
//! `signature_delta` when the upstream signed its reasoning, `input_json_delta`),
//! `content_block_stop`; then `message_delta` (`stop_reason`, `stop_sequence`, `usage`) and
//! `message_stop` ([`MessageBuilder::finish`]).
//!
//! Blocks are strictly one after another, as Anthropic streams them, even when the upstream
//! interleaves parallel tool calls: the first call streams live, later ones are held and sent
//! whole when the open block closes. Reasoning (`reasoning_content` or `reasoning` deltas)
//! becomes a `thinking` block only when the request asked for thinking (as OGX does); its
//! signature is taken from `reasoning_details` or `thinking_blocks` when the upstream sends
//! one, else it is empty.
//!
//! Stop reasons: `stop` → `end_turn` (or `stop_sequence` with the sequence, when the upstream
//! names the one it hit in `stop_reason` / `matched_stop`, as vLLM and SGLang do), `length` →
//! `max_tokens`, `tool_calls` (or any finish with tool calls) → `tool_use`, `content_filter` →
//! `end_turn`. Usage: `input_tokens` is the prompt minus its cached part, which is
//! `cache_read_input_tokens`.

use crate::stream_event::Event;
use serde_json::{Map, Value, json};

#[derive(Debug, PartialEq)]
enum BlockKind {
    Text,
    Thinking,
    /// A tool call, by its chat `tool_calls[].index`.
    Tool(u64),
}

/// The content block being streamed.
#[derive(Debug)]
struct OpenBlock {
    index: usize,
    kind: BlockKind,
    /// Text, thinking, or the call's arguments so far.
    text: String,
}

/// A tool call that is not streamed yet (another block is open).
#[derive(Debug)]
struct HeldCall {
    chat_index: u64,
    id: String,
    name: String,
    arguments: String,
}

/// A tool call that has its block: its chat index, the block's index, its arguments so far.
#[derive(Debug)]
struct StreamedCall {
    chat_index: u64,
    block: usize,
    arguments: String,
}

/// Builds one message from one chat-completion stream (see the module docs).
#[derive(Debug)]
pub struct MessageBuilder {
    message: Value,
    include_thinking: bool,
    stop_sequences: Vec<String>,
    /// Every block by its index; the open one is filled in when it closes.
    content: Vec<Value>,
    open: Option<OpenBlock>,
    held: Vec<HeldCall>,
    /// The calls already given a block.
    calls: Vec<StreamedCall>,
    signature: String,
    finish_reason: Option<String>,
    matched_stop: Option<String>,
    usage: Map<String, Value>,
}

impl MessageBuilder {
    /// A builder for message `id`, answered as `model`. `stop_sequences` are the request's.
    pub fn new(id: &str, model: &str, include_thinking: bool, stop_sequences: Vec<String>) -> Self {
        let message = json!({
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        });
        Self {
            message,
            include_thinking,
            stop_sequences,
            content: Vec::new(),
            open: None,
            held: Vec::new(),
            calls: Vec::new(),
            signature: String::new(),
            finish_reason: None,
            matched_stop: None,
            usage: Map::new(),
        }
    }

    /// `message_start` and a `ping`.
    pub fn start(&mut self) -> Vec<Event> {
        vec![
            event("message_start", json!({"message": self.message})),
            event("ping", json!({})),
        ]
    }

    /// The events one chat-completion chunk causes; text that is not a JSON object causes none.
    pub fn chunk(&mut self, chunk: &str) -> Vec<Event> {
        match serde_json::from_str::<Value>(chunk) {
            Ok(Value::Object(chunk)) => self.apply(&chunk, "delta"),
            _ => Vec::new(),
        }
    }

    /// A whole (non-streamed) chat completion, read as one chunk whose delta is its message.
    pub fn completion(&mut self, completion: &Map<String, Value>) -> Vec<Event> {
        let mut completion = completion.clone();
        if let Some(Value::Array(calls)) = completion
            .get_mut("choices")
            .and_then(|c| c.get_mut(0))
            .and_then(|c| c.get_mut("message"))
            .and_then(|m| m.get_mut("tool_calls"))
        {
            for (index, call) in calls.iter_mut().enumerate() {
                call["index"] = json!(index);
            }
        }
        self.apply(&completion, "message")
    }

    /// Closes every block and ends with `message_delta` and `message_stop`. Returns the events
    /// and the final Message object.
    pub fn finish(&mut self) -> (Vec<Event>, Value) {
        let mut events = Vec::new();
        self.close(&mut events);
        self.flush_held(&mut events);
        let has_calls = !self.calls.is_empty();
        let (stop_reason, stop_sequence) = match self.finish_reason.as_deref() {
            _ if has_calls => ("tool_use", Value::Null),
            Some("length") => ("max_tokens", Value::Null),
            Some("tool_calls" | "function_call") => ("tool_use", Value::Null),
            _ => match self.matched_stop.take() {
                Some(sequence) => ("stop_sequence", json!(sequence)),
                None => ("end_turn", Value::Null),
            },
        };
        let usage = self.usage();
        self.message["stop_reason"] = json!(stop_reason);
        self.message["stop_sequence"] = stop_sequence.clone();
        self.message["usage"] = usage.clone();
        self.message["content"] = Value::Array(self.content.clone());
        events.push(event(
            "message_delta",
            json!({"delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                   "usage": usage}),
        ));
        events.push(event("message_stop", json!({})));
        (events, self.message.clone())
    }

    fn usage(&self) -> Value {
        let count = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
        let prompt = count(self.usage.get("prompt_tokens"));
        let cached = count(
            self.usage
                .get("prompt_tokens_details")
                .and_then(|d| d.get("cached_tokens")),
        );
        json!({
            "input_tokens": prompt.saturating_sub(cached),
            "output_tokens": count(self.usage.get("completion_tokens")),
            "cache_creation_input_tokens": count(self.usage.get("cache_creation_input_tokens")),
            "cache_read_input_tokens": cached,
        })
    }

    /// One chunk (or completion), whose choice carries its content under `delta_key`.
    fn apply(&mut self, chunk: &Map<String, Value>, delta_key: &str) -> Vec<Event> {
        let mut events = Vec::new();
        if let Some(Value::Object(usage)) = chunk.get("usage") {
            self.usage = usage.clone();
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(|c| c.get(0))
            .and_then(Value::as_object)
        else {
            return events;
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        if let Some(stop) = ["stop_reason", "matched_stop"]
            .iter()
            .find_map(|key| choice.get(*key).and_then(Value::as_str))
            .filter(|stop| self.stop_sequences.iter().any(|s| s == stop))
        {
            self.matched_stop = Some(stop.to_string());
        }
        let Some(delta) = choice.get(delta_key).and_then(Value::as_object) else {
            return events;
        };
        if self.include_thinking {
            let reasoning = ["reasoning_content", "reasoning"]
                .iter()
                .find_map(|key| delta.get(*key).and_then(Value::as_str))
                .filter(|text| !text.is_empty());
            if let Some(text) = reasoning {
                self.text_delta(&mut events, BlockKind::Thinking, text);
            }
            self.read_signature(delta);
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text_delta(&mut events, BlockKind::Text, text);
        }
        if let Some(Value::Array(calls)) = delta.get("tool_calls") {
            for call in calls {
                self.call_delta(&mut events, call);
            }
        }
        events
    }

    /// A signature of the reasoning, from `reasoning_details` (OpenRouter) or
    /// `thinking_blocks` (LiteLLM), kept until the thinking block closes.
    fn read_signature(&mut self, delta: &Map<String, Value>) {
        for key in ["reasoning_details", "thinking_blocks"] {
            if let Some(Value::Array(items)) = delta.get(key) {
                for item in items {
                    if let Some(signature) = item.get("signature").and_then(Value::as_str) {
                        self.signature.push_str(signature);
                    }
                }
            }
        }
    }

    fn text_delta(&mut self, events: &mut Vec<Event>, kind: BlockKind, text: &str) {
        if self.open.as_ref().is_some_and(|open| open.kind != kind) {
            self.close(events);
        }
        if self.open.is_none() {
            self.flush_held(events);
            let block = match kind {
                BlockKind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
                _ => json!({"type": "text", "text": ""}),
            };
            self.open_block(events, kind, block);
        }
        let open = self.open.as_mut().expect("opened above");
        open.text.push_str(text);
        let delta = match open.kind {
            BlockKind::Thinking => json!({"type": "thinking_delta", "thinking": text}),
            _ => json!({"type": "text_delta", "text": text}),
        };
        events.push(event(
            "content_block_delta",
            json!({"index": open.index, "delta": delta}),
        ));
    }

    fn call_delta(&mut self, events: &mut Vec<Event>, call: &Value) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        let field = |name: &str| {
            function
                .and_then(|f| f.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let arguments = field("arguments");
        if let Some(open) = self
            .open
            .as_mut()
            .filter(|open| open.kind == BlockKind::Tool(chat_index))
        {
            if !arguments.is_empty() {
                open.text.push_str(&arguments);
                let delta = json!({"type": "input_json_delta", "partial_json": arguments});
                events.push(event(
                    "content_block_delta",
                    json!({"index": open.index, "delta": delta}),
                ));
            }
            return;
        }
        if let Some(held) = self.held.iter_mut().find(|h| h.chat_index == chat_index) {
            held.arguments.push_str(&arguments);
            if held.name.is_empty() {
                held.name = field("name");
            }
            return;
        }
        if let Some(done) = self.calls.iter_mut().find(|c| c.chat_index == chat_index) {
            // Arguments of a call whose block already closed: kept in the final message.
            done.arguments.push_str(&arguments);
            self.content[done.block]["input"] = tool_input(&done.arguments);
            return;
        }
        let id = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map_or_else(|| super::new_id("toolu"), str::to_string);
        let held = HeldCall {
            chat_index,
            id,
            name: field("name"),
            arguments,
        };
        if matches!(
            self.open.as_ref().map(|o| &o.kind),
            Some(BlockKind::Tool(_))
        ) {
            self.held.push(held);
        } else {
            self.close(events);
            self.start_call(events, held);
        }
    }

    /// Opens a block for `call` and streams the arguments it has so far.
    fn start_call(&mut self, events: &mut Vec<Event>, call: HeldCall) {
        let block = json!({"type": "tool_use", "id": call.id, "name": call.name, "input": {}});
        self.open_block(events, BlockKind::Tool(call.chat_index), block);
        self.calls.push(StreamedCall {
            chat_index: call.chat_index,
            block: self.content.len() - 1,
            arguments: String::new(),
        });
        if !call.arguments.is_empty() {
            let open = self.open.as_mut().expect("opened above");
            open.text = call.arguments.clone();
            let delta = json!({"type": "input_json_delta", "partial_json": call.arguments});
            events.push(event(
                "content_block_delta",
                json!({"index": open.index, "delta": delta}),
            ));
        }
    }

    /// Streams every held call, one block after another.
    fn flush_held(&mut self, events: &mut Vec<Event>) {
        for call in std::mem::take(&mut self.held) {
            self.start_call(events, call);
            self.close(events);
        }
    }

    fn open_block(&mut self, events: &mut Vec<Event>, kind: BlockKind, block: Value) {
        let index = self.content.len();
        self.content.push(block.clone());
        events.push(event(
            "content_block_start",
            json!({"index": index, "content_block": block}),
        ));
        self.open = Some(OpenBlock {
            index,
            kind,
            text: String::new(),
        });
    }

    fn close(&mut self, events: &mut Vec<Event>) {
        let Some(open) = self.open.take() else {
            return;
        };
        let block = &mut self.content[open.index];
        match open.kind {
            BlockKind::Text => block["text"] = json!(open.text),
            BlockKind::Thinking => {
                block["thinking"] = json!(open.text);
                let signature = std::mem::take(&mut self.signature);
                if !signature.is_empty() {
                    block["signature"] = json!(signature);
                    let delta = json!({"type": "signature_delta", "signature": signature});
                    events.push(event(
                        "content_block_delta",
                        json!({"index": open.index, "delta": delta}),
                    ));
                }
            }
            BlockKind::Tool(chat_index) => {
                block["input"] = tool_input(&open.text);
                if let Some(call) = self.calls.iter_mut().find(|c| c.chat_index == chat_index) {
                    call.arguments = open.text;
                }
            }
        }
        events.push(event("content_block_stop", json!({"index": open.index})));
    }
}

/// A call's arguments as its `input`: the JSON object, or `{}` when they are not one.
fn tool_input(arguments: &str) -> Value {
    serde_json::from_str::<Value>(arguments)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}))
}

/// An event whose data carries its `type` first, then `fields`.
fn event(kind: &str, fields: Value) -> Event {
    let mut data = Map::new();
    data.insert("type".into(), json!(kind));
    if let Value::Object(fields) = fields {
        data.extend(fields);
    }
    Event {
        kind: kind.to_string(),
        data: Value::Object(data),
    }
}

#[cfg(test)]
#[path = "events_tests.rs"]
mod tests;
