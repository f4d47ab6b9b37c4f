//! [`RequestRecord`]: what one API request learns about itself while it is served — the
//! provider and model it was routed to, the upstream time of its exchanges, when its first
//! streamed chunk came, the tokens its answer's `usage` reported — for its metrics, its log
//! line and its timing headers.
//!
//! The server makes one per request and makes it the task's [`current`] record while the
//! handler runs; whatever produces the answer (a handler, or the task that streams it) takes
//! the `Arc` with it. Everything is write-once or atomic: a stream's task and the request's
//! task may touch it at the same time. No prompt or completion text is kept.

use super::trace::Propagation;
use crate::imports::http::UpstreamClock;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

tokio::task_local! {
    static CURRENT: Arc<RequestRecord>;
}

/// Where a request was routed, with bounded values (see `super::metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The GenAI operation: `chat`, `text_completion` or `embeddings`.
    pub operation: &'static str,
    pub provider: String,
    /// A model id the registry knows, or [`super::metrics::OTHER_MODEL`].
    pub model: String,
    /// With tracing on, the model id the client asked for (unbounded: spans only) and the
    /// provider's type; `None` otherwise.
    pub traced: Option<Box<(String, String)>>,
}

/// Tokens an answer's `usage` reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// The facts of one request.
#[derive(Debug)]
pub struct RequestRecord {
    pub started: Instant,
    pub upstream: Arc<UpstreamClock>,
    /// What its provider calls carry down to their exchanges: the server span's context
    /// (tracing on), the client's `traceparent` (tracing off), or nothing.
    propagation: Option<Propagation>,
    /// Provider-call attempts started so far (routing counts them; retries are the rest).
    attempts: AtomicU32,
    routed: OnceLock<Routed>,
    /// The `model` of the answer, noted with tracing on only.
    response_model: OnceLock<String>,
    first_chunk: OnceLock<Duration>,
    usage_seen: AtomicBool,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
}

impl RequestRecord {
    pub fn new(started: Instant) -> Self {
        Self::propagating(started, None)
    }

    /// A record whose provider calls carry `propagation`.
    pub fn propagating(started: Instant, propagation: Option<Propagation>) -> Self {
        RequestRecord {
            started,
            upstream: Arc::default(),
            propagation,
            attempts: AtomicU32::new(0),
            routed: OnceLock::new(),
            response_model: OnceLock::new(),
            first_chunk: OnceLock::new(),
            usage_seen: AtomicBool::new(false),
            input_tokens: AtomicU64::new(0),
            output_tokens: AtomicU64::new(0),
        }
    }

