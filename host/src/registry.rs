//! The providers and models the server routes to.
//!
//! Models come from two places: `registered_resources.models` in the config and the providers'
//! own listings. A request names a model by its identifier (`<provider_id>/<model_id>`), or by
//! `<provider_id>/<anything>`, which OGX routes to that provider with `<anything>` sent
//! upstream. Listing runs in the background: a provider whose upstream is down is logged and
//! never blocks start-up.
//!
//! **Persistence** ([`Registry::open`]), as OGX does it: every model is kept in the `metadata`
//! store ([`RegistryStore`]). At start-up the stored models are loaded, then the config's are
//! registered: a new identifier is stored; the same identifier with the same fields is kept
//! (with its first registration time); different fields stop start-up with OGX's "already
//! exists with conflicting field values" message. A model removed from the config stays
//! registered and routable. Listed models are stored too, and each listing replaces that
//! provider's listed models (stale ones are removed). Stored models of a provider that is no
//! longer configured stay in the store but are not served. Order of `/v1/models`: the config's
//! models in config order, then other registered ones, then listed ones per provider in
//! config order. A failed write after start-up is logged; the served table stays correct.

use crate::config::ModelEntry;
use crate::runtime::{CallContext, ListedModel, ModelTarget, Provider};
use crate::storage::kv::KvError;
use crate::storage::registry_store::RegistryStore;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The registry's resource type for models (OGX's `ResourceType.model`).
const MODEL_KIND: &str = "model";

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

    /// The stored JSON: OGX's `Model` fields plus `created` and `source`.
    fn to_stored(&self) -> Value {
        json!({
            "identifier": self.identifier,
            "provider_resource_id": self.provider_resource_id,
            "provider_id": self.provider_id,
            "type": MODEL_KIND,
            "metadata": self.metadata,
            "model_type": self.model_type,
            "created": self.created,
            "source": self.source.as_str(),
        })
    }

    /// A stored model; `None` when a required field is missing.
    fn from_stored(value: &Value) -> Option<Self> {
        let text = |field: &str| value.get(field)?.as_str().map(str::to_string);
        Some(Model {
            identifier: text("identifier")?,
            provider_id: text("provider_id")?,
            provider_resource_id: text("provider_resource_id")?,
            model_type: text("model_type").unwrap_or_else(|| "llm".to_string()),
            metadata: value
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            created: value.get("created").and_then(Value::as_u64).unwrap_or(0),
            source: if text("source").as_deref() == Some(ModelSource::Listed.as_str()) {
                ModelSource::Listed
            } else {
                ModelSource::Registered
            },
        })
    }

    /// The fields a re-registration may not change, as `(field, incoming, stored)`.
    fn conflicts_with(&self, stored: &Model) -> Vec<(&'static str, Value, Value)> {
        let fields = |m: &Model| {
            [
                ("provider_resource_id", json!(m.provider_resource_id)),
                ("provider_id", json!(m.provider_id)),
                ("model_type", json!(m.model_type)),
                ("metadata", json!(m.metadata)),
            ]
        };
        fields(self)
            .into_iter()
            .zip(fields(stored))
            .filter(|((_, new), (_, old))| new != old)
            .map(|((field, new), (_, old))| (field, new, old))
            .collect()
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
        let provider_ids: Vec<&str> = providers.iter().map(|p| p.id()).collect();
        let models = load_and_register(&provider_ids, registered, &store).await?;
        Ok(Registry {
            providers,
            models: RwLock::new(models),
            store,
        })
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

/// The stored models, then the config's registered on top (see the module documentation), in
/// served order. Writes the newly registered models to `store`.
async fn load_and_register(
    provider_ids: &[&str],
    registered: &[ModelEntry],
    store: &RegistryStore,
) -> Result<Vec<Model>, RegistryError> {
    let mut stored: Vec<Model> = Vec::new();
    for value in store.load(MODEL_KIND).await? {
        match Model::from_stored(&value) {
            Some(model) if provider_ids.contains(&model.provider_id.as_str()) => stored.push(model),
            Some(model) => tracing::info!(
                "the stored model {} is not served: its provider `{}` is not configured",
                model.identifier,
                model.provider_id
            ),
            None => {
                tracing::warn!("skipping a stored model without identifier or provider: {value}")
            }
        }
    }
    let now = unix_now();
    let mut from_config: Vec<Model> = Vec::new();
    for entry in registered
        .iter()
        .filter(|entry| provider_ids.contains(&entry.provider_id.as_str()))
    {
        let incoming = Model::from_entry(entry, now);
        let earlier = from_config
            .iter()
            .chain(
                stored
                    .iter()
                    .filter(|m| m.source == ModelSource::Registered),
            )
            .find(|m| m.identifier == incoming.identifier);
        match earlier {
            Some(existing) => {
                let conflicts = incoming.conflicts_with(existing);
                if !conflicts.is_empty() {
                    return Err(RegistryError::Conflict {
                        identifier: incoming.identifier,
                        conflicts: python_conflicts(&conflicts),
                    });
                }
                let existing = existing.clone();
                if !from_config
                    .iter()
                    .any(|m| m.identifier == existing.identifier)
                {
                    from_config.push(existing);
                }
            }
            None => {
                store
                    .put(MODEL_KIND, &incoming.identifier, &incoming.to_stored())
                    .await?;
                from_config.push(incoming);
            }
        }
    }
    // A config model replaces a stored listed model of the same identifier.
    stored.retain(|m| !from_config.iter().any(|c| c.identifier == m.identifier));
    from_config.extend(in_served_order(provider_ids, stored));
    Ok(from_config)
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

/// OGX's rendering of its conflicts dict: `{'field': (new, stored), ...}` in Python's repr.
fn python_conflicts(conflicts: &[(&str, Value, Value)]) -> String {
    let items: Vec<String> = conflicts
        .iter()
        .map(|(field, new, old)| {
            format!(
                "{}: ({}, {})",
                python_repr(&json!(field)),
                python_repr(new),
                python_repr(old)
            )
        })
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// A JSON value as Python's `repr` writes the equivalent object.
fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(text) => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", python_repr(&json!(k)), python_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::kv::KvStore;

    fn entry(model_id: &str, provider_model_id: &str) -> ModelEntry {
        ModelEntry {
            model_id: model_id.to_string(),
            provider_id: "vllm".to_string(),
            provider_model_id: provider_model_id.to_string(),
            model_type: "llm".to_string(),
            metadata: serde_json::Map::new(),
            unprefixed_alias: false,
        }
    }

    fn store_at(path: &std::path::Path) -> RegistryStore {
        RegistryStore::new(Arc::new(KvStore::open_host(Some(path)).unwrap()).namespace("registry"))
    }

    #[test]
    fn conflicts_name_each_changed_field_in_ogx_form() {
        let base = Model::from_entry(&entry("m", "m-upstream"), 1);
        let with = |change: fn(&mut Model)| {
            let mut model = base.clone();
            change(&mut model);
            model
        };
        let cases: &[(Model, &str)] = &[
            (with(|_| {}), ""),
            (with(|m| m.created = 99), ""),
            (
                with(|m| m.provider_resource_id = "other".into()),
                "{'provider_resource_id': ('other', 'm-upstream')}",
            ),
            (
                with(|m| m.model_type = "embedding".into()),
                "{'model_type': ('embedding', 'llm')}",
            ),
            (
                with(|m| {
                    m.metadata.insert("embedding_dimension".into(), json!(768));
                    m.metadata.insert("note".into(), json!("it's"));
                }),
                "{'metadata': ({'embedding_dimension': 768, 'note': 'it\\'s'}, {})}",
            ),
            (
                with(|m| {
                    m.provider_id = "other".into();
                    m.metadata.insert("flag".into(), json!([true, null]));
                }),
                "{'provider_id': ('other', 'vllm'), 'metadata': ({'flag': [True, None]}, {})}",
            ),
        ];
        for (incoming, expected) in cases {
            let conflicts = incoming.conflicts_with(&base);
            let text = if conflicts.is_empty() {
                String::new()
            } else {
                python_conflicts(&conflicts)
            };
            assert_eq!(text, *expected);
        }
    }

    #[tokio::test]
    async fn models_persist_and_conflicting_re_registration_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let ids = ["vllm"];
        let first = load_and_register(
            &ids,
            &[entry("a", "a-up"), entry("b", "b-up")],
            &store_at(&path),
        )
        .await
        .unwrap();
        assert_eq!(
            first
                .iter()
                .map(|m| m.identifier.as_str())
                .collect::<Vec<_>>(),
            ["vllm/a", "vllm/b"]
        );
        // `a` left the config and `c` joined: `c` comes first, `a` stays, with its time.
        let second = load_and_register(
            &ids,
            &[entry("c", "c-up"), entry("b", "b-up")],
            &store_at(&path),
        )
        .await
        .unwrap();
        let names: Vec<&str> = second.iter().map(|m| m.identifier.as_str()).collect();
        assert_eq!(names, ["vllm/c", "vllm/b", "vllm/a"]);
        assert_eq!(second[2], first[0]);
        // A provider that is not configured any more: its models are kept but not served.
        assert!(
            load_and_register(&["other"], &[], &store_at(&path))
                .await
                .unwrap()
                .is_empty()
        );
        // The same identifier with another upstream id stops start-up.
        let error = load_and_register(&ids, &[entry("a", "changed")], &store_at(&path))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "Object of type 'model' and identifier 'vllm/a' already exists with conflicting field values: {'provider_resource_id': ('changed', 'a-up')}. Unregister it first if you want to replace it."
        );
        // Two config entries for one identifier must agree too.
        let dir = tempfile::tempdir().unwrap();
        let error = load_and_register(
            &ids,
            &[entry("x", "one"), entry("x", "two")],
            &store_at(&dir.path().join("r.db")),
        )
        .await
        .unwrap_err();
        assert!(matches!(error, RegistryError::Conflict { .. }), "{error}");
    }

    #[tokio::test]
    async fn listed_models_persist_and_stale_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let store = store_at(&path);
        let registry = Registry {
            providers: Vec::new(),
            models: RwLock::new(
                load_and_register(&["vllm"], &[entry("r", "r")], &store)
                    .await
                    .unwrap(),
            ),
            store,
        };
        let listed = |ids: &[&str]| {
            ids.iter()
                .map(|id| ListedModel {
                    id: id.to_string(),
                    model_type: "llm".to_string(),
                    metadata: serde_json::Map::new(),
                })
                .collect::<Vec<_>>()
        };
        let change = registry.replace_listed("vllm", listed(&["one", "two", "r"]));
        registry.persist_listing(change).await;
        let change = registry.replace_listed("vllm", listed(&["two"]));
        assert_eq!(change.stale, ["vllm/one"]);
        registry.persist_listing(change).await;
        let names = |models: &[Model]| {
            models
                .iter()
                .map(|m| (m.identifier.clone(), m.source))
                .collect::<Vec<_>>()
        };
        let reloaded = load_and_register(&["vllm"], &[], &store_at(&path))
            .await
            .unwrap();
        assert_eq!(names(&reloaded), names(&registry.models()));
        assert_eq!(
            names(&reloaded),
            [
                ("vllm/r".to_string(), ModelSource::Registered),
                ("vllm/two".to_string(), ModelSource::Listed)
            ]
        );
    }
}
