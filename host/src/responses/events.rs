//! From chat-completion chunks to OpenAI's Responses streaming events and the final Response.
//!
//! [`ResponseBuilder`] is fed the provider's chunks one by one and returns the events each one
//! causes, numbered by `sequence_number` from 0, in OpenAI's order:
//! `response.created`, `response.in_progress`; per output item `response.output_item.added`,
//! then for a message `response.content_part.added`, `response.output_text.delta`…,
//! `response.output_text.done`, `response.content_part.done`; for a reasoning item the same
//! with `reasoning_text`; for a function call `response.function_call_arguments.delta`…,
//! `response.function_call_arguments.done`; then `response.output_item.done`; and one terminal
//! event: `response.completed`, `response.incomplete` (finish reason `length` →
//! `max_output_tokens`, `content_filter` → `content_filter`) or `response.failed`.
//!
//! Items take output indexes in the order they start: reasoning (from `reasoning_content` or
//! `reasoning` deltas), text, each parallel tool call by its chat `index`. Text that arrives
//! while a function call is open starts a new message item after it.

use super::new_id;
use super::object;
pub use crate::stream_event::Event;
use serde_json::{Map, Value, json};

/// An item whose content is still arriving.
#[derive(Debug)]
struct OpenText {
    output_index: usize,
    id: String,
    text: String,
}

#[derive(Debug)]
struct OpenCall {
    /// The chat `tool_calls[].index`.
    chat_index: u64,
    output_index: usize,
    id: String,
    call_id: String,
    name: String,
    arguments: String,
}

/// Builds one response from one chat-completion stream (see the module docs).
#[derive(Debug)]
pub struct ResponseBuilder {
    response: Value,
    sequence: u64,
    /// Every item, by output index; open ones are updated when they close.
    output: Vec<Value>,
    reasoning: Option<OpenText>,
    message: Option<OpenText>,
    calls: Vec<OpenCall>,
    finish_reason: Option<String>,
    usage: Option<Value>,
}

