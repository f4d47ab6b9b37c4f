//! Finding plugins: the search path, staged validation with errors that name the file and
//! the fix, and the index by provider type.

use std::path::PathBuf;

/// Every `.wasm` file found on the search path, loaded or not.
pub struct PluginCatalog {
    pub entries: Vec<PluginEntry>,
}

/// One `.wasm` file and what became of it.
pub struct PluginEntry {
    pub path: PathBuf,
    /// The provider types it serves, or why it could not be loaded.
    pub outcome: Result<super::Descriptor, PluginLoadError>,
}

/// Why a plugin could not be loaded or bound to a provider. `Display` names the file (and
/// the provider id where there is one) and says how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum PluginLoadError {
    #[error("{0}")]
    Message(String),
}
