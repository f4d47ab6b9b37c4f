//! The WebAssembly runtime: one wasmtime engine, the plugins found on the search path, and a
//! fresh sandboxed instance for every call.
//!
//! This is the only module that touches wasmtime. It hands the rest of the host plain Rust
//! types: [`Provider`] (a configured provider backed by a plugin), [`CallContext`],
//! [`ProviderError`] (the plugin's typed error) and [`CallError`] (everything that can go
//! wrong around a call), whatever interface version a plugin was built against (`bindings`).
//!
//! Stages: `engine` builds the engine and the linker; `loading` finds (`discovery`), compiles
//! (`cache`) and checks the plugins; `provider_setup` gives a configured provider its host
//! imports; `provider` and `instance` run each call in a fresh instance. A trap, a blown memory limit or a timeout fails that one call with a
//! [`CallError`]; the instance is discarded and nothing else is affected.

pub mod bindings;
pub mod cache;
pub mod discovery;
pub mod engine;
mod host_imports;
pub mod instance;
pub mod limits;
pub mod loading;
pub mod provider;
mod provider_setup;
pub mod rescan;
#[cfg(test)]
mod tests;

pub use bindings::InterfaceVersion;
pub use cache::CacheOutcome;
pub use discovery::{PluginCatalog, PluginEntry, PluginLoadError};
pub use limits::{LimitOverrides, RuntimeLimits};
pub use loading::{PluginFile, PluginRuntime, RuntimeOptions};
pub use provider::{ChunkStream, EventStream, NativeOperation, Provider};
pub use rescan::PluginChange;

use std::time::Duration;

/// Facts about the API request a provider call serves.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    /// Id given to the API request; attached to the plugin's log lines.
    pub request_id: String,
    /// The request's `x-ogx-provider-data` header, already checked to be a JSON object.
    pub provider_data: Option<String>,
    /// Time the call may take; `None` for the runtime's default call timeout.
    pub timeout: Option<Duration>,
    /// The model the request names, passed to plugins built against 0.2.0 and later; `None`
    /// for calls that serve no model (listing, health) or when the caller did not say.
    pub model: Option<ModelTarget>,
    /// The API request's clock of upstream time, which the call's outbound exchanges add to;
    /// `None` when nobody measures.
    pub upstream_clock: Option<std::sync::Arc<crate::imports::http::UpstreamClock>>,
    /// The trace context the call's spans and outbound exchanges carry; `None` when there is
    /// none (tracing off and no client `traceparent`).
    pub trace: Option<crate::telemetry::trace::Propagation>,
}

/// The model a call serves, as the registry resolved it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelTarget {
    /// The id the client sent.
    pub id: String,
    /// The id sent upstream.
    pub provider_model_id: String,
    /// The registered model's `metadata` (empty when unregistered or without metadata).
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl ModelTarget {
    /// The metadata as the WIT passes it: a JSON object, `None` when empty.
    pub(crate) fn metadata_json(&self) -> Option<String> {
        (!self.metadata.is_empty())
            .then(|| serde_json::Value::Object(self.metadata.clone()).to_string())
    }
}

/// A 429 from a plugin: its message and, when the upstream said, how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub message: String,
    /// From the upstream's `Retry-After` or throttling hints; `None` when unknown.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for RateLimit {
    fn from(message: String) -> Self {
        RateLimit {
            message,
            retry_after: None,
        }
    }
}

impl From<&str> for RateLimit {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

/// One event of a native Anthropic Messages stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagesEvent {
    /// The SSE `event:` name, e.g. `content_block_delta`.
    pub event_type: String,
    /// Its JSON object.
    pub data: String,
}

/// The typed error a plugin returned (the WIT `provider-error`), in host types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    RateLimited(RateLimit),
    /// `headers` are the upstream's response headers the plugin passed on (lower-case names);
    /// the server forwards only those it knows to be safe.
    #[error("{message}")]
    Upstream {
        status: u16,
        message: String,
        headers: Vec<(String, String)>,
    },
    #[error("{0}")]
    BadGateway(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Internal(String),
}

/// Everything that can make a provider call fail.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin answered with an error.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The plugin trapped (a bug in the plugin, or it exceeded its memory limit or CPU budget).
    /// `plugin` names the `.wasm` file; `detail` is for the log, not for the client.
    #[error("provider plugin {plugin} failed: {detail}")]
    Trap { plugin: String, detail: String },
    /// The call did not finish within its time limit.
    #[error("provider call timed out after {0:?}")]
    Timeout(Duration),
    /// No instance could be created (for example, every pooled slot is busy).
    #[error("could not start a provider instance: {0}")]
    Unavailable(String),
}

/// A model reported by a provider's `list-models`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedModel {
    /// The upstream id.
    pub id: String,
    /// `llm`, `embedding` or `rerank`.
    pub model_type: String,
    /// Extra metadata (a JSON object) for `custom_metadata`.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The result of a provider's `health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `OK`, `Error` or `Not Implemented`, as OGX reports it.
    pub status: &'static str,
    pub message: Option<String>,
}

/// What a plugin says about itself in `describe`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub name: String,
    pub version: String,
    pub provider_types: Vec<String>,
    pub outbound_hosts: Vec<String>,
    pub env_vars: Vec<String>,
    pub secret_config_keys: Vec<String>,
    /// The interface version the plugin was built against.
    pub interface: InterfaceVersion,
    /// Whether it serves Anthropic's Messages API natively (else the host translates).
    pub native_messages: bool,
    /// Whether it counts tokens natively (else the host estimates).
    pub native_count_tokens: bool,
}
