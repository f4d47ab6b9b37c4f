//! Anthropic's Messages API for the benchmark: `POST /v1/messages` answers a fixed Messages
//! answer naming the request's `model`; with `"stream": true`, Anthropic's server-sent events
//! (`message_start`, `content_block_start`, `--stream-chunks` text `content_block_delta`s,
//! `content_block_stop`, `message_delta`, `message_stop`), each after `--chunk-delay-ms`. What
//! ogx's native Messages path (a provider whose upstream speaks Messages, such as
//! `remote::anthropic`) sends is measured against this. Like the rest of this upstream it
//! checks no key; a body that is not a JSON object with a string `model` gets a 400 in
//! Anthropic's error shape.

use bytes::Bytes;

/// The fields of a Messages request the answer depends on.
#[derive(serde::Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    #[serde(default)]
    pub stream: bool,
}

/// The whole answer to a request for `model`.
pub fn answer(model: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "msg_bench", "type": "message", "role": "assistant", "model": model,
        "content": [{"type": "text", "text": "The answer is 42."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 6}})
}

/// The body of Anthropic's error answer.
pub fn error(kind: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// The events of a streamed answer for `model` with `chunks` text deltas.
pub fn stream_events(model: &str, chunks: usize) -> Vec<Bytes> {
    let event = |kind: &str, data: serde_json::Value| {
        Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
    };
    let mut events = Vec::with_capacity(chunks + 5);
    events.push(event(
        "message_start",
        serde_json::json!({"type": "message_start", "message": {
            "id": "msg_bench", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 1}}}),
    ));
    events.push(event(
        "content_block_start",
        serde_json::json!({"type": "content_block_start", "index": 0,
                           "content_block": {"type": "text", "text": ""}}),
    ));
    for i in 0..chunks {
        events.push(event(
            "content_block_delta",
            serde_json::json!({"type": "content_block_delta", "index": 0,
                               "delta": {"type": "text_delta", "text": format!("word{i} ")}}),
        ));
    }
    events.push(event(
        "content_block_stop",
        serde_json::json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(event(
        "message_delta",
        serde_json::json!({"type": "message_delta",
                           "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                           "usage": {"output_tokens": chunks}}),
    ));
    events.push(event(
        "message_stop",
        serde_json::json!({"type": "message_stop"}),
    ));
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_framed_as_anthropic_frames_it() {
        let events = stream_events("m", 2);
        assert_eq!(events.len(), 7);
        let text: Vec<String> = events
            .iter()
            .map(|e| String::from_utf8(e.to_vec()).unwrap())
            .collect();
        assert!(text[0].starts_with("event: message_start\ndata: {"));
        assert!(text.iter().all(|e| e.ends_with("}\n\n")));
        let last: serde_json::Value =
            serde_json::from_str(text[6].split_once("data: ").unwrap().1.trim()).unwrap();
        assert_eq!(last["type"], "message_stop");
        assert_eq!(answer("m")["model"], "m");
    }
}
