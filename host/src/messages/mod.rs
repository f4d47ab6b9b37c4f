//! The Anthropic Messages API (`/v1/messages`, `/v1/messages/count_tokens`) on every provider,
//! so that the Anthropic SDKs and Claude Code work through ogx.
//!
//! The pieces, in the order a request meets them:
//! - [`request`]: reads and checks a create-message (or count-tokens) body;
//! - [`convert`]: Anthropic messages, system, tools, `tool_choice`, `thinking` and sampling
//!   settings → one chat-completions request for the model's provider;
//! - [`events`]: the provider's chat-completion chunks (or its whole completion) → Anthropic's
//!   streaming events and the final Message object;
//! - [`tokens`]: the token estimate `count_tokens` answers while no provider counts natively.
//!
//! **Paths.** How a provider serves Messages is a [`MessagesPath`]. A provider whose plugin
//! lists the native `messages` operation (plugin interface 0.2.0) takes
//! [`MessagesPath::Native`]: the body goes to the plugin as Anthropic's and its Anthropic
//! answer comes back untouched (OGX 1.5.0's passthrough for Anthropic, DeepSeek, Fireworks,
//! Meta, Ollama and vLLM). Every other provider, and one whose plugin declines the operation
//! for its type or model, takes [`MessagesPath::Translated`]: the host translates to and from the
//! provider's chat completions, as it does for the Responses API. [`MessagesPath::of`] is
//! where that choice is made.
//!
//! **Failures** are [`MessagesError`]s (400 for a request that cannot be served, 413 for a body
//! over the limit, 404 when the API is not enabled, 501 for routes not served yet); the server
//! maps them, like every error, to Anthropic's error shape in `server::errors`.

pub mod convert;
pub mod events;
pub mod request;
pub mod tokens;

use crate::runtime::{NativeOperation, Provider};

/// The `anthropic-version` every answer carries (the one version Anthropic's API has).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Why a Messages request cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagesError {
    /// The request is malformed or asks for something that cannot be translated (400).
    #[error("{0}")]
    Invalid(String),
    /// The body is larger than the server accepts (413).
    #[error("{0}")]
    TooLarge(String),
    /// The Messages API is not enabled in the run config (404).
    #[error("{0}")]
    NotEnabled(String),
    /// A Messages route ogx does not serve yet (501).
    #[error("{0}")]
    NotServed(String),
}

/// A 400 naming a field by Anthropic's path (`messages.0.content.1.type`) and what is wrong.
pub(crate) fn invalid(path: &str, problem: &str) -> MessagesError {
    MessagesError::Invalid(format!("{path}: {problem}"))
}

/// How a provider serves the Messages API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagesPath {
    /// The host translates the request to the provider's chat completions and the answer back.
    Translated,
    /// The plugin serves Anthropic's Messages API itself.
    Native,
}

impl MessagesPath {
    /// The path `provider` takes for the upstream model `model`: native when its plugin
    /// lists the operation and has not declined it for this provider and model.
    pub fn of(provider: &Provider, model: &str) -> Self {
        if provider.serves_native(NativeOperation::Messages, model) {
            MessagesPath::Native
        } else {
            MessagesPath::Translated
        }
    }
}

/// A new id with an Anthropic prefix (`msg`, `toolu`): the prefix, `_`, 24 hex digits.
pub fn new_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..24])
}