    /// Runs `future` with this record as the [`current`] one.
    pub async fn scope<F: Future>(self: Arc<Self>, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// Notes where the request went; the first note wins (a Responses turn that calls its
    /// model twice is one routing).
    pub fn route(&self, routed: Routed) {
        let _ = self.routed.set(routed);
    }

    pub fn routed(&self) -> Option<&Routed> {
        self.routed.get()
    }

    /// Whether the request is traced (tracing on), so span-only facts are worth noting.
    pub fn traced(&self) -> bool {
        matches!(self.propagation, Some(Propagation::Traced { .. }))
    }

    /// Counts one provider-call attempt (routing calls this before each).
    pub fn count_attempt(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
    }

    /// What a provider call made now carries: with tracing on, its `resend` is the number of
    /// attempts before the current one.
    pub fn call_propagation(&self) -> Option<Propagation> {
        match &self.propagation {
            None => None,
            Some(Propagation::Traced { parent, .. }) => Some(Propagation::Traced {
                parent: *parent,
                resend: self.attempts.load(Ordering::Relaxed).saturating_sub(1),
            }),
            Some(forward) => Some(forward.clone()),
        }
    }

    /// Notes one chunk of a streamed answer: the first sets the time to the first token; a
    /// chunk that carries `usage` sets the token counts.
    pub fn chunk(&self, chunk: &str) {
        if self.first_chunk.get().is_none() {
            let _ = self.first_chunk.set(self.started.elapsed());
        }
        // Only a chunk with a `"usage"` key is parsed again: inside a JSON string the quotes
        // would be escaped, so text mentioning usage does not match.
        // With tracing on, the first chunk is parsed too, for the answer's model.
        let model_wanted = self.traced() && self.response_model.get().is_none();
        if (model_wanted || chunk.contains("\"usage\""))
            && let Ok(serde_json::Value::Object(object)) = serde_json::from_str(chunk)
        {
            self.answer(&object);
        }
    }

    /// Notes one event of a streamed Anthropic Messages answer (the native path): the first
    /// sets the time to the first token; `message_start` carries the input tokens and each
    /// `message_delta` the output tokens so far.
    pub fn anthropic_event(&self, kind: &str, data: &str) {
        if self.first_chunk.get().is_none() {
            let _ = self.first_chunk.set(self.started.elapsed());
        }
        let pointer = match kind {
            "message_start" => "/message/usage",
            "message_delta" => "/usage",
            _ => return,
        };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(data) else {
            return;
        };
        let Some(usage) = event.pointer(pointer) else {
            return;
        };
        let count = |key: &str| usage.get(key).and_then(serde_json::Value::as_u64);
        if let Some(input) = count("input_tokens") {
            self.input_tokens.store(input, Ordering::Relaxed);
        }
        if let Some(output) = count("output_tokens") {
            self.output_tokens.store(output, Ordering::Relaxed);
            self.usage_seen.store(true, Ordering::Relaxed);
        }
    }

    /// Notes the `usage` of an answer object (a chat completion, a completion, embeddings),
    /// when it has one.
    pub fn answer(&self, answer: &serde_json::Map<String, serde_json::Value>) {
        if self.traced()
            && self.response_model.get().is_none()
            && let Some(serde_json::Value::String(model)) = answer.get("model")
        {
            let _ = self.response_model.set(model.clone());
        }
        let Some(serde_json::Value::Object(usage)) = answer.get("usage") else {
            return;
        };
        let count = |key: &str| usage.get(key).and_then(serde_json::Value::as_u64);
        let input = count("prompt_tokens").or_else(|| count("input_tokens"));
        let output = count("completion_tokens").or_else(|| count("output_tokens"));
        if input.is_none() && output.is_none() {
            return;
        }
        self.input_tokens
            .store(input.unwrap_or(0), Ordering::Relaxed);
        self.output_tokens
            .store(output.unwrap_or(0), Ordering::Relaxed);
        self.usage_seen.store(true, Ordering::Relaxed);
    }

    /// The `model` the answer named (recorded when tracing is on).
    pub fn response_model(&self) -> Option<&str> {
        self.response_model.get().map(String::as_str)
    }

    /// Time from arrival to the first streamed chunk; `None` for an answer not streamed.
    pub fn time_to_first_chunk(&self) -> Option<Duration> {
        self.first_chunk.get().copied()
    }

    /// The tokens reported, when an answer had a `usage`.
    pub fn tokens(&self) -> Option<Tokens> {
        self.usage_seen.load(Ordering::Relaxed).then(|| Tokens {
            input: self.input_tokens.load(Ordering::Relaxed),
            output: self.output_tokens.load(Ordering::Relaxed),
        })
    }

    /// The time the gateway added so far: elapsed minus the upstream time.
    pub fn added_time(&self, elapsed: Duration) -> Duration {
        elapsed.saturating_sub(self.upstream.waited())
    }
}

/// The record of the request whose handler is running on this task, if any.
pub fn current() -> Option<Arc<RequestRecord>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs `f` on the current record, if any, without taking a reference.
pub fn with_current(f: impl FnOnce(&RequestRecord)) {
    let _ = CURRENT.try_with(|record| f(record));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_comes_from_chat_answers_and_usage_chunks_only() {
        let record = RequestRecord::new(Instant::now());
        record.chunk(r#"{"choices":[{"delta":{"content":"the \"usage\" word"}}]}"#);
        assert!(record.time_to_first_chunk().is_some());
        assert_eq!(record.tokens(), None);
        record.chunk(r#"{"choices":[],"usage": {"prompt_tokens":7,"completion_tokens":3}}"#);
        assert_eq!(
            record.tokens(),
            Some(Tokens {
                input: 7,
                output: 3
            })
        );
        let other = RequestRecord::new(Instant::now());
        let answer = json!({"usage": {"input_tokens": 5, "output_tokens": 2}});
        other.answer(answer.as_object().unwrap());
        assert_eq!(
            other.tokens(),
            Some(Tokens {
                input: 5,
                output: 2
            })
        );
        assert_eq!(other.time_to_first_chunk(), None);
        other.answer(json!({"usage": null}).as_object().unwrap());
        assert!(other.tokens().is_some());
    }

    #[tokio::test]
    async fn the_current_record_is_the_scoped_one() {
        assert!(current().is_none());
        let record = Arc::new(RequestRecord::new(Instant::now()));
        let seen = record
            .clone()
            .scope(async { current().map(|r| r.started) })
            .await;
        assert_eq!(seen, Some(record.started));
    }
}
