//! What one SSE event of an OpenAI-compatible stream means.
//!
//! Each event's data is one chunk object, passed on as text without re-serializing it.
//! `[DONE]` ends the stream and is not forwarded. An event named `error`, or a data object
//! with a non-null `error`, is the upstream failing mid-stream (as the OpenAI SDK reads it):
//! it ends the stream with a 502 error event.

use ogx_provider_sdk::{ProviderError, Value};

/// One event, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A chunk object, as the upstream wrote it.
    Chunk(String),
    /// `[DONE]`: the stream ended normally.
    Done,
    /// The upstream reported an error inside the stream.
    Failed(ProviderError),
}

/// Classifies an SSE event's `event` field and data.
pub fn classify(event: Option<&str>, data: &str) -> Event {
    let data = data.trim();
    if data.starts_with("[DONE]") {
        return Event::Done;
    }
    // Parse only what may be an error: chunks pass through untouched.
    if event == Some("error") || data.contains("\"error\"") {
        let error = match serde_json::from_str::<Value>(data) {
            Ok(Value::Object(map)) => map.get("error").filter(|e| !e.is_null()).cloned(),
            _ => None,
        };
        if let Some(error) = error {
            let message = match &error {
                Value::String(s) => s.clone(),
                Value::Object(obj) => match obj.get("message") {
                    Some(Value::String(s)) => s.clone(),
                    _ => error.to_string(),
                },
                other => other.to_string(),
            };
            return Event::Failed(ProviderError::BadGateway(format!(
                "The upstream failed during streaming: {message}"
            )));
        }
        if event == Some("error") {
            return Event::Failed(ProviderError::BadGateway(format!(
                "The upstream failed during streaming: {data}"
            )));
        }
    }
    Event::Chunk(data.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_classified() {
        let chunk = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"delta":{"content":"\"error\""}}]}"#;
        let cases = [
            (None, "[DONE]", Event::Done),
            (None, chunk, Event::Chunk(chunk.into())),
            (
                None,
                r#"{"id":"c","error":null}"#,
                Event::Chunk(r#"{"id":"c","error":null}"#.into()),
            ),
            (
                None,
                r#"{"error":{"message":"overloaded","code":503}}"#,
                Event::Failed(ProviderError::BadGateway(
                    "The upstream failed during streaming: overloaded".into(),
                )),
            ),
            (
                Some("error"),
                "boom",
                Event::Failed(ProviderError::BadGateway(
                    "The upstream failed during streaming: boom".into(),
                )),
            ),
        ];
        for (event, data, want) in cases {
            assert_eq!(classify(event, data), want, "{data}");
        }
    }
}
