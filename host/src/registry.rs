//! The providers and models the server routes to.
//!
//! Models come from two places: `registered_resources.models` in the config (listed first, in
//! config order) and the providers' own listings (after them, per provider in config order).
//! A request names a model by its identifier (`<provider_id>/<model_id>`), or by
//! `<provider_id>/<anything>`, which OGX routes to that provider with `<anything>` sent
//! upstream. Listing runs in the background: a provider whose upstream is down is logged and
//! never blocks start-up.

use crate::config::ModelEntry;
use crate::runtime::{CallContext, ListedModel, Provider};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long one provider's model listing may take.
pub const LISTING_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a model entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelSource {
    /// `registered_resources.models` in the config.
    Registered,
    /// A provider's `list-models`.
    Listed,
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
}

/// The configured providers and the models they serve.
pub struct Registry {
    providers: Vec<Arc<Provider>>,
    models: RwLock<Vec<Model>>,
}

impl Registry {
    /// A registry of `providers` (in config order) with the config's registered models.
    /// Entries whose provider is not among `providers` are left out (the config's validation
    /// has already rejected unknown provider ids; disabled ones are dropped silently, as OGX does).
    pub fn new(providers: Vec<Arc<Provider>>, registered: &[ModelEntry]) -> Self {
        let now = unix_now();
        let models = registered
            .iter()
            .filter(|entry| providers.iter().any(|p| p.id() == entry.provider_id))
            .map(|entry| Model {
                identifier: entry.identifier(),
                provider_id: entry.provider_id.clone(),
                provider_resource_id: entry.provider_model_id.clone(),
                model_type: entry.model_type.clone(),
                metadata: entry.metadata.clone(),
                created: now,
                source: ModelSource::Registered,
            })
            .collect();
        Registry {
            providers,
            models: RwLock::new(models),
        }
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
            });
        }
        let (provider_id, rest) = requested.split_once('/')?;
        let provider = self.provider(provider_id)?.clone();
        Some(Route {
            provider,
            upstream_model: rest.to_string(),
            model_type: None,
        })
    }

    /// Replaces the models listed by `provider_id` with `listed`. Registered models keep their
    /// place and win over a listed model with the same identifier.
    pub fn replace_listed(&self, provider_id: &str, listed: Vec<ListedModel>) {
        let now = unix_now();
        let mut models = self.models.write().expect("model table lock");
        let previous: HashMap<String, u64> = models
            .iter()
            .filter(|m| m.source == ModelSource::Listed && m.provider_id == provider_id)
            .map(|m| (m.identifier.clone(), m.created))
            .collect();
        models.retain(|m| !(m.source == ModelSource::Listed && m.provider_id == provider_id));
        for entry in listed {
            let identifier = format!("{provider_id}/{}", entry.id);
            if models.iter().any(|m| m.identifier == identifier) {
                continue;
            }
            let created = previous.get(&identifier).copied().unwrap_or(now);
            models.push(Model {
                identifier,
                provider_id: provider_id.to_string(),
                provider_resource_id: entry.id,
                model_type: entry.model_type,
                metadata: entry.metadata,
                created,
                source: ModelSource::Listed,
            });
        }
        // Listed models stay grouped by provider in config order.
        let order: HashMap<&str, usize> = self
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id(), i))
            .collect();
        let (registered, mut listed): (Vec<Model>, Vec<Model>) = models
            .drain(..)
            .partition(|m| m.source == ModelSource::Registered);
        listed.sort_by_key(|m| {
            order
                .get(m.provider_id.as_str())
                .copied()
                .unwrap_or(usize::MAX)
        });
        models.extend(registered);
        models.extend(listed);
    }

    /// Asks one provider for its models and records them. Failures are logged, never fatal.
    pub async fn list_provider(&self, provider: &Provider) {
        let context = CallContext {
            request_id: format!("list-models-{}", provider.id()),
            provider_data: None,
            timeout: Some(LISTING_TIMEOUT),
        };
        match provider.list_models(context).await {
            Ok(listed) => {
                tracing::info!(provider = provider.id(), "listed {} model(s)", listed.len());
                self.replace_listed(provider.id(), listed);
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
