//! Bedrock Converse and ConverseStream for the benchmark: `POST /model/{modelId}/converse`
//! answers a fixed Converse JSON answer; `POST /model/{modelId}/converse-stream` answers real
//! `application/vnd.amazon.eventstream` frames (prelude and message CRC-32s, string headers
//! `:event-type`, `:content-type`, `:message-type`): `messageStart`, `--stream-chunks` text
//! `contentBlockDelta`s, `contentBlockStop`, `messageStop`, `metadata`. The frames are
//! encoded once at start-up, so a streamed answer costs only the writes. Like the rest of
//! this upstream it checks no signature; a body that is not JSON gets a 400 (the body is
//! read whole either way, as Bedrock reads it).

use bytes::Bytes;

/// The Converse answer (the model id is not echoed: Converse answers carry none).
pub const ANSWER: &str = r#"{"output":{"message":{"role":"assistant","content":[{"text":"The answer is 42."}]}},"stopReason":"end_turn","usage":{"inputTokens":12,"outputTokens":6,"totalTokens":18},"metrics":{"latencyMs":1}}"#;

/// Whether `path` is `/model/{id}/converse` (`Some(false)`) or `/converse-stream`
/// (`Some(true)`).
pub fn route(path: &str) -> Option<bool> {
    let rest = path.strip_prefix("/model/")?;
    let (model, operation) = rest.rsplit_once('/')?;
    if model.is_empty() || model.contains('/') {
        return None;
    }
    match operation {
        "converse" => Some(false),
        "converse-stream" => Some(true),
        _ => None,
    }
}

/// One event-stream message carrying `payload` as event `event_type`.
pub fn frame(event_type: &str, payload: &str) -> Bytes {
    let mut headers = Vec::new();
    for (name, value) in [
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ] {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let total = 16 + headers.len() + payload.len();
    let mut message = Vec::with_capacity(total);
    message.extend_from_slice(&(total as u32).to_be_bytes());
    message.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    message.extend_from_slice(&crc32fast::hash(&message).to_be_bytes());
    message.extend_from_slice(&headers);
    message.extend_from_slice(payload.as_bytes());
    message.extend_from_slice(&crc32fast::hash(&message).to_be_bytes());
    Bytes::from(message)
}

/// The frames of a streamed answer with `chunks` text deltas.
pub fn stream_frames(chunks: usize) -> Vec<Bytes> {
    let mut frames = Vec::with_capacity(chunks + 4);
    frames.push(frame("messageStart", r#"{"role":"assistant"}"#));
    for i in 0..chunks {
        frames.push(frame(
            "contentBlockDelta",
            &format!(r#"{{"contentBlockIndex":0,"delta":{{"text":"word{i} "}}}}"#),
        ));
    }
    frames.push(frame("contentBlockStop", r#"{"contentBlockIndex":0}"#));
    frames.push(frame("messageStop", r#"{"stopReason":"end_turn"}"#));
    frames.push(frame(
        "metadata",
        r#"{"usage":{"inputTokens":12,"outputTokens":6,"totalTokens":18},"metrics":{"latencyMs":1}}"#,
    ));
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"),
            Some(false)
        );
        assert_eq!(route("/model/us.x/converse-stream"), Some(true));
        assert_eq!(route("/model/x/invoke"), None);
        assert_eq!(route("/model//converse"), None);
        assert_eq!(route("/v1/chat/completions"), None);
    }

    #[test]
    fn frames_match_the_reference_vector() {
        // A Bedrock-shaped contentBlockDelta, 151 bytes, from the event-stream reference.
        let got = frame(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hello"}}"#,
        );
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got.len(), 151);
        assert!(hex.starts_with("0000009700000057f30be03e"), "{hex}");
        assert!(hex.ends_with("67623831"), "{hex}");
        assert_eq!(stream_frames(3).len(), 7);
    }
}
