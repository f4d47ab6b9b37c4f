//! A configured provider: one `providers.inference` entry of the run config bound to the
//! plugin that serves its `provider_type`. Every call creates a fresh instance, runs `init`
//! with the entry's settings, then the operation, under the runtime's limits.

use super::{CallContext, CallError, Descriptor, Health, ListedModel};
use futures::Stream;
use std::pin::Pin;

/// The chunks of a streamed answer, each an OpenAI chunk object as JSON. The instance lives
/// as long as the stream; dropping the stream drops the instance and the upstream request.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<String, CallError>> + Send + 'static>>;

/// A provider entry of the config, ready to serve calls.
pub struct Provider {
    // Filled in by the runtime implementation.
}

impl Provider {
    /// The `provider_id` of the config entry.
    pub fn id(&self) -> &str {
        todo!()
    }
    /// The `provider_type` of the config entry.
    pub fn provider_type(&self) -> &str {
        todo!()
    }
    /// The plugin's self-description.
    pub fn descriptor(&self) -> &Descriptor {
        todo!()
    }
    /// Path of the plugin's `.wasm` file.
    pub fn plugin_path(&self) -> &std::path::Path {
        todo!()
    }
    /// Runs `init` once, to fail at start-up on a config the plugin rejects.
    pub async fn check_config(&self) -> Result<(), CallError> {
        todo!()
    }
    pub async fn list_models(&self, ctx: CallContext) -> Result<Vec<ListedModel>, CallError> {
        let _ = ctx;
        todo!()
    }
    pub async fn chat_completion(&self, ctx: CallContext, body: String) -> Result<String, CallError> {
        let _ = (ctx, body);
        todo!()
    }
    pub async fn chat_completion_stream(&self, ctx: CallContext, body: String) -> Result<ChunkStream, CallError> {
        let _ = (ctx, body);
        todo!()
    }
    pub async fn completion(&self, ctx: CallContext, body: String) -> Result<String, CallError> {
        let _ = (ctx, body);
        todo!()
    }
    pub async fn completion_stream(&self, ctx: CallContext, body: String) -> Result<ChunkStream, CallError> {
        let _ = (ctx, body);
        todo!()
    }
    pub async fn embeddings(&self, ctx: CallContext, body: String) -> Result<String, CallError> {
        let _ = (ctx, body);
        todo!()
    }
    pub async fn health(&self, ctx: CallContext) -> Result<Health, CallError> {
        let _ = ctx;
        todo!()
    }
}
