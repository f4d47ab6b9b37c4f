//! What a plugin knows about the API request it serves.
//!
//! A fresh plugin instance serves every request, so a [`Context`] never outlives one request.
//! Per-request credentials (`x-ogx-provider-data`) live only here: never log them.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

/// The model a request names, as the host resolved it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelTarget {
    /// The id the client sent, e.g. `bedrock/us.anthropic.claude-sonnet-4`.
    pub id: String,
    /// The id to send upstream (the SDK has already put it in the request's `model`).
    pub provider_model_id: String,
    /// The registered model's `metadata` (empty when unregistered or without metadata), e.g.
    /// to choose an upstream API per model.
    pub metadata: Map<String, Value>,
}

/// Facts about the API request being served: its id, the caller's `x-ogx-provider-data`,
/// the time left, which provider entry serves it, and the model it names.
#[derive(Debug, Clone)]
pub struct Context {
    request_id: String,
    provider_data: Option<Map<String, Value>>,
    deadline: Instant,
    provider_id: String,
    provider_type: String,
    model: Option<ModelTarget>,
}

impl Context {
    /// A context built by hand, for tests and for code that runs outside a host call.
    /// `provider_data` is the `x-ogx-provider-data` object, if any.
    pub fn new(
        request_id: impl Into<String>,
        provider_data: Option<Map<String, Value>>,
        time_left: Duration,
        provider_id: impl Into<String>,
        provider_type: impl Into<String>,
    ) -> Self {
        Context {
            request_id: request_id.into(),
            provider_data,
            deadline: Instant::now() + time_left,
            provider_id: provider_id.into(),
            provider_type: provider_type.into(),
            model: None,
        }
    }

    /// The same context serving `model` (for tests; the host sets it for every request that
    /// names a model).
    pub fn with_model(mut self, model: ModelTarget) -> Self {
        self.model = Some(model);
        self
    }

    /// Builds a context from the host's raw fields. `provider_data_json` that is not a JSON
    /// object counts as absent (the host already guarantees an object); so does model
    /// metadata that is not an object.
    pub(crate) fn from_host(
        request_id: String,
        provider_data_json: Option<String>,
        deadline_ms: u64,
        provider_id: &str,
        provider_type: &str,
    ) -> Self {
        let provider_data = provider_data_json.and_then(|json| Context::json_object(&json));
        Context::new(
            request_id,
            provider_data,
            Duration::from_millis(deadline_ms),
            provider_id,
            provider_type,
        )
    }

    /// The id the host gave the request; the host adds it to every log line itself.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The request's `x-ogx-provider-data` header as a JSON object, or `None` when the header
    /// was absent or not an object. May hold the caller's own credentials: do not log it.
    pub fn provider_data(&self) -> Option<&Map<String, Value>> {
        self.provider_data.as_ref()
    }

    /// The provider-data value under `key` when it is a string that is not blank, trimmed.
    /// This is how OGX treats per-request keys: a blank value counts as absent.
    pub fn provider_data_str(&self, key: &str) -> Option<&str> {
        match self.provider_data.as_ref()?.get(key)? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim()),
            _ => None,
        }
    }

    /// When the host abandons the call; nothing is gained by waiting past it.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Time left before [`Context::deadline`] (zero once it has passed).
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The `provider_id` of the config entry serving the request, e.g. `vllm-local`.
    pub fn provider_id(&self) -> &str {
        &self.provider_id
    }

    /// The `provider_type` of the config entry serving the request, e.g. `remote::vllm`.
    pub fn provider_type(&self) -> &str {
        &self.provider_type
    }

    /// The model the request names; `None` for calls that name none (model listing, health)
    /// and from hosts older than interface 0.2.0.
    pub fn model(&self) -> Option<&ModelTarget> {
        self.model.as_ref()
    }

    /// A JSON object from the host (provider data, model metadata); anything else is absent.
    pub(crate) fn json_object(json: &str) -> Option<Map<String, Value>> {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_data_strings_are_trimmed_and_blank_is_absent() {
        let ctx = Context::from_host(
            "r1".into(),
            Some(r#"{"a":" key ","b":"  ","c":3}"#.into()),
            1000,
            "p",
            "t",
        );
        assert_eq!(ctx.provider_data_str("a"), Some("key"));
        assert_eq!(ctx.provider_data_str("b"), None);
        assert_eq!(ctx.provider_data_str("c"), None);
        assert_eq!(ctx.provider_data_str("d"), None);
    }

    #[test]
    fn provider_data_that_is_not_an_object_is_absent() {
        for json in ["[1]", "null", "not json"] {
            let ctx = Context::from_host("r".into(), Some(json.into()), 0, "p", "t");
            assert!(ctx.provider_data().is_none(), "{json}");
        }
    }
}
