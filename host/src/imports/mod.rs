//! The host functions offered to plugins, one file per WIT import. Each says what it
//! provides, what it refuses, and its limits.
//!
//! - [`http`]: `outbound-http`, the egress policy and the pooled client.
//! - [`aws`]: the AWS identity behind `outbound-http`'s `aws-sigv4` auth: credential sources,
//!   STS, the process-wide credential cache, and the SigV4 signer. It serves only `http`, which
//!   knows it through one trait ([`http::RequestSigner`]) and never the other way round; it is
//!   beside `http` rather than inside it because it is a cloud identity, not HTTP (its own
//!   config parsing, STS client, cache, and tests against botocore and moto), and the first of
//!   several (the Google, Azure, IBM Cloud and OCI identities of
//!   interface 0.2.0's `auth` sources join it here as siblings, each plugged into `http` the
//!   same way).
//! - [`oci`]: the OCI identity behind `oci-signature` auth: config-file profiles and the
//!   request signature, plugged into `http` through [`http::OciRequestSigner`].
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
pub mod oci;
