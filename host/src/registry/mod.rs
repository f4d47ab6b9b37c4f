//! The providers and models the server routes to.
//!
//! Models come from two places: `registered_resources.models` in the config and the providers'
//! own listings. A request names a model by its identifier (`<provider_id>/<model_id>`), or by
//! `<provider_id>/<anything>`, which OGX routes to that provider with `<anything>` sent
//! upstream. Listing runs in the background: a provider whose upstream is down is logged and
//! never blocks start-up.
//!
//! **Aliases** ([`aliases`]): `provider_id: all` and `provider_model_id: auto` are resolved
//! against the served providers first, as OGX 1.5.0 does.
//!
//! **Persistence** ([`Registry::open`], [`persisted`]), as OGX does it: every model is kept in the `metadata`
//! store ([`RegistryStore`]). At start-up the stored models are loaded, then the config's are
//! registered: a new identifier is stored; the same identifier with the same fields is kept
//! (with its first registration time); different fields stop start-up with OGX's "already
//! exists with conflicting field values" message. A model removed from the config stays
//! registered and routable. Listed models are stored too, and each listing replaces that
//! provider's listed models (stale ones are removed). Stored models of a provider that is no
//! longer configured stay in the store but are not served. Order of `/v1/models`: the config's
//! models in config order, then other registered ones, then listed ones per provider in
//! config order. A failed write after start-up is logged; the served table stays correct.

mod aliases;
mod persisted;

use crate::config::ModelEntry;
use crate::runtime::{CallContext, ListedModel, ModelTarget, Provider};
use crate::storage::kv::KvError;
use crate::storage::registry_store::RegistryStore;
use persisted::{MODEL_KIND, load_and_register};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long one provider's model listing may take.
pub const LISTING_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a model entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    /// `registered_resources.models` in the config (now or at an earlier start).
    Registered,
    /// A provider's `list-models`.
    Listed,
}

impl ModelSource {
    /// OGX's `RegistryEntrySource` value, as stored.
    fn as_str(self) -> &'static str {
        match self {
            ModelSource::Registered => "via_register_api",
            ModelSource::Listed => "listed_from_provider",
        }
    }
}

/// Why the registry could not start.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A config model's identifier is stored with other fields (OGX's message).
    #[error(
        "Object of type 'model' and identifier '{identifier}' already exists with conflicting field values: {conflicts}. Unregister it first if you want to replace it."
    )]
    Conflict {
        identifier: String,
        /// OGX's Python rendering: `{'field': (new, stored)}`.
        conflicts: String,
    },
    /// `provider_model_id: auto` found no model on an explicitly named provider (OGX's reason).
    #[error(
        "model {identifier}: provider_model_id auto: {reason}. Give provider_model_id the upstream model's id, or make the provider list its models."
    )]
    Auto { identifier: String, reason: String },
    /// The `metadata` store could not be read or written.
    #[error("the model registry (storage.stores.metadata): {0}")]
    Store(#[from] KvError),
}

/// A model the server knows, in OGX's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The id clients use, e.g. `vllm/llama-3`.
    pub identifier: String,
    pub provider_id: String,
    /// The id sent upstream.
    pub provider_resource_id: String,
    /// `llm`, `embedding` or `rerank`.
    pub model_type: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Registration time, seconds since the epoch.
    pub created: u64,
    pub source: ModelSource,
}

