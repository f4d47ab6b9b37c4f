//! ogx: an OpenAI-compatible model gateway whose provider adapters are WebAssembly components.
//!
//! Data flows one way: [`server`] parses and routes an API request, [`registry`] resolves the
//! model to a provider, [`runtime`] runs that provider's plugin in a fresh sandboxed instance,
//! and the plugin reaches upstreams only through the host functions in [`imports`]. The
//! server records chat completions in [`storage`]. [`responses`] and [`messages`] serve the
//! Responses and Anthropic Messages APIs on top of the providers' chat completions. [`secrets`]
//! scrubs every secret the host knows from the bodies, headers and log lines that leave it.
//! [`telemetry`] holds what every layer records for operators (metrics, the per-request record,
//! the log's format).
//! [`gateway_keys`] issues API keys and enforces their model access, limits and budgets.

pub mod auth;
pub mod authoring;
pub mod calendar;
pub mod cli;
pub mod config;
pub mod environment;
pub mod gateway_keys;
pub mod imports;
pub mod messages;
pub mod quota;
pub mod registry;
pub mod reload;
pub mod responses;
pub mod routing;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod serving_threads;
pub mod storage;
pub mod stream_event;
pub mod telemetry;
