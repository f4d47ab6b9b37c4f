//! Log lines, written by the host's logger with the provider id and request id attached (in
//! native tests, kept by the [`crate::testing`] fake host).
//!
//! Never log secrets (API keys, provider data): the host cannot tell them apart.

use crate::__bindings::ogx::provider::logging::Level;

fn write(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::__bindings::ogx::provider::logging::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::log(
        match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        },
        message,
    );
}

/// Writes a `trace` line.
pub fn trace(message: &str) {
    write(Level::Trace, message);
}

/// Writes a `debug` line.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes an `info` line.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes a `warn` line.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes an `error` line.
pub fn error(message: &str) {
    write(Level::Error, message);
}
