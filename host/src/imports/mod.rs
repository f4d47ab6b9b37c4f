//! The host functions offered to plugins, one file per WIT import. Each says what it
//! provides, what it refuses, and its limits.

pub mod aws;
pub mod config;
pub mod http;
pub mod kv;
pub mod logging;
