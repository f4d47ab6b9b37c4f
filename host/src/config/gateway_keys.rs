//! `gateway_keys:`, ogx's own top-level section (OGX 1.5.0's `StackConfig` ignores top-level
//! keys it does not know, so a config with it still starts OGX): keys that ogx issues, their
//! store, who administers them, and the prices their budgets are computed with.
//!
//! ```yaml
//! gateway_keys:
//!   store: {backend: kv_default}     # any storage.backends entry: kv_sqlite, kv_postgres,
//!                                    # kv_redis, sql_sqlite or sql_postgres
//!   required: false                  # true: every API request needs a gateway key
//!   admin:                           # who may call /v1/admin/keys (besides the bootstrap key)
//!     principals: [platform-team]    # OGX principals (server.auth)
//!     attributes: {roles: [admin]}   # or any of these attribute values
//!   over_budget_status: 429          # or 402
//!   prices:                          # per million tokens, in the budgets' currency
//!     vllm/my-model: {input: 0.5, output: 1.5, cached_input: 0.25}
//!     "openai/*": {input: 2.5, output: 10}
//!   keys:                            # keys declared here, by their secret's SHA-256
//!   - {id: gk_ci, secret_sha256: <64 hex digits>, owner: ci, limits: {requests_per_minute: 600}}
//! ```
//!
//! A declared key is written to the store at start-up (replacing what the admin API changed);
//! its other fields are the admin API's key settings, checked at start-up.
//!
//! Fails naming the key when `store.backend` is missing or names no backend, when
//! `over_budget_status` is not 429 or 402, or when a price is not a number ≥ 0. Unknown keys
//! are warned about.

use super::fields::{Invalid, Section, type_name};
use super::schema::StorageConfig;
use serde_json::Value;
use std::collections::BTreeMap;

/// The environment variable whose value is a bootstrap admin key for `/v1/admin/keys`.
pub const BOOTSTRAP_ADMIN_KEY_ENV: &str = "OGX_GATEWAY_ADMIN_KEY";

/// `gateway_keys:`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct GatewayKeysConfig {
    /// `store.backend`: a `storage.backends` name (checked).
    pub backend: String,
    /// `required`: every request but `/v1/health`, `/v1/version` and the admin API needs a
    /// gateway key. Default false.
    pub required: bool,
    /// `admin.principals`.
    pub admin_principals: Vec<String>,
    /// `admin.attributes`: category → values; a principal with any of them is an admin.
    pub admin_attributes: BTreeMap<String, Vec<String>>,
    /// `over_budget_status`: 429 (default) or 402.
    pub over_budget_status: u16,
    /// `prices`, in config order: model id or `*` pattern → price.
    pub prices: Vec<(String, Price)>,
    /// `keys`: keys declared in the config.
    pub keys: Vec<DeclaredKey>,
}

/// One `gateway_keys.keys` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct DeclaredKey {
    /// Its dotted config path, for messages.
    pub path: String,
    pub id: String,
    /// SHA-256 of the secret, lower-case hex.
    pub secret_sha256: String,
    /// The other fields: the key's settings as the admin API takes them.
    pub settings: Value,
}

/// A model's price per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Cached input tokens; defaults to `input`.
    pub cached_input: f64,
}

const KEYS: &[&str] = &[
    "store",
    "required",
    "admin",
    "over_budget_status",
    "prices",
    "keys",
];

