//! The Responses API (`/v1/responses`) built on the providers' chat completions, so every
//! provider plugin serves it without code of its own.
//!
//! The pieces, in the order a request meets them:
//! - [`request`]: reads and checks a create-response body (JSON or form-encoded) and refuses
//!   what cannot be served (built-in tools that run on the server) with a 400 naming it;
//! - [`convert`]: input items ⇄ chat messages, tools, `tool_choice` and `text.format` ⇄ the
//!   chat-completions request;
//! - [`events`]: turns the provider's chat-completion chunks into OpenAI's streaming events and
//!   the final Response object ([`object`]).
//!
//! Every request is served from the provider's chat-completion *stream*; a non-streaming
//! request drains the same events and answers the final Response, so both paths build output
//! the same way. One chat call per response: the model's function calls end the response
//! (the client runs them and sends `function_call_output` with `previous_response_id`).
//!
//! **Failures** are [`ResponsesError`]s: `Invalid` (400) for a request that cannot be served,
//! `NotFound` (404) for an unknown response. The server maps them to HTTP.

pub mod convert;
pub mod events;
pub mod object;
pub mod request;

/// Why a Responses request cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponsesError {
    /// The request is malformed or asks for something ogx does not do (400).
    #[error("{0}")]
    Invalid(String),
    /// The named response does not exist (404).
    #[error("{0}")]
    NotFound(String),
}

impl ResponsesError {
    /// OGX's message for an unknown response id.
    pub fn response_not_found(id: &str) -> Self {
        ResponsesError::NotFound(format!(
            "Response '{id}' not found. Use 'client.responses.list()' to list available Responses."
        ))
    }
}

/// A 400 naming a field and what is wrong with it.
pub(crate) fn invalid(field: &str, problem: &str) -> ResponsesError {
    ResponsesError::Invalid(format!("Invalid request body: '{field}' {problem}."))
}

/// A new id with OpenAI's prefixes (`resp`, `msg`, `fc`, `rs`): the prefix, `_`, 32 hex digits.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