/// Where a request for a model goes.
pub struct Route {
    pub provider: Arc<Provider>,
    /// The model id to send upstream.
    pub upstream_model: String,
    /// The type of the registered model; `None` for a prefix-routed model, whose type is
    /// unknown (OGX does not check it either).
    pub model_type: Option<String>,
    /// The registered model's `metadata`; empty for a prefix-routed model.
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl Route {
    /// The model as a provider call sees it, for a request that named it `requested`.
    pub fn target(&self, requested: &str) -> ModelTarget {
        ModelTarget {
            id: requested.to_owned(),
            provider_model_id: self.upstream_model.clone(),
            metadata: self.metadata.clone(),
        }
    }
}

impl Model {
    /// A config entry as a registered model, registered `now`.
    fn from_entry(entry: &ModelEntry, now: u64) -> Self {
        Model {
            identifier: entry.identifier(),
            provider_id: entry.provider_id.clone(),
            provider_resource_id: entry.provider_model_id.clone(),
            model_type: entry.model_type.clone(),
            metadata: entry.metadata.clone(),
            created: now,
            source: ModelSource::Registered,
        }
    }
}

/// What a listing changed: the provider's listed models now, and the identifiers it dropped.
pub struct ListingChange {
    pub current: Vec<Model>,
    pub stale: Vec<String>,
}

/// The configured providers and the models they serve.
pub struct Registry {
    providers: Vec<Arc<Provider>>,
    models: RwLock<Vec<Model>>,
    /// Where models persist.
    store: RegistryStore,
}

impl Registry {
    /// A registry persisted in `store`: loads the stored models, then registers the config's
    /// (see the module documentation). Fails on a conflicting re-registration or when the
    /// store cannot be read or written.
    pub async fn open(
        providers: Vec<Arc<Provider>>,
        registered: &[ModelEntry],
        store: RegistryStore,
    ) -> Result<Self, RegistryError> {
        let registered = aliases::resolve(&providers, registered).await?;
        let provider_ids: Vec<&str> = providers.iter().map(|p| p.id()).collect();
        let models = load_and_register(&provider_ids, &registered, &store).await?;
        Ok(Registry {
            providers,
            models: RwLock::new(models),
            store,
        })
    }

    /// Unregisters the models with these identifiers from `store` (a reload removed or changed
    /// them in the config), so that the next [`Registry::open`] neither serves nor conflicts
    /// with them.
    pub async fn forget(
        store: &RegistryStore,
        identifiers: &[String],
    ) -> Result<(), RegistryError> {
        for identifier in identifiers {
            store.delete(MODEL_KIND, identifier).await?;
        }
        Ok(())
    }