/// `gateway_keys:`; `None` when absent or null.
pub fn parse(
    raw: Option<&Value>,
    storage: &StorageConfig,
    warnings: &mut Vec<String>,
) -> Result<Option<GatewayKeysConfig>, Invalid> {
    let Some(section) = Section::of(raw, "gateway_keys")? else {
        return Ok(None);
    };
    section.warn_unknown(KEYS, warnings);
    let store = Section::of(section.get("store"), "gateway_keys.store")?.ok_or_else(|| {
        Invalid::new(
            "gateway_keys.store",
            "is required but missing",
            "Add `store: {backend: kv_default}` naming the storage.backends entry that keeps the keys and counters (one every replica shares: kv_postgres, sql_postgres or kv_redis).",
        )
    })?;
    store.warn_unknown(&["backend"], warnings);
    let backend = store.required_string(
        "backend",
        "Add `backend: kv_default` naming a storage.backends entry.",
    )?;
    if !storage.backends.contains_key(&backend) {
        let names: Vec<&String> = storage.backends.keys().collect();
        return Err(Invalid::new(
            "gateway_keys.store.backend",
            format!("references unknown backend '{backend}'. Available backends: {names:?}"),
            format!(
                "Add a backend named '{backend}' under storage.backends, or name one of the available ones."
            ),
        ));
    }
    let admin = Section::of(section.get("admin"), "gateway_keys.admin")?;
    let (admin_principals, admin_attributes) = match admin {
        None => (Vec::new(), BTreeMap::new()),
        Some(admin) => {
            admin.warn_unknown(&["principals", "attributes"], warnings);
            let mut attributes = BTreeMap::new();
            if let Some(map) =
                Section::of(admin.get("attributes"), "gateway_keys.admin.attributes")?
            {
                for category in map.map.keys() {
                    attributes.insert(category.clone(), map.string_list(category)?);
                }
            }
            (admin.string_list("principals")?, attributes)
        }
    };
    let over_budget_status = match section.int("over_budget_status")? {
        None | Some(429) => 429,
        Some(402) => 402,
        Some(other) => {
            return Err(Invalid::new(
                "gateway_keys.over_budget_status",
                format!("{other} is not 429 or 402"),
                "Use 429 (Too Many Requests, the default) or 402 (Payment Required).",
            ));
        }
    };
    let mut prices = Vec::new();
    if let Some(table) = Section::of(section.get("prices"), "gateway_keys.prices")? {
        for model in table.map.keys() {
            let path = table.key(model);
            let entry = Section::of(table.get(model), &path)?.ok_or_else(|| {
                Invalid::new(
                    &path,
                    "is empty",
                    "Write `{input: 0.5, output: 1.5, cached_input: 0.25}` (per million tokens).",
                )
            })?;
            entry.warn_unknown(&["input", "output", "cached_input"], warnings);
            let input = price(&entry, "input")?.unwrap_or(0.0);
            prices.push((
                model.clone(),
                Price {
                    input,
                    output: price(&entry, "output")?.unwrap_or(0.0),
                    cached_input: price(&entry, "cached_input")?.unwrap_or(input),
                },
            ));
        }
    }
    let keys = match section.get("keys") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(n, item)| declared_key(item, format!("gateway_keys.keys[{n}]")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(Invalid::new(
                "gateway_keys.keys",
                format!("expected a list, found {}", type_name(other)),
                "Write each key as a list item: `- {id: gk_ci, secret_sha256: ..., owner: ci}`.",
            ));
        }
    };
    Ok(Some(GatewayKeysConfig {
        keys,
        backend,
        required: section.bool("required")?.unwrap_or(false),
        admin_principals,
        admin_attributes,
        over_budget_status,
        prices,
    }))
}

fn declared_key(item: &Value, path: String) -> Result<DeclaredKey, Invalid> {
    let entry = Section::of(Some(item), &path)?.ok_or_else(|| {
        Invalid::new(
            &path,
            "is empty",
            "Give the key an `id`, a `secret_sha256` and an `owner`.",
        )
    })?;
    let id = entry.required_string("id", "Add `id: gk_<name>`.")?;
    let id_chars = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.starts_with("gk_") || !id[3..].chars().all(id_chars) {
        return Err(Invalid::new(
            entry.key("id"),
            format!("{id:?} is not a key id"),
            "Use `gk_` followed by letters, digits, `_` or `-`.",
        ));
    }
    let fix = "Write the SHA-256 of the key's secret in hex (`printf %s \"$SECRET\" | sha256sum`).";
    let secret_sha256 = entry
        .required_string("secret_sha256", fix)?
        .to_ascii_lowercase();
    if secret_sha256.len() != 64 || !secret_sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Invalid::new(
            entry.key("secret_sha256"),
            "is not 64 hex digits",
            fix,
        ));
    }
    let mut settings = entry.map.clone();
    settings.remove("id");
    settings.remove("secret_sha256");
    Ok(DeclaredKey {
        path,
        id,
        secret_sha256,
        settings: Value::Object(settings),
    })
}

