//! Token usage read from the answers ogx sends, whatever their API: chat completions,
//! completions and embeddings (`usage.prompt_tokens`, `completion_tokens`,
//! `prompt_tokens_details.cached_tokens`), Responses (`usage.input_tokens`, `output_tokens`,
//! `input_tokens_details.cached_tokens`, streamed in `response.completed`) and Messages
//! (`input_tokens` + `cache_read_input_tokens` + `cache_creation_input_tokens`,
//! `output_tokens`; streamed in `message_start` and `message_delta`).
//!
//! [`SseMeter`] reads a streamed answer event by event as it passes, keeping the largest value
//! of each count seen (streams repeat cumulative counts), and can drop the usage-only chunk of
//! a chat-completion stream whose client did not ask for it (ogx asked upstream in its place).
//! An answer without usage counts as zero tokens.

use bytes::Bytes;
use serde_json::Value;

/// Tokens of one answer; `input_tokens` includes `cached_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
}

impl Usage {
    /// Field by field, the larger of the two.
    fn merge(&mut self, other: Usage) {
        self.input_tokens = self.input_tokens.max(other.input_tokens);
        self.output_tokens = self.output_tokens.max(other.output_tokens);
        self.cached_tokens = self.cached_tokens.max(other.cached_tokens);
    }
}

fn count(value: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The usage in one `usage` object of any of the three shapes.
pub fn from_usage_object(usage: &Value) -> Option<Usage> {
    if !usage.is_object() {
        return None;
    }
    if usage.get("prompt_tokens").is_some() {
        return Some(Usage {
            input_tokens: count(usage, &["prompt_tokens"]),
            output_tokens: count(usage, &["completion_tokens"]),
            cached_tokens: count(usage, &["prompt_tokens_details", "cached_tokens"]),
        });
    }
    let cache_read = count(usage, &["cache_read_input_tokens"]);
    let cached = count(usage, &["input_tokens_details", "cached_tokens"]).max(cache_read);
    Some(Usage {
        input_tokens: count(usage, &["input_tokens"])
            + cache_read
            + count(usage, &["cache_creation_input_tokens"]),
        output_tokens: count(usage, &["output_tokens"]),
        cached_tokens: cached,
    })
}

/// The usage of one JSON answer or one event's data: its `usage`, or its `response.usage`
/// (Responses events) or `message.usage` (Messages' `message_start`).
pub fn from_answer(answer: &Value) -> Option<Usage> {
    [
        answer.get("usage"),
        answer.get("response").and_then(|r| r.get("usage")),
        answer.get("message").and_then(|m| m.get("usage")),
    ]
    .into_iter()
    .flatten()
    .find_map(from_usage_object)
}

/// Reads a server-sent event stream as it passes; see the module documentation.
#[derive(Debug, Default)]
pub struct SseMeter {
    pending: Vec<u8>,
    usage: Usage,
    /// Drop chat chunks that carry usage and no choices.
    strip_usage_chunks: bool,
}

impl SseMeter {
    pub fn new(strip_usage_chunks: bool) -> Self {
        SseMeter {
            strip_usage_chunks,
            ..SseMeter::default()
        }
    }

    /// Takes the next bytes of the stream; answers the bytes to pass on (whole events only; a
    /// partial event waits for its end).
    pub fn pass(&mut self, bytes: &[u8]) -> Bytes {
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(bytes);
        let mut out = Vec::with_capacity(pending.len());
        let mut start = 0;
        while let Some(end) = find_event_end(&pending[start..]) {
            let event = &pending[start..start + end];
            if self.keep(event) {
                out.extend_from_slice(event);
            }
            start += end;
        }
        pending.drain(..start);
        self.pending = pending;
        Bytes::from(out)
    }

    /// What is left when the stream ends (an unterminated last event), passed on as is.
    pub fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.pending);
        self.keep(&rest);
        Bytes::from(rest)
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    fn keep(&mut self, event: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(event) else {
            return true;
        };
        let data: String = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim_start)
            .collect::<Vec<_>>()
            .join("\n");
        if data.is_empty() || data == "[DONE]" {
            return true;
        }
        let Ok(value) = serde_json::from_str::<Value>(&data) else {
            return true;
        };
        if let Some(usage) = from_answer(&value) {
            self.usage.merge(usage);
            let usage_only = value
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
            if self.strip_usage_chunks && usage_only {
                return false;
            }
        }
        true
    }
}

/// The length of the first complete event in `bytes` (through its blank line), if any.
fn find_event_end(bytes: &[u8]) -> Option<usize> {
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|at| at + 2);
    let crlf = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_api_s_usage_shape_is_read() {
        let chat = json!({"usage": {"prompt_tokens": 10, "completion_tokens": 5,
                                    "prompt_tokens_details": {"cached_tokens": 4}}});
        let responses = json!({"type": "response.completed", "response": {"usage": {
            "input_tokens": 10, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 4}}}});
        let messages = json!({"type": "message_start", "message": {"usage": {
            "input_tokens": 6, "cache_read_input_tokens": 4, "output_tokens": 5}}});
        let expected = Usage {
            input_tokens: 10,
            output_tokens: 5,
            cached_tokens: 4,
        };
        for answer in [chat, responses, messages] {
            assert_eq!(from_answer(&answer), Some(expected), "{answer}");
        }
        let embeddings = json!({"usage": {"prompt_tokens": 3, "total_tokens": 3}});
        assert_eq!(from_answer(&embeddings).unwrap().input_tokens, 3);
        assert_eq!(from_answer(&json!({"usage": null})), None);
    }

    #[test]
    fn a_stream_is_metered_across_split_events_and_the_usage_chunk_dropped_on_request() {
        let stream = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n"
        );
        for strip in [false, true] {
            let mut meter = SseMeter::new(strip);
            let mut out = Vec::new();
            for piece in stream.as_bytes().chunks(7) {
                out.extend_from_slice(&meter.pass(piece));
            }
            out.extend_from_slice(&meter.finish());
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.contains("usage"), !strip, "{text}");
            assert!(text.ends_with("data: [DONE]\n\n") && text.contains("\"hi\""));
            assert_eq!(
                meter.usage(),
                Usage {
                    input_tokens: 7,
                    output_tokens: 2,
                    cached_tokens: 0
                }
            );
        }
    }

    #[test]
    fn messages_streams_sum_their_start_and_delta_usage() {
        let mut meter = SseMeter::new(false);
        meter.pass(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n");
        meter.pass(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":12}}\n\n");
        assert_eq!(
            meter.usage(),
            Usage {
                input_tokens: 9,
                output_tokens: 12,
                cached_tokens: 0
            }
        );
    }
}
