//! The wasmtime engine shared by all plugins: pooling allocator, epoch interruption with a
//! ticker, and the linker with the host imports.

use super::{PluginCatalog, Provider, RuntimeLimits};
use std::path::PathBuf;
use std::sync::Arc;

/// The engine, its linker and the plugins found.
pub struct PluginRuntime {
    // Filled in by the runtime implementation.
}

/// Where and how the runtime looks for and caches plugins.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Directories searched in order (see `discovery::search_path`).
    pub search_path: Vec<PathBuf>,
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    pub limits: RuntimeLimits,
}

impl PluginRuntime {
    /// Builds the engine and loads every plugin on the search path. Plugins that fail to load
    /// are kept in the catalog with their error; only a broken engine is an `Err`.
    pub fn start(options: RuntimeOptions) -> anyhow::Result<Self> {
        let _ = options;
        todo!()
    }
    /// The plugins found, loaded or not, for `ogx plugins list` and start-up output.
    pub fn catalog(&self) -> &PluginCatalog {
        todo!()
    }
    /// Binds a config entry to the plugin serving its type. The error says which file,
    /// which provider id and what to do.
    pub fn provider(
        &self,
        provider_id: &str,
        provider_type: &str,
        config: &serde_json::Value,
    ) -> Result<Arc<Provider>, super::PluginLoadError> {
        let _ = (provider_id, provider_type, config);
        todo!()
    }
}
