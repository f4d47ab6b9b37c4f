//! How models persist in the `metadata` store, as OGX keeps them: the stored JSON (OGX's
//! `Model` fields plus `created` and `source`), loading the stored models at start-up and
//! registering the config's on top, and OGX's "already exists with conflicting field values"
//! message (its Python rendering of the conflicts). See the parent module for the rules.

use super::{Model, ModelSource, RegistryError, in_served_order, unix_now};
use crate::config::ModelEntry;
use crate::storage::registry_store::RegistryStore;
use serde_json::{Value, json};

/// The registry's resource type for models (OGX's `ResourceType.model`).
pub(super) const MODEL_KIND: &str = "model";

impl Model {
    /// The stored JSON: OGX's `Model` fields plus `created` and `source`.
    pub(super) fn to_stored(&self) -> Value {
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
    pub(super) fn from_stored(value: &Value) -> Option<Self> {
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

/// The stored models, then the config's registered on top (see the module documentation), in
/// served order. Writes the newly registered models to `store`.
pub(super) async fn load_and_register(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use crate::runtime::ListedModel;
    use crate::storage::kv::KvStore;
    use std::sync::{Arc, RwLock};

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
