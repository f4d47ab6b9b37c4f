//! `providers.messages`: the Anthropic Messages API, as OGX 1.5 configures it — one provider of
//! type `inline::builtin`, whose `config.kvstore` names the key-value store of message batches:
//!
//! ```yaml
//! apis: [inference, messages]          # or no `apis` at all
//! providers:
//!   messages:
//!   - provider_id: builtin
//!     provider_type: inline::builtin
//!     config:
//!       kvstore: {backend: kv_default, namespace: message_batches}
//! ```
//!
//! The API is served when such a provider is enabled and `apis` is absent (or empty) or lists
//! `messages`. `kvstore` is checked (it must name a `kv_*` backend) and kept for message
//! batches, which ogx does not run yet; `max_concurrent_batches` and
//! `max_concurrent_requests_per_batch` are accepted for the same reason. Fails naming the key
//! when the provider type is not `inline::builtin`, when there are several providers, or when
//! `kvstore` names a missing or non-KV backend.

use super::fields::Invalid;
use super::schema::{ProviderEntry, StorageConfig};
use serde_json::Value;

/// The Messages API, enabled.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesConfig {
    pub provider_id: String,
    /// `config.kvstore.backend`, where message batches will be kept.
    pub batches_backend: Option<String>,
}

/// The Messages API's config: `None` when no provider enables it or `apis` leaves it out.
pub fn parse(
    entries: &[ProviderEntry],
    apis: Option<&[String]>,
    storage: &StorageConfig,
) -> Result<Option<MessagesConfig>, Invalid> {
    let Some(entry) = super::responses::builtin_entry("messages", entries)? else {
        return Ok(None);
    };
    let key = "providers.messages[0].config.kvstore";
    let batches_backend = match entry.config.get("kvstore") {
        None | Some(Value::Null) => None,
        Some(Value::Object(fields)) => match fields.get("backend") {
            Some(Value::String(backend)) => {
                storage.check_reference(key, backend, true)?;
                Some(backend.clone())
            }
            _ => {
                return Err(Invalid::new(
                    format!("{key}.backend"),
                    "is required and must be a string",
                    "Write `kvstore: {backend: kv_default, namespace: message_batches}`.",
                ));
            }
        },
        Some(_) => {
            return Err(Invalid::new(
                key,
                "must be a mapping",
                "Write `kvstore: {backend: kv_default, namespace: message_batches}`.",
            ));
        }
    };
    if apis.is_some_and(|apis| !apis.iter().any(|api| api == "messages")) {
        return Ok(None);
    }
    Ok(Some(MessagesConfig {
        provider_id: entry.provider_id.clone(),
        batches_backend,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::responses::tests::{entry, storage};
    use serde_json::json;

    #[test]
    fn the_starter_entry_enables_the_api_unless_an_apis_list_leaves_it_out() {
        let config = json!({"kvstore": {"backend": "kv_default", "namespace": "message_batches"},
            "max_concurrent_batches": 1});
        let entries = [entry("inline::builtin", config)];
        let got = parse(&entries, None, &storage()).unwrap().unwrap();
        assert_eq!(got.batches_backend.as_deref(), Some("kv_default"));
        let listed = ["inference".to_string(), "messages".to_string()];
        assert!(
            parse(&entries, Some(&listed), &storage())
                .unwrap()
                .is_some()
        );
        let without = ["inference".to_string()];
        assert_eq!(parse(&entries, Some(&without), &storage()).unwrap(), None);
        assert_eq!(parse(&entries, Some(&[]), &storage()).unwrap(), None);
        assert_eq!(parse(&[], None, &storage()).unwrap(), None);
    }

    #[test]
    fn bad_entries_name_the_key() {
        let cases = [
            (
                entry("remote::x", json!({})),
                "providers.messages[0].provider_type",
            ),
            (
                entry(
                    "inline::builtin",
                    json!({"kvstore": {"backend": "sql_default"}}),
                ),
                "providers.messages[0].config.kvstore",
            ),
            (
                entry("inline::builtin", json!({"kvstore": {"namespace": "x"}})),
                "providers.messages[0].config.kvstore.backend",
            ),
        ];
        for (entry, key) in cases {
            let error = parse(&[entry], None, &storage()).unwrap_err();
            assert_eq!(error.key, key);
        }
    }
}
