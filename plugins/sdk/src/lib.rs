//! The guest SDK for ogx provider plugins.
//!
//! An ogx provider plugin is a WebAssembly component (built for `wasm32-wasip2`) that serves
//! one or more `provider_type`s of the ogx gateway. The host speaks to it through the WIT
//! package `ogx:provider@0.2.0`, which travels inside this crate (`wit/ogx-provider@0.2.0/`);
//! the crate's version follows it (0.2.x binds 0.2.0; the host still serves plugins built
//! against 0.1.0 by earlier versions of this crate). This crate hides that interface:
//! implement [`Provider`], register the type with [`export_provider!`], and build with
//! `cargo build --target wasm32-wasip2 --release` (or `cargo component build --release`).
//! `ogx plugins new NAME` writes a complete plugin crate to start from.
//!
//! What a plugin can use besides its own code:
//! - [`http`]: outbound HTTP through the host, with bearer or AWS SigV4 auth added by the host;
//! - [`config::env`]: the environment variables the plugin declared, and nothing else;
//! - [`kv`]: a small persistent store, namespaced per provider id;
//! - [`log`]: log lines tagged by the host with the provider and request ids.
//!
//! On the host target (`cargo test` without `--target`), those imports are served by the
//! fake host of the `testing` module (recorded HTTP answers, recorded requests), so provider
//! logic is tested natively, without wasm or a server.
//!
//! A complete plugin that answers every chat completion with the upstream's reply:
//!
//! ```no_run
//! use ogx_provider_sdk::http::Request;
//! use ogx_provider_sdk::{Context, Descriptor, Provider, ProviderError, Settings, Value};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     base_url: String,
//!     #[serde(default)]
//!     api_key: Option<String>,
//! }
//!
//! struct Example {
//!     config: Config,
//! }
//!
//! impl Provider for Example {
//!     type Config = Config;
//!
//!     fn describe() -> Descriptor {
//!         Descriptor {
//!             name: "example".into(),
//!             version: env!("CARGO_PKG_VERSION").into(),
//!             provider_types: vec!["remote::example".into()],
//!             outbound_hosts: vec!["*".into()],
//!             ..Descriptor::default()
//!         }
//!     }
//!
//!     fn init(settings: Settings<Config>) -> Result<Self, ProviderError> {
//!         Ok(Example { config: settings.config })
//!     }
//!
//!     fn chat_completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
//!         let mut call = Request::post(format!("{}/chat/completions", self.config.base_url))
//!             .json(&request)
//!             .timeout(ctx.time_left());
//!         if let Some(key) = &self.config.api_key {
//!             call = call.bearer(key.as_str());
//!         }
//!         call.send()?.error_for_status()?.json()
//!     }
//! }
//!
//! ogx_provider_sdk::export_provider!(Example);
//! ```
//!
//! with this `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "ogx-plugin-example"
//! version = "0.1.0"
//! edition = "2024"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! ogx-provider-sdk = "0.2"
//! serde = { version = "1", features = ["derive"] }
//!
//! # Only for `cargo component build` users; plain `cargo build` ignores it.
//! [package.metadata.component]
//! package = "ogx:plugin-example"
//! ```
//!
//! The host calls a fresh instance for every API request: `init`, then one operation. There is
//! therefore no state to share between requests except through [`kv`].

#![warn(missing_docs)]

mod context;
mod error;
#[doc(hidden)]
pub mod export;
mod provider;

pub mod config;
pub mod http;
pub mod kv;
pub mod log;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use context::Context;
pub use context::ModelTarget;
pub use error::{ProviderError, python_repr, upstream_error_message};
pub use provider::{
    ChunkStream, Descriptor, EventStream, Health, MessagesEvent, Model, ModelType,
    NativeOperations, Provider, Settings,
};
pub use serde_json::{Map, Value};

/// The raw bindings generated from the WIT package. Plugin authors use the curated API above;
/// this is public only so that [`export_provider!`] can reach it from the plugin's crate.
#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "wit/ogx-provider@0.2.0",
        world: "ogx:provider/plugin@0.2.0",
        pub_export_macro: true,
        export_macro_name: "__export_ogx_plugin",
        default_bindings_module: "ogx_provider_sdk::__bindings",
    });
}

/// Registers a [`Provider`] implementation as the plugin's `provider` export. Use it once, in
/// the plugin's crate root: `ogx_provider_sdk::export_provider!(MyProvider);`.
#[macro_export]
macro_rules! export_provider {
    ($provider:ty) => {
        #[doc(hidden)]
        type __OgxProviderExport = $crate::export::Export<$provider>;
        $crate::__bindings::__export_ogx_plugin!(__OgxProviderExport with_types_in $crate::__bindings);
    };
}
