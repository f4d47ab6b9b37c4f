//! One event of a typed event stream — the Responses API's `response.*` events and the Messages
//! API's `message_*` / `content_block_*` events — and its server-sent-events framing,
//! `event: <type>\ndata: <json>\n\n`, which both OpenAI and Anthropic use for them.

use bytes::Bytes;
use serde_json::Value;

/// One streaming event: its `type` and its whole JSON body (which repeats the type).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: String,
    pub data: Value,
}

impl Event {
    /// The event as one SSE frame: `event: <type>` and `data: <json>`.
    pub fn to_sse(&self) -> Bytes {
        Bytes::from(format!("event: {}\ndata: {}\n\n", self.kind, self.data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_framed_with_its_type_and_data() {
        let event = Event {
            kind: "ping".into(),
            data: serde_json::json!({"type": "ping"}),
        };
        assert_eq!(
            event.to_sse(),
            Bytes::from("event: ping\ndata: {\"type\":\"ping\"}\n\n")
        );
    }
}