fn price(entry: &Section<'_>, key: &str) -> Result<Option<f64>, Invalid> {
    let parsed = match entry.get(key) {
        None => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match parsed {
        Some(p) if p.is_finite() && p >= 0.0 => Ok(Some(p)),
        _ => Err(Invalid::new(
            entry.key(key),
            format!(
                "expected a price ≥ 0, found {}",
                entry.get(key).map_or("nothing", type_name)
            ),
            "Write the price per million tokens as a number, e.g. `input: 0.5`.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::Backend;
    use serde_json::json;

    fn storage() -> StorageConfig {
        StorageConfig {
            backends: BTreeMap::from([(
                "kv_default".to_string(),
                Backend::KvRedis {
                    host: "127.0.0.1".into(),
                    port: 6379,
                    namespace: None,
                },
            )]),
            stores: Default::default(),
        }
    }

    #[test]
    fn a_full_section_is_read_with_defaults() {
        let raw = json!({
            "store": {"backend": "kv_default"},
            "admin": {"principals": ["ops"], "attributes": {"roles": ["admin"]}},
            "prices": {"m": {"input": 1, "output": "2.5"}},
            "extra": 1,
            "keys": [{"id": "gk_ci", "secret_sha256": "AB".repeat(32), "owner": "ci"}],
        });
        let mut warnings = Vec::new();
        let config = parse(Some(&raw), &storage(), &mut warnings)
            .unwrap()
            .unwrap();
        assert_eq!(config.backend, "kv_default");
        assert!(!config.required);
        assert_eq!(config.over_budget_status, 429);
        assert_eq!(config.admin_principals, ["ops"]);
        assert_eq!(config.admin_attributes["roles"], ["admin"]);
        assert_eq!(
            config.prices,
            [(
                "m".to_string(),
                Price {
                    input: 1.0,
                    output: 2.5,
                    cached_input: 1.0
                }
            )]
        );
        assert_eq!(warnings, ["unknown key 'gateway_keys.extra' (ignored)"]);
        assert_eq!(config.keys[0].secret_sha256, "ab".repeat(32));
        assert_eq!(config.keys[0].settings, json!({"owner": "ci"}));
        assert_eq!(parse(None, &storage(), &mut warnings).unwrap(), None);
    }

    #[test]
    fn mistakes_name_their_key() {
        for (raw, key) in [
            (json!({}), "gateway_keys.store"),
            (
                json!({"store": {"backend": "nope"}}),
                "gateway_keys.store.backend",
            ),
            (
                json!({"store": {"backend": "kv_default"}, "over_budget_status": 403}),
                "gateway_keys.over_budget_status",
            ),
            (
                json!({"store": {"backend": "kv_default"}, "prices": {"m": {"input": -1}}}),
                "gateway_keys.prices.m.input",
            ),
            (
                json!({"store": {"backend": "kv_default"}, "keys": [{"id": "gk_a", "secret_sha256": "abc"}]}),
                "gateway_keys.keys[0].secret_sha256",
            ),
            (
                json!({"store": {"backend": "kv_default"}, "keys": [{"id": "key a"}]}),
                "gateway_keys.keys[0].id",
            ),
        ] {
            let error = parse(Some(&raw), &storage(), &mut Vec::new()).unwrap_err();
            assert_eq!(error.key, key, "{raw}");
        }
    }
}
