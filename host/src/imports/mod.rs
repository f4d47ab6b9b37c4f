//! The host functions offered to plugins, one file per WIT import. Each says what it
//! provides, what it refuses, and its limits.
//!
//! - [`http`]: `outbound-http`, the egress policy and the pooled client.
//! - [`config`]: `config`, the declared environment variables.
//! - [`logging`]: `logging`, and the plugin's stdout/stderr.
//! - [`kv`]: `kv`, the per-provider key-value store.
//!
//! These modules use host-native types only; the runtime's bindings translate the WIT
//! types to and from them.

pub mod aws;
pub mod config;
pub mod http;
pub mod kv;
pub mod logging;
