//! Log lines, written by the host's logger with the provider id and request id attached.
//!
//! Never log secrets (API keys, provider data): the host cannot tell them apart.

use crate::__bindings::ogx::provider::logging::{self as wit, Level};

/// Writes a `trace` line.
pub fn trace(message: &str) {
    wit::log(Level::Trace, message);
}

/// Writes a `debug` line.
pub fn debug(message: &str) {
    wit::log(Level::Debug, message);
}

/// Writes an `info` line.
pub fn info(message: &str) {
    wit::log(Level::Info, message);
}

/// Writes a `warn` line.
pub fn warn(message: &str) {
    wit::log(Level::Warn, message);
}

/// Writes an `error` line.
pub fn error(message: &str) {
    wit::log(Level::Error, message);
}
