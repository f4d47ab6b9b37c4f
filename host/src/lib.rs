//! ogx: an OpenAI-compatible model gateway whose provider adapters are WebAssembly components.
//!
//! Data flows one way: [`server`] parses and routes an API request, [`registry`] resolves the
//! model to a provider, [`runtime`] runs that provider's plugin in a fresh sandboxed instance,
//! and the plugin reaches upstreams only through the host functions in [`imports`]. The
//! server records chat completions in [`storage`]. [`responses`] and [`messages`] serve the
//! Responses and Anthropic Messages APIs on top of the providers' chat completions.

pub mod auth;
pub mod cli;
pub mod config;
pub mod environment;
pub mod imports;
pub mod messages;
pub mod registry;
pub mod reload;
pub mod responses;
pub mod runtime;
pub mod server;
pub mod serving_threads;
pub mod storage;
pub mod stream_event;
