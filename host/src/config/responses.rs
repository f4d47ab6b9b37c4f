//! `providers.responses`: the Responses API, as OGX configures it — one provider of type
//! `inline::builtin` whose `config.persistence.responses` names the SQL store of responses:
//!
//! ```yaml
//! responses:
//! - provider_id: builtin
//!   provider_type: inline::builtin
//!   config:
//!     persistence:
//!       agent_state: {namespace: agents, backend: kv_default}   # accepted, not used
//!       responses: {table_name: responses, backend: sql_default,
//!                   max_write_queue_size: 10000, num_writers: 4}
//! ```
//!
//! Without `persistence.responses`, `storage.stores.responses` is used, else
//! `sql_default`/`responses`. Other keys of `config` (OGX's compaction and vector-store
//! settings) are accepted and not used. Fails naming the key when the provider type is not
//! `inline::builtin`, when there are several providers, or when the store names a missing or
//! non-SQL backend.

use super::fields::Invalid;
use super::schema::{InferenceStoreRef, ProviderEntry, StorageConfig};
use serde_json::Value;

/// The only provider type of the Responses API.
pub const BUILTIN_PROVIDER_TYPE: &str = "inline::builtin";

/// The Responses API, enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesConfig {
    pub provider_id: String,
    /// Where responses are stored.
    pub store: InferenceStoreRef,
}

/// The Responses API's config, `None` when `providers.responses` has no enabled provider.
pub fn parse(
    entries: &[ProviderEntry],
    storage: &StorageConfig,
) -> Result<Option<ResponsesConfig>, Invalid> {
    let Some(entry) = builtin_entry("responses", entries)? else {
        return Ok(None);
    };
    let key = "providers.responses[0].config.persistence.responses";
    let store = match entry.config.pointer("/persistence/responses") {
        Some(Value::Object(fields)) => {
            let text = |name: &str, default: &str| match fields.get(name) {
                None | Some(Value::Null) => Ok(default.to_string()),
                Some(Value::String(text)) => Ok(text.clone()),
                Some(_) => Err(Invalid::new(
                    format!("{key}.{name}"),
                    "must be a string",
                    format!("Write `{name}: {default}`."),
                )),
            };
            let count = |name: &str, default: u64| match fields.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(value) => value.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
                    Invalid::new(
                        format!("{key}.{name}"),
                        "must be a whole number of at least 1",
                        format!("Write `{name}: {default}`."),
                    )
                }),
            };
            InferenceStoreRef {
                backend: text("backend", "sql_default")?,
                table_name: text("table_name", "responses")?,
                max_write_queue_size: count("max_write_queue_size", 10000)?,
                num_writers: count("num_writers", 4)?,
                enabled: true,
            }
        }
        None | Some(Value::Null) => storage
            .stores
            .responses
            .clone()
            .unwrap_or(InferenceStoreRef {
                backend: "sql_default".into(),
                table_name: "responses".into(),
                max_write_queue_size: 10000,
                num_writers: 4,
                enabled: true,
            }),
        Some(_) => {
            return Err(Invalid::new(
                key,
                "must be a mapping",
                "Write `responses: {backend: sql_default, table_name: responses}`.",
            ));
        }
    };
    storage.check_reference(key, &store.backend, false)?;
    Ok(Some(ResponsesConfig {
        provider_id: entry.provider_id.clone(),
        store,
    }))
}

/// The one enabled entry of an API served by the host (`responses`, `messages`): `None` when
/// there is none; an error naming the key when there are several or its type is not
/// `inline::builtin`.
pub(super) fn builtin_entry<'a>(
    api: &str,
    entries: &'a [ProviderEntry],
) -> Result<Option<&'a ProviderEntry>, Invalid> {
    let Some(entry) = entries.first() else {
        return Ok(None);
    };
    if entries.len() > 1 {
        return Err(Invalid::new(
            format!("providers.{api}"),
            format!(
                "{} {api} providers are enabled; ogx serves one",
                entries.len()
            ),
            format!("Keep one `inline::builtin` entry under providers.{api}."),
        ));
    }
    if entry.provider_type != BUILTIN_PROVIDER_TYPE {
        return Err(Invalid::new(
            format!("providers.{api}[0].provider_type"),
            format!(
                "provider type '{}' is not available for the {api} API",
                entry.provider_type
            ),
            format!("Use `provider_type: {BUILTIN_PROVIDER_TYPE}`."),
        ));
    }
    Ok(Some(entry))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A `builtin` provider entry of `provider_type` (the Messages config's tests share it).
    pub(crate) fn entry(provider_type: &str, config: Value) -> ProviderEntry {
        ProviderEntry {
            provider_id: "builtin".into(),
            provider_type: provider_type.into(),
            config,
            network: Default::default(),
        }
    }

    /// The default storage with no environment.
    pub(crate) fn storage() -> StorageConfig {
        StorageConfig::default_for(&|_| None)
    }

    #[test]
    fn ogx_starter_persistence_is_read_and_other_keys_are_accepted() {
        let config = json!({"persistence": {
            "agent_state": {"namespace": "agents", "backend": "kv_default"},
            "responses": {"table_name": "my_responses", "backend": "sql_default",
                          "max_write_queue_size": 10, "num_writers": 2}},
            "compaction_config": {"summarization_model": null}});
        let got = parse(&[entry("inline::builtin", config)], &storage())
            .unwrap()
            .unwrap();
        assert_eq!(got.store.table_name, "my_responses");
        assert_eq!(got.store.backend, "sql_default");
        assert_eq!(got.store.max_write_queue_size, 10);
        let default = parse(&[entry("inline::builtin", json!({}))], &storage())
            .unwrap()
            .unwrap();
        assert_eq!(default.store.table_name, "responses");
        assert_eq!(parse(&[], &storage()).unwrap(), None);
    }

    #[test]
    fn bad_entries_name_the_key() {
        let cases = [
            (
                entry("remote::x", json!({})),
                "providers.responses[0].provider_type",
            ),
            (
                entry(
                    "inline::builtin",
                    json!({"persistence": {"responses": {"backend": "kv_default"}}}),
                ),
                "providers.responses[0].config.persistence.responses",
            ),
            (
                entry(
                    "inline::builtin",
                    json!({"persistence": {"responses": {"num_writers": 0}}}),
                ),
                "providers.responses[0].config.persistence.responses.num_writers",
            ),
        ];
        for (entry, key) in cases {
            let error = parse(&[entry], &storage()).unwrap_err();
            assert_eq!(error.key, key);
        }
    }
}