impl ResponseBuilder {
    /// A builder for `response` (an in-progress Response object from [`object::in_progress`]).
    pub fn new(response: Value) -> Self {
        Self {
            response,
            sequence: 0,
            output: Vec::new(),
            reasoning: None,
            message: None,
            calls: Vec::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// `response.created` and `response.in_progress`.
    pub fn start(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        for kind in ["response.created", "response.in_progress"] {
            let response = self.response.clone();
            self.emit(&mut events, kind, json!({"response": response}));
        }
        events
    }

    /// The events one chat-completion chunk causes. A chunk that is not a JSON object, or
    /// that carries nothing, causes none.
    pub fn chunk(&mut self, chunk: &str) -> Vec<Event> {
        let mut events = Vec::new();
        let Ok(Value::Object(chunk)) = serde_json::from_str::<Value>(chunk) else {
            return events;
        };
        if let Some(Value::Object(usage)) = chunk.get("usage") {
            self.usage = Some(object::usage(usage));
        }
        let Some(choice) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|choices| choices.first())
        else {
            return events;
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        let Some(delta) = choice.get("delta").and_then(Value::as_object) else {
            return events;
        };
        let reasoning = ["reasoning_content", "reasoning"]
            .iter()
            .find_map(|key| delta.get(*key).and_then(Value::as_str))
            .filter(|text| !text.is_empty());
        if let Some(text) = reasoning {
            self.reasoning_delta(&mut events, text);
        }
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            self.text_delta(&mut events, text);
        }
        if let Some(Value::Array(calls)) = delta.get("tool_calls") {
            for call in calls {
                self.call_delta(&mut events, call);
            }
        }
        events
    }

    /// Closes every open item and ends with `response.completed` or `response.incomplete`.
    /// Returns the events and the final Response object.
    pub fn finish(&mut self) -> (Vec<Event>, Value) {
        let mut events = self.close_all();
        let incomplete = match self.finish_reason.as_deref() {
            Some("length") => Some("max_output_tokens"),
            Some("content_filter") => Some("content_filter"),
            _ => None,
        };
        let kind = match incomplete {
            Some(reason) => {
                self.response["status"] = json!("incomplete");
                self.response["incomplete_details"] = json!({"reason": reason});
                "response.incomplete"
            }
            None => {
                self.response["status"] = json!("completed");
                self.response["completed_at"] = json!(now());
                "response.completed"
            }
        };
        self.settle();
        let response = self.response.clone();
        self.emit(&mut events, kind, json!({"response": response.clone()}));
        (events, response)
    }

    /// Ends with `response.failed` carrying `message` (code `server_error`). Items still open
    /// are left out of the output.
    pub fn fail(&mut self, message: &str) -> (Vec<Event>, Value) {
        let open: Vec<usize> = self
            .reasoning
            .iter()
            .chain(self.message.iter())
            .map(|item| item.output_index)
            .chain(self.calls.iter().map(|call| call.output_index))
            .collect();
        let mut index = 0;
        self.output.retain(|_| {
            index += 1;
            !open.contains(&(index - 1))
        });
        self.reasoning = None;
        self.message = None;
        self.calls.clear();
        self.response["status"] = json!("failed");
        self.response["error"] = json!({"code": "server_error", "message": message});
        self.settle();
        let response = self.response.clone();
        let mut events = Vec::new();
        self.emit(
            &mut events,
            "response.failed",
            json!({"response": response.clone()}),
        );
        (events, response)
    }

    fn settle(&mut self) {
        self.response["output"] = Value::Array(self.output.clone());
        self.response["usage"] = self.usage.clone().unwrap_or(Value::Null);
    }

    fn emit(&mut self, events: &mut Vec<Event>, kind: &str, fields: Value) {
        let mut data = Map::new();
        data.insert("type".into(), json!(kind));
        if let Value::Object(fields) = fields {
            data.extend(fields);
        }
        data.insert("sequence_number".into(), json!(self.sequence));
        self.sequence += 1;
        events.push(Event {
            kind: kind.to_string(),
            data: Value::Object(data),
        });
    }

    fn add_item(&mut self, events: &mut Vec<Event>, item: Value) -> usize {
        let output_index = self.output.len();
        self.output.push(item.clone());
        self.emit(
            events,
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
        output_index
    }

    /// Adds `item` and its one content part, `part`.
    fn open_text_item(
        &mut self,
        events: &mut Vec<Event>,
        id: String,
        item: Value,
        part: Value,
    ) -> OpenText {
        let output_index = self.add_item(events, item);
        self.emit(
            events,
            "response.content_part.added",
            json!({"item_id": id, "output_index": output_index, "content_index": 0, "part": part}),
        );
        OpenText {
            output_index,
            id,
            text: String::new(),
        }
    }

    fn reasoning_delta(&mut self, events: &mut Vec<Event>, text: &str) {
        if self.reasoning.is_none() {
            let id = new_id("rs");
            let item = json!({"id": id, "type": "reasoning", "summary": [], "content": [],
                "status": "in_progress"});
            let part = json!({"type": "reasoning_text", "text": ""});
            self.reasoning = Some(self.open_text_item(events, id, item, part));
        }
        let open = self.reasoning.as_mut().expect("opened above");
        open.text.push_str(text);
        let fields = json!({"item_id": open.id, "output_index": open.output_index,
            "content_index": 0, "delta": text});
        self.emit(events, "response.reasoning_text.delta", fields);
    }

    fn text_delta(&mut self, events: &mut Vec<Event>, text: &str) {
        self.close_reasoning(events);
        if !self.calls.is_empty() {
            self.close_calls(events);
        }
        if self.message.is_none() {
            let id = new_id("msg");
            let item = json!({"id": id, "type": "message", "role": "assistant",
                "status": "in_progress", "content": []});
            let part =
                json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
            self.message = Some(self.open_text_item(events, id, item, part));
        }
        let open = self.message.as_mut().expect("opened above");
        open.text.push_str(text);
        let fields = json!({"item_id": open.id, "output_index": open.output_index,
            "content_index": 0, "delta": text, "logprobs": []});
        self.emit(events, "response.output_text.delta", fields);
    }

    fn call_delta(&mut self, events: &mut Vec<Event>, call: &Value) {
        let chat_index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or("").to_string();
        let position = match self.calls.iter().position(|c| c.chat_index == chat_index) {
            Some(position) => position,
            None => {
                self.close_reasoning(events);
                self.close_message(events);
                let id = new_id("fc");
                let call_id = match call.get("id").and_then(Value::as_str) {
                    Some(call_id) if !call_id.is_empty() => call_id.to_string(),
                    _ => new_id("call"),
                };
                let name = text(function.and_then(|f| f.get("name")));
                let item = json!({"id": id, "type": "function_call", "status": "in_progress",
                    "call_id": call_id, "name": name, "arguments": ""});
                let output_index = self.add_item(events, item);
                self.calls.push(OpenCall {
                    chat_index,
                    output_index,
                    id,
                    call_id,
                    name,
                    arguments: String::new(),
                });
                self.calls.len() - 1
            }
        };
        let open = &mut self.calls[position];
        if open.name.is_empty() {
            open.name = text(function.and_then(|f| f.get("name")));
        }
        let delta = text(function.and_then(|f| f.get("arguments")));
        if !delta.is_empty() {
            open.arguments.push_str(&delta);
            let fields =
                json!({"item_id": open.id, "output_index": open.output_index, "delta": delta});
            self.emit(events, "response.function_call_arguments.delta", fields);
        }
    }

    fn close_all(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        self.close_reasoning(&mut events);
        self.close_message(&mut events);
        self.close_calls(&mut events);
        events
    }

    fn close_reasoning(&mut self, events: &mut Vec<Event>) {
        let Some(open) = self.reasoning.take() else {
            return;
        };
        let part = json!({"type": "reasoning_text", "text": open.text});
        let place =
            json!({"item_id": open.id, "output_index": open.output_index, "content_index": 0});
        let mut done = place.clone();
        done["text"] = json!(open.text);
        self.emit(events, "response.reasoning_text.done", done);
        let mut part_done = place;
        part_done["part"] = part.clone();
        self.emit(events, "response.content_part.done", part_done);
        let item = json!({"id": open.id, "type": "reasoning", "summary": [],
            "content": [part], "status": "completed"});
        self.close_item(events, open.output_index, item);
    }

    fn close_message(&mut self, events: &mut Vec<Event>) {
        let Some(open) = self.message.take() else {
            return;
        };
        let part =
            json!({"type": "output_text", "text": open.text, "annotations": [], "logprobs": []});
        let place =
            json!({"item_id": open.id, "output_index": open.output_index, "content_index": 0});
        let mut done = place.clone();
        done["text"] = json!(open.text);
        done["logprobs"] = json!([]);
        self.emit(events, "response.output_text.done", done);
        let mut part_done = place;
        part_done["part"] = part.clone();
        self.emit(events, "response.content_part.done", part_done);
        let item = json!({"id": open.id, "type": "message", "role": "assistant",
            "status": "completed", "content": [part]});
        self.close_item(events, open.output_index, item);
    }

    fn close_calls(&mut self, events: &mut Vec<Event>) {
        for open in std::mem::take(&mut self.calls) {
            let arguments = if open.arguments.is_empty() {
                "{}".to_string()
            } else {
                open.arguments
            };
            let fields = json!({"item_id": open.id, "output_index": open.output_index,
                "arguments": arguments, "name": open.name});
            self.emit(events, "response.function_call_arguments.done", fields);
            let item = json!({"id": open.id, "type": "function_call", "status": "completed",
                "call_id": open.call_id, "name": open.name, "arguments": arguments});
            self.close_item(events, open.output_index, item);
        }
    }

    fn close_item(&mut self, events: &mut Vec<Event>, output_index: usize, item: Value) {
        self.output[output_index] = item.clone();
        self.emit(
            events,
            "response.output_item.done",
            json!({"output_index": output_index, "item": item}),
        );
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> ResponseBuilder {
        ResponseBuilder::new(json!({"id": "resp_1", "status": "in_progress", "output": []}))
    }

    fn chunk(delta: Value, finish: Option<&str>) -> String {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string()
    }

    fn run(chunks: &[String]) -> (Vec<Event>, Value) {
        let mut builder = builder();
        let mut events = builder.start();
        for c in chunks {
            events.extend(builder.chunk(c));
        }
        let (end, response) = builder.finish();
        events.extend(end);
        (events, response)
    }

    fn kinds(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn text_follows_openais_event_order() {
        let usage = json!({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
        let (events, response) = run(&[
            chunk(json!({"role": "assistant", "content": "Hel"}), None),
            chunk(json!({"content": "lo"}), None),
            chunk(json!({}), Some("stop")),
            usage.to_string(),
        ]);
        assert_eq!(
            kinds(&events),
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed",
            ]
        );
        for (n, event) in events.iter().enumerate() {
            assert_eq!(event.data["sequence_number"], n as u64);
            assert_eq!(event.data["type"], event.kind);
        }
        assert_eq!(events[6].data["text"], "Hello");
        assert_eq!(response["status"], "completed");
        assert_eq!(response["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(response["usage"]["total_tokens"], 5);
    }

    #[test]
    fn parallel_calls_keep_their_own_output_indexes_after_text() {
        let call = |index: u64, id: Option<&str>, name: Option<&str>, args: &str| {
            let mut function = json!({"arguments": args});
            if let Some(name) = name {
                function["name"] = json!(name);
            }
            let mut call = json!({"index": index, "type": "function", "function": function});
            if let Some(id) = id {
                call["id"] = json!(id);
            }
            chunk(json!({"tool_calls": [call]}), None)
        };
        let (events, response) = run(&[
            chunk(json!({"content": "Let me look."}), None),
            call(0, Some("call_a"), Some("weather"), ""),
            call(1, Some("call_b"), Some("time"), "{\"tz\":"),
            call(0, None, None, "{\"city\":\"Paris\"}"),
            call(1, None, None, "\"UTC\"}"),
            chunk(json!({}), Some("tool_calls")),
        ]);
        let output = response["output"].as_array().unwrap();
        assert_eq!(output.len(), 3);
        assert_eq!(output[0]["type"], "message");
        assert_eq!(output[1]["call_id"], "call_a");
        assert_eq!(output[1]["arguments"], "{\"city\":\"Paris\"}");
        assert_eq!(output[2]["call_id"], "call_b");
        assert_eq!(output[2]["arguments"], "{\"tz\":\"UTC\"}");
        let deltas: Vec<u64> = events
            .iter()
            .filter(|e| e.kind == "response.function_call_arguments.delta")
            .map(|e| e.data["output_index"].as_u64().unwrap())
            .collect();
        assert_eq!(deltas, [2, 1, 2]);
        assert_eq!(response["status"], "completed");
    }

    #[test]
    fn reasoning_gets_its_own_item_before_the_message() {
        let (events, response) = run(&[
            chunk(json!({"reasoning_content": "think"}), None),
            chunk(json!({"reasoning": "ing"}), None),
            chunk(json!({"content": "answer"}), Some("stop")),
        ]);
        assert_eq!(response["output"][0]["type"], "reasoning");
        assert_eq!(response["output"][0]["content"][0]["text"], "thinking");
        assert_eq!(response["output"][1]["content"][0]["text"], "answer");
        assert!(kinds(&events).contains(&"response.reasoning_text.done"));
    }

    #[test]
    fn length_is_incomplete_and_failure_is_failed() {
        let (events, response) = run(&[chunk(json!({"content": "cut"}), Some("length"))]);
        assert_eq!(events.last().unwrap().kind, "response.incomplete");
        assert_eq!(
            response["incomplete_details"]["reason"],
            "max_output_tokens"
        );

        let mut builder = builder();
        builder.start();
        builder.chunk(&chunk(json!({"content": "half"}), None));
        let (events, response) = builder.fail("upstream closed the connection");
        assert_eq!(kinds(&events), ["response.failed"]);
        assert_eq!(events[0].data["sequence_number"], 5);
        assert_eq!(response["status"], "failed");
        assert_eq!(
            response["error"]["message"],
            "upstream closed the connection"
        );
        assert_eq!(response["output"], json!([]));
    }
}
