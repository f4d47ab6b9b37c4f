//! Typed views of the run-config keys ogx acts on. They are built by [`super::validate`] from the
//! substituted document and are always valid: every rule OGX enforces at start-up (and the ones
//! ogx adds, such as refusing `module:` providers) has been checked before one exists.
//! Keys ogx does not act on stay only in `LoadedConfig::document`.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use super::storage::{
    Backend, InferenceStoreRef, KvStoreRef, SqlStoreRef, StorageConfig, StoreRef, StoresConfig,
};

/// Every API name OGX 1.5.0 knows (`Api` in `src/ogx_api/datatypes.py`), in OGX's order. An
/// `apis` entry or a `providers` key outside this list is an error, as in OGX.
pub const KNOWN_APIS: &[&str] = &[
    "providers",
    "inference",
    "responses",
    "batches",
    "vector_io",
    "tool_runtime",
    "container_runtime",
    "models",
    "vector_stores",
    "tool_groups",
    "files",
    "file_processors",
    "prompts",
    "conversations",
    "connectors",
    "containers",
    "messages",
    "interactions",
    "skills",
    "inspect",
    "admin",
];

/// API names OGX 1.0 removed: a config naming one in `apis` or `providers` fails in OGX 1.5.0
/// too, and the message says so.
pub const REMOVED_APIS: &[&str] = &["safety", "shields"];

/// APIs whose providers OGX creates itself; a `providers` key naming one is an error.
pub const ROUTING_TABLE_APIS: &[&str] = &["models", "vector_stores", "tool_groups"];

/// APIs served by OGX's core without providers (`INTERNAL_APIS`); a `providers` key naming one
/// is an error (OGX crashes on it).
pub const INTERNAL_APIS: &[&str] = &[
    "inspect",
    "providers",
    "prompts",
    "conversations",
    "connectors",
    "admin",
    "containers",
];

/// APIs ogx serves today. Other known APIs are accepted in a config and warned about.
pub const SERVED_APIS: &[&str] = &[
    "inference",
    "models",
    "providers",
    "inspect",
    "responses",
    "prompts",
    "messages",
];

/// The run config.
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    /// `distro_name`, or `image_name` when only that is given; cast to text.
    pub distro_name: String,
    /// `container_image`: informational only.
    pub container_image: Option<String>,
    /// `apis`: what to serve; `None` (absent or null) means every API ogx serves, as in OGX.
    pub apis: Option<Vec<String>>,
    /// Enabled providers per API, in config order.
    pub providers: BTreeMap<String, Vec<ProviderEntry>>,
    /// `registered_resources.models`, in config order, disabled entries removed, provider
    /// resolved.
    pub models: Vec<ModelEntry>,
    pub server: ServerConfig,
    pub storage: StorageConfig,
    /// ogx's own `plugins:` section.
    pub plugins: PluginsConfig,
    /// `providers.responses`: the Responses API, when enabled.
    pub responses: Option<super::responses::ResponsesConfig>,
    /// `providers.messages`: the Anthropic Messages API, when enabled.
    pub messages: Option<super::messages::MessagesConfig>,
    /// ogx's own `gateway_keys:` section, when present.
    pub gateway_keys: Option<super::gateway_keys::GatewayKeysConfig>,
    /// ogx's `routing:` block: retries, limits and multi-target models.
    pub routing: crate::routing::config::RoutingConfig,
}

impl RunConfig {
    /// The enabled inference providers, in config order.
    pub fn inference_providers(&self) -> &[ProviderEntry] {
        self.providers.get("inference").map_or(&[], Vec::as_slice)
    }
}

/// One enabled provider entry.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    pub provider_id: String,
    /// e.g. `remote::bedrock`; which plugin serves it is the runtime's business.
    pub provider_type: String,
    /// The `config:` block after substitution (secrets included); `{}` when absent.
    pub config: serde_json::Value,
    /// What of `config.network` the host's outbound HTTP applies.
    pub network: super::network::NetworkSettings,
}

/// One `registered_resources.models` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelEntry {
    pub model_id: String,
    /// An enabled inference provider's id (checked).
    pub provider_id: String,
    /// The model's name upstream. Defaults to `model_id`. `auto` (OGX: the provider's first model
    /// of this type) is passed through for the registry to resolve.
    pub provider_model_id: String,
    /// `llm`, `embedding` or `rerank`; defaults to `llm`.
    pub model_type: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `provider_id: all` in the config: registered on the first inference provider under the
    /// bare `model_id`, without the provider prefix.
    pub unprefixed_alias: bool,
}

impl ModelEntry {
    /// The id clients use: `model_id` when it already starts with `provider_id/` (or the entry is
    /// an unprefixed alias), else `provider_id/model_id`. OGX builds it from `model_id`, never
    /// from `provider_model_id` (its docs say otherwise; its code and tests do not).
    pub fn identifier(&self) -> String {
        if self.unprefixed_alias || self.model_id.starts_with(&format!("{}/", self.provider_id)) {
            self.model_id.clone()
        } else {
            format!("{}/{}", self.provider_id, self.model_id)
        }
    }
}

