//! OGX 1.5.0's two shorthands in `registered_resources.models`, resolved against the served
//! providers before the config's models are registered (`register_resources` in
//! `src/ogx/core/stack.py`, `_resolve_auto_model` in `src/ogx/core/routing_tables/models.py`):
//!
//! - `provider_id: all`: the model is registered on the first served inference provider, in
//!   config order, under its bare `model_id` (no `<provider_id>/` prefix). Any failure while
//!   registering it (no provider, `auto` finding nothing) is a warning and the alias is
//!   skipped, as in OGX.
//! - `provider_model_id: auto`: the provider's first listed model of the entry's `model_type`.
//!   For an entry with an explicit `provider_id`, finding none stops start-up, as in OGX.
//!
//! Entries whose provider is enabled but not served by ogx (e.g. in-process
//! `inline::sentence-transformers`) are skipped with a warning naming the model.

use super::{LISTING_TIMEOUT, RegistryError};
use crate::config::ModelEntry;
use crate::runtime::{CallContext, Provider};
use std::sync::Arc;

/// The literal OGX reads as "the provider's first model of this type".
pub const AUTO: &str = "auto";

/// The config's models with `all` and `auto` resolved and unserved providers' models dropped.
pub async fn resolve(
    providers: &[Arc<Provider>],
    registered: &[ModelEntry],
) -> Result<Vec<ModelEntry>, RegistryError> {
    let mut out = Vec::with_capacity(registered.len());
    for entry in registered {
        let mut entry = entry.clone();
        if entry.unprefixed_alias {
            let Some(first) = providers.first() else {
                tracing::warn!(
                    "model {}: cannot resolve provider_id=all: no inference provider is served",
                    entry.model_id
                );
                continue;
            };
            entry.provider_id = first.id().to_string();
        }
        let Some(provider) = providers.iter().find(|p| p.id() == entry.provider_id) else {
            tracing::warn!(
                "model {} is not registered: its provider `{}` is not served by ogx",
                entry.identifier(),
                entry.provider_id
            );
            continue;
        };
        if entry.provider_model_id == AUTO {
            match first_listed(provider, &entry.model_type).await {
                Ok(id) => {
                    tracing::info!(
                        "model {}: provider_model_id auto resolved to {id} on provider {}",
                        entry.identifier(),
                        entry.provider_id
                    );
                    entry.provider_model_id = id;
                }
                Err(reason) if entry.unprefixed_alias => {
                    tracing::warn!(
                        "Failed to register unprefixed model alias {} on provider {}: {reason}",
                        entry.model_id,
                        entry.provider_id
                    );
                    continue;
                }
                Err(reason) => {
                    return Err(RegistryError::Auto {
                        identifier: entry.identifier(),
                        reason,
                    });
                }
            }
        }
        out.push(entry);
    }
    Ok(out)
}

/// OGX's `_resolve_auto_model`: the first model of `model_type` the provider lists, or its
/// reason (OGX's sentences).
async fn first_listed(provider: &Provider, model_type: &str) -> Result<String, String> {
    let context = CallContext {
        request_id: format!("resolve-auto-{}", provider.id()),
        provider_data: None,
        timeout: Some(LISTING_TIMEOUT),
        model: None,
        upstream_clock: None,
        trace: None,
    };
    let id = provider.id();
    let listed = provider.list_models(context).await.map_err(|error| {
        format!("Failed to list models from provider '{id}' for auto model resolution: {error}")
    })?;
    if listed.is_empty() {
        return Err(format!(
            "Provider '{id}' returned no models for auto resolution"
        ));
    }
    pick(
        listed
            .iter()
            .map(|m| (m.id.as_str(), m.model_type.as_str())),
        model_type,
    )
    .map(str::to_string)
    .ok_or_else(|| {
        format!("No {model_type} models found in provider '{id}' for auto model resolution")
    })
}

/// The first `(id, type)` of `model_type`.
fn pick<'a>(
    mut listed: impl Iterator<Item = (&'a str, &'a str)>,
    model_type: &str,
) -> Option<&'a str> {
    listed.find(|(_, t)| *t == model_type).map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_picks_the_first_model_of_the_type() {
        let listed = [
            ("embed-1", "embedding"),
            ("chat-1", "llm"),
            ("chat-2", "llm"),
            ("rerank-1", "rerank"),
        ];
        let cases = [
            ("llm", Some("chat-1")),
            ("embedding", Some("embed-1")),
            ("rerank", Some("rerank-1")),
            ("other", None),
        ];
        for (model_type, expected) in cases {
            assert_eq!(
                pick(listed.iter().copied(), model_type),
                expected,
                "{model_type}"
            );
        }
    }

    #[tokio::test]
    async fn without_providers_aliases_are_skipped_and_others_dropped() {
        let entry = |alias: bool| ModelEntry {
            model_id: "claude".into(),
            provider_id: "anthropic".into(),
            provider_model_id: AUTO.into(),
            model_type: "llm".into(),
            metadata: Default::default(),
            unprefixed_alias: alias,
        };
        let resolved = resolve(&[], &[entry(true), entry(false)]).await.unwrap();
        assert!(resolved.is_empty());
    }
}