    /// The providers, in config order.
    pub fn providers(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// The provider with this id.
    pub fn provider(&self, provider_id: &str) -> Option<&Arc<Provider>> {
        self.providers.iter().find(|p| p.id() == provider_id)
    }

    /// Every model: registered ones first in config order, then listed ones.
    pub fn models(&self) -> Vec<Model> {
        self.models.read().expect("model table lock").clone()
    }

    /// The model with exactly this identifier.
    pub fn model(&self, identifier: &str) -> Option<Model> {
        self.models
            .read()
            .expect("model table lock")
            .iter()
            .find(|m| m.identifier == identifier)
            .cloned()
    }

    /// Where a request for `requested` goes: an exact identifier first, then
    /// `<provider_id>/<anything>`. `None` means the model is unknown (404).
    pub fn route(&self, requested: &str) -> Option<Route> {
        if let Some(model) = self.model(requested) {
            let provider = self.provider(&model.provider_id)?.clone();
            return Some(Route {
                provider,
                upstream_model: model.provider_resource_id,
                model_type: Some(model.model_type),
                metadata: model.metadata,
            });
        }
        let (provider_id, rest) = requested.split_once('/')?;
        let provider = self.provider(provider_id)?.clone();
        Some(Route {
            provider,
            upstream_model: rest.to_string(),
            model_type: None,
            metadata: serde_json::Map::new(),
        })
    }

    /// Serves the models of `routing.models` that are not registered already, each as
    /// `(id, first target's provider, its model id, model type)`: listed on `/v1/models` and
    /// resolved to that first target (routing then spreads the requests over the targets).
    /// They are not persisted: the config is their source at every start.
    pub fn serve_routed(&self, routed: Vec<(String, String, String, String)>) {
        let now = unix_now();
        let mut models = self.models.write().expect("model table lock");
        for (identifier, provider_id, provider_resource_id, model_type) in routed {
            if models.iter().any(|m| m.identifier == identifier) {
                continue;
            }
            let position = models
                .iter()
                .position(|m| m.source == ModelSource::Listed)
                .unwrap_or(models.len());
            models.insert(
                position,
                Model {
                    identifier,
                    provider_id,
                    provider_resource_id,
                    model_type,
                    metadata: serde_json::Map::new(),
                    created: now,
                    source: ModelSource::Registered,
                },
            );
        }
    }

    /// Replaces the models listed by `provider_id` with `listed`. Registered models keep their
    /// place and win over a listed model with the same identifier. Returns what to persist.
    pub fn replace_listed(&self, provider_id: &str, listed: Vec<ListedModel>) -> ListingChange {
        let now = unix_now();
        let mut models = self.models.write().expect("model table lock");
        let previous: HashMap<String, u64> = models
            .iter()
            .filter(|m| m.source == ModelSource::Listed && m.provider_id == provider_id)
            .map(|m| (m.identifier.clone(), m.created))
            .collect();
        models.retain(|m| !(m.source == ModelSource::Listed && m.provider_id == provider_id));
        let mut current = Vec::new();
        for entry in listed {
            let identifier = format!("{provider_id}/{}", entry.id);
            if models.iter().any(|m| m.identifier == identifier) {
                continue;
            }
            let created = previous.get(&identifier).copied().unwrap_or(now);
            let model = Model {
                identifier,
                provider_id: provider_id.to_string(),
                provider_resource_id: entry.id,
                model_type: entry.model_type,
                metadata: entry.metadata,
                created,
                source: ModelSource::Listed,
            };
            current.push(model.clone());
            models.push(model);
        }
        let stale = previous
            .into_keys()
            .filter(|id| !current.iter().any(|m| &m.identifier == id))
            .collect();
        let provider_ids: Vec<&str> = self.providers.iter().map(|p| p.id()).collect();
        let all = std::mem::take(&mut *models);
        *models = in_served_order(&provider_ids, all);
        ListingChange { current, stale }
    }

    /// Writes a listing's change to the store; failures are logged.
    async fn persist_listing(&self, change: ListingChange) {
        let store = &self.store;
        for model in &change.current {
            if let Err(error) = store
                .put(MODEL_KIND, &model.identifier, &model.to_stored())
                .await
            {
                tracing::warn!(
                    "could not store the listed model {}: {error}",
                    model.identifier
                );
            }
        }
        for identifier in &change.stale {
            if let Err(error) = store.delete(MODEL_KIND, identifier).await {
                tracing::warn!("could not remove the stale model {identifier}: {error}");
            }
        }
    }

    /// Asks one provider for its models and records them. Failures are logged, never fatal.
    pub async fn list_provider(&self, provider: &Provider) {
        let context = CallContext {
            request_id: format!("list-models-{}", provider.id()),
            provider_data: None,
            timeout: Some(LISTING_TIMEOUT),
            model: None,
            upstream_clock: None,
            trace: None,
        };
        match provider.list_models(context).await {
            Ok(listed) => {
                tracing::info!(provider = provider.id(), "listed {} model(s)", listed.len());
                let change = self.replace_listed(provider.id(), listed);
                self.persist_listing(change).await;
            }
            Err(error) => tracing::warn!(provider = provider.id(), "model listing failed: {error}"),
        }
    }

    /// Lists every provider once, then every `interval` the providers whose config has
    /// `refresh_models: true` (OGX's behaviour). Runs until the registry is dropped.
    pub fn spawn_listing(self: &Arc<Self>, interval: Duration) {
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut first = true;
            loop {
                let Some(this) = registry.upgrade() else {
                    return;
                };
                let due: Vec<Arc<Provider>> = this
                    .providers
                    .iter()
                    .filter(|p| first || refresh_models(p))
                    .cloned()
                    .collect();
                futures::future::join_all(due.iter().map(|p| this.list_provider(p))).await;
                let again = this.providers.iter().any(|p| refresh_models(p));
                drop(this);
                if !again {
                    return;
                }
                first = false;
                tokio::time::sleep(interval).await;
            }
        });
    }
}

/// Whether a provider's config asks for periodic model refresh (`refresh_models: true`).
fn refresh_models(provider: &Provider) -> bool {
    provider
        .config()
        .get("refresh_models")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// Registered models first (keeping their order), then listed ones grouped by provider in
/// config order.
fn in_served_order(provider_ids: &[&str], models: Vec<Model>) -> Vec<Model> {
    let (mut registered, mut listed): (Vec<Model>, Vec<Model>) = models
        .into_iter()
        .partition(|m| m.source == ModelSource::Registered);
    listed.sort_by_key(|m| {
        provider_ids
            .iter()
            .position(|id| *id == m.provider_id)
            .unwrap_or(usize::MAX)
    });
    registered.extend(listed);
    registered
}

/// Seconds since the epoch, now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