/// `server:`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// 1024–65535, default 8321. OGX's CLI lets `--port`/`$OGX_PORT` win over it.
    pub port: u16,
    /// `None`: all interfaces.
    pub host: Option<String>,
    /// Set only together with `tls_keyfile` (checked). Paths are as written (relative to the
    /// working directory, as in OGX).
    pub tls_certfile: Option<PathBuf>,
    pub tls_keyfile: Option<PathBuf>,
    /// Client certificates are required when set (mTLS); ignored without TLS.
    pub tls_cafile: Option<PathBuf>,
    /// Default 1.
    pub workers: u32,
    /// Default 300, > 0.
    pub registry_refresh_interval_seconds: u64,
    /// `server.auth` after substitution, not yet typed. Its `provider_config` is null (auth off)
    /// when `provider_config.type` resolved to null or `""`.
    pub auth: Option<serde_json::Value>,
    pub quota: Option<QuotaConfig>,
    /// `server.tenancy` after substitution, not yet typed (read by `auth::config`).
    pub tenancy: Option<serde_json::Value>,
    /// `cors: true` is already expanded to OGX's localhost development settings.
    pub cors: Option<CorsConfig>,
    /// OGX 1.5.0's `insecure`: allow plain HTTP. ogx serves plain HTTP without TLS files either
    /// way; read so that `--insecure` and this key mean the same.
    pub insecure: bool,
    /// `server.metrics`: Prometheus metrics at `GET /metrics`.
    pub metrics: MetricsConfig,
    /// `server.tracing`: OpenTelemetry traces over OTLP.
    pub tracing: TracingConfig,
}

/// `server.tracing` (see `config/traces.rs`).
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// The full OTLP/HTTP traces URL; `None` exports nothing unless `OTEL_*` variables ask.
    pub endpoint: Option<String>,
    /// Headers sent with every export (may hold secrets).
    pub headers: Vec<(String, String)>,
    /// Share of new traces recorded (default 1).
    pub sample_ratio: f64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            endpoint: None,
            headers: Vec::new(),
            sample_ratio: 1.0,
        }
    }
}

/// `server.metrics` (see `config/metrics.rs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Default false; `OGX_METRICS=1` turns metrics on as well.
    pub enabled: bool,
    /// Serve `/metrics` on this port instead of the API port.
    pub port: Option<u16>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            port: DEFAULT_PORT,
            host: None,
            tls_certfile: None,
            tls_keyfile: None,
            tls_cafile: None,
            workers: 1,
            registry_refresh_interval_seconds: 300,
            auth: None,
            quota: None,
            tenancy: None,
            cors: None,
            insecure: false,
            metrics: MetricsConfig::default(),
            tracing: TracingConfig::default(),
        }
    }
}

/// OGX's default port.
pub const DEFAULT_PORT: u16 = 8321;

impl ServerConfig {
    /// The certificate and key, when HTTPS is on.
    pub fn tls_files(&self) -> Option<(&PathBuf, &PathBuf)> {
        self.tls_certfile.as_ref().zip(self.tls_keyfile.as_ref())
    }
}

/// `server.quota`: per-client request limits.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaConfig {
    pub kvstore: KvStoreRef,
    /// Default 100 per period.
    pub anonymous_max_requests: u64,
    /// Default 1000 per period.
    pub authenticated_max_requests: u64,
    /// Only `day` exists.
    pub period: String,
}

/// `server.cors` (OGX's `CORSConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct CorsConfig {
    pub allow_origins: Vec<String>,
    pub allow_origin_regex: Option<String>,
    /// Default `["OPTIONS"]`.
    pub allow_methods: Vec<String>,
    pub allow_headers: Vec<String>,
    pub allow_credentials: bool,
    pub expose_headers: Vec<String>,
    /// Default 600.
    pub max_age: u64,
}

impl CorsConfig {
    /// What `cors: true` means in OGX: any localhost origin, the usual methods and headers.
    pub fn localhost_development() -> Self {
        Self {
            allow_origins: Vec::new(),
            allow_origin_regex: Some(r"https?://localhost:\d+".into()),
            allow_methods: ["GET", "POST", "PUT", "DELETE", "OPTIONS"]
                .map(String::from)
                .to_vec(),
            allow_headers: ["Content-Type", "Authorization", "X-Requested-With"]
                .map(String::from)
                .to_vec(),
            allow_credentials: false,
            expose_headers: Vec::new(),
            max_age: 600,
        }
    }
}

/// ogx's own top-level `plugins:` section (OGX has none; it is not warned about).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginsConfig {
    /// Extra directories searched for plugin components, resolved against the config file's
    /// directory.
    pub dirs: Vec<PathBuf>,
    /// Where compiled components are cached, resolved against the config file's directory.
    pub cache_dir: Option<PathBuf>,
    pub limits: PluginLimits,
    /// `plugins.policy`: the operator's sandbox policy, global and per provider.
    pub policy: super::plugin_policy::PluginPolicy,
}

/// Overrides of the runtime's named limits; `None` keeps the runtime's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginLimits {
    pub memory_mb: Option<u64>,
    pub call_timeout_ms: Option<u64>,
    pub stream_idle_timeout_ms: Option<u64>,
    pub max_instances: Option<u32>,
}
