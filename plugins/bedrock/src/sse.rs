//! Server-sent events from raw body bytes.
//!
//! The plugin reads streamed responses with raw framing rather than the host's SSE framing so
//! that an error status's plain JSON body (which has no `data:` lines) reaches the error
//! mapping intact. [`Decoder`] turns the bytes of a successful stream into the `data:`
//! payloads of its events; [`classify`] says what each one means. Chunks pass through as
//! the upstream wrote them, `reasoning` deltas included.

use ogx_provider_sdk::{ProviderError, Value};

/// Splits a byte stream into the data of its events (lines joined by `\n`).
#[derive(Debug, Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    data: Vec<String>,
}

impl Decoder {
    /// Feeds bytes; returns the data of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            self.line(line, &mut events);
        }
        events
    }

    /// The last event when the body ends without a blank line.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buffer);
        let mut events = Vec::new();
        if !rest.is_empty() {
            self.line(
                String::from_utf8_lossy(&rest).trim_end_matches('\r'),
                &mut events,
            );
        }
        self.line("", &mut events);
        events.pop()
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            if !self.data.is_empty() {
                events.push(self.data.join("\n"));
                self.data.clear();
            }
        } else if let Some(value) = line.strip_prefix("data:") {
            self.data
                .push(value.strip_prefix(' ').unwrap_or(value).to_string());
        }
        // `event:`, `id:`, `retry:` and comments carry nothing the client needs.
    }
}

/// One event's data, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A chunk object, as the upstream wrote it.
    Chunk(String),
    /// `[DONE]`: the stream ended normally.
    Done,
    /// The upstream reported an error inside the stream.
    Failed(ProviderError),
}

/// What one event's data means: `[DONE]`, an `error` object, or a chunk to pass on.
pub fn classify(data: &str) -> Event {
    let data = data.trim();
    if data.starts_with("[DONE]") {
        return Event::Done;
    }
    if data.contains("\"error\"")
        && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(data)
        && let Some(error) = map.get("error").filter(|e| !e.is_null())
    {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| error.to_string());
        return Event::Failed(ProviderError::BadGateway(format!(
            "The upstream failed during streaming: {message}"
        )));
    }
    Event::Chunk(data.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads() {
        let body = "data: {\"a\":1}\n\n: comment\nevent: x\ndata: {\"b\":\ndata: 2}\r\n\r\ndata: [DONE]\n\n";
        for split in 0..body.len() {
            let mut decoder = Decoder::default();
            let mut events = decoder.push(&body.as_bytes()[..split]);
            events.extend(decoder.push(&body.as_bytes()[split..]));
            events.extend(decoder.finish());
            assert_eq!(
                events,
                vec!["{\"a\":1}", "{\"b\":\n2}", "[DONE]"],
                "split at {split}"
            );
        }
    }

    #[test]
    fn a_last_event_without_blank_line_is_kept() {
        let mut decoder = Decoder::default();
        assert!(decoder.push(b"data: {\"c\":3}").is_empty());
        assert_eq!(decoder.finish().as_deref(), Some("{\"c\":3}"));
        assert_eq!(decoder.finish(), None);
    }

    #[test]
    fn classification() {
        let reasoning = r#"{"choices":[{"delta":{"reasoning":"think \"error\""}}]}"#;
        assert_eq!(classify(reasoning), Event::Chunk(reasoning.into()));
        assert_eq!(classify(" [DONE] "), Event::Done);
        assert_eq!(
            classify(r#"{"id":"x","error":null}"#),
            Event::Chunk(r#"{"id":"x","error":null}"#.into())
        );
        assert_eq!(
            classify(r#"{"error":{"message":"throttled"}}"#),
            Event::Failed(ProviderError::BadGateway(
                "The upstream failed during streaming: throttled".into()
            ))
        );
    }
}
