//! Typed views of the run-config keys ogx acts on.

use std::collections::BTreeMap;

/// The run config.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub distro_name: String,
    pub apis: Vec<String>,
    /// Enabled providers per API, in config order.
    pub providers: BTreeMap<String, Vec<ProviderEntry>>,
    /// `registered_resources.models`, in config order, disabled entries removed.
    pub models: Vec<ModelEntry>,
}

/// One enabled provider entry.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    pub provider_id: String,
    pub provider_type: String,
    /// The `config:` block after substitution (secrets included).
    pub config: serde_json::Value,
}

/// One `registered_resources.models` entry.
#[derive(Debug, Clone)]
pub struct ModelEntry {
    pub model_id: String,
    pub provider_id: String,
    /// Defaults to `model_id`.
    pub provider_model_id: String,
    pub model_type: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}
