//! `storage:` (OGX's `src/ogx/core/storage/datatypes.py`): named backends discriminated by
//! `type`, and the stores of the stack core that reference them.
//!
//! Defaults are OGX's. Without `storage:` (or without `storage.backends`) there are two SQLite
//! backends, `kv_default` at `<dir>/kvstore.db` and `sql_default` at `<dir>/sql_store.db`, where
//! `<dir>` is `$SQLITE_STORE_DIR` if set, else `$OGX_CONFIG_DIR/distributions` (default
//! `~/.ogx/distributions`); it does **not** include the distro name. A store that is not written
//! gets its default reference: metadata → `kv_default`/`registry`, inference →
//! `sql_default`/`inference_store`, conversations → `sql_default`/`openai_conversations`, prompts
//! → `sql_default`/`prompts`, connectors → `sql_default`/`connectors`, responses and
//! vector_stores → none. A store written as `null` is off; `inference.enabled: false` keeps the
//! reference but turns the history off.
//!
//! `prompts` and `connectors` are SQL `{backend, table_name}` references in OGX 1.5.0. The
//! earlier KV layout `{backend, namespace}` is still read as such (see [`StoreRef`]): OGX 1.5.0
//! rewrites it into the SQL table `<namespace>` on `sql_<x>`, ogx keeps using the KV namespace
//! it used before, so that prompts stored by an earlier ogx stay where they are.
//!
//! Fails, with OGX's messages, when a store references a backend that does not exist or is of the
//! wrong family (kv_* vs sql_*), and when `storage.stores.metadata` is off.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::backends::parse_backend;
pub use super::backends::{BACKEND_TYPES, Backend, MongodbKv, PostgresKv, PostgresSql};
use super::env::{Lookup, expand_user};
use super::fields::{Invalid, Section, type_name};

/// `storage:`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// By name, e.g. `kv_default`.
    pub backends: BTreeMap<String, Backend>,
    pub stores: StoresConfig,
}

/// A key-value store reference: `{backend, namespace}`.
#[derive(Debug, Clone, PartialEq)]
pub struct KvStoreRef {
    pub backend: String,
    pub namespace: String,
}

/// A SQL store reference: `{backend, table_name}`.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlStoreRef {
    pub backend: String,
    pub table_name: String,
}

/// A SQL store with a write queue (inference, responses).
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceStoreRef {
    pub backend: String,
    pub table_name: String,
    /// Default 10000.
    pub max_write_queue_size: u64,
    /// Default 4.
    pub num_writers: u64,
    /// `enabled` (default true): when false the store is not opened, nothing is recorded and
    /// the history routes answer 501, as in OGX 1.5.0.
    pub enabled: bool,
}

/// A store that OGX 1.5.0 keeps in a SQL table but earlier versions kept in a KV namespace
/// (`prompts`, `connectors`): which layout the config names.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreRef {
    /// `{backend, table_name}`, OGX 1.5.0's layout.
    Sql(SqlStoreRef),
    /// `{backend, namespace}`, the earlier layout.
    Kv(KvStoreRef),
}

impl StoreRef {
    pub fn backend(&self) -> &str {
        match self {
            StoreRef::Sql(r) => &r.backend,
            StoreRef::Kv(r) => &r.backend,
        }
    }
}

/// `storage.stores`. `None`: the store is off.
#[derive(Debug, Clone, PartialEq)]
pub struct StoresConfig {
    /// The resource registry; required.
    pub metadata: Option<KvStoreRef>,
    /// Chat completions; required when inference is served.
    pub inference: Option<InferenceStoreRef>,
    pub conversations: Option<SqlStoreRef>,
    pub responses: Option<InferenceStoreRef>,
    pub prompts: Option<StoreRef>,
    /// Accepted, not served yet.
    pub connectors: Option<StoreRef>,
    /// Accepted, not served yet (OGX injects it into vector_io providers).
    pub vector_stores: Option<SqlStoreRef>,
}

impl Default for StoresConfig {
    fn default() -> Self {
        let sql = |table: &str| SqlStoreRef {
            backend: "sql_default".into(),
            table_name: table.into(),
        };
        Self {
            metadata: Some(KvStoreRef {
                backend: "kv_default".into(),
                namespace: "registry".into(),
            }),
            inference: Some(InferenceStoreRef {
                backend: "sql_default".into(),
                table_name: "inference_store".into(),
                max_write_queue_size: 10000,
                num_writers: 4,
                enabled: true,
            }),
            conversations: Some(sql("openai_conversations")),
            responses: None,
            prompts: Some(StoreRef::Sql(sql("prompts"))),
            connectors: Some(StoreRef::Sql(sql("connectors"))),
            vector_stores: None,
        }
    }
}

impl Default for StorageConfig {
    /// OGX's default, with the directory taken from the process environment.
    fn default() -> Self {
        Self::default_for(&crate::environment::Environment::process().lookup())
    }
}

impl StorageConfig {
    /// OGX's default: two SQLite files (see the module documentation for the directory).
    pub fn default_for(lookup: Lookup<'_>) -> Self {
        let dir = match lookup("SQLITE_STORE_DIR").filter(|d| !d.is_empty()) {
            Some(d) => PathBuf::from(expand_user(&d, lookup)),
            None => super::distributions::distributions_dir(lookup),
        };
        let mut backends = BTreeMap::new();
        backends.insert(
            "kv_default".into(),
            Backend::KvSqlite {
                db_path: dir.join("kvstore.db"),
                namespace: None,
            },
        );
        backends.insert(
            "sql_default".into(),
            Backend::SqlSqlite {
                db_path: dir.join("sql_store.db"),
                pool_pre_ping: true,
            },
        );
        Self {
            backends,
            stores: StoresConfig::default(),
        }
    }

    /// Checks that `reference` (at key `store`) names an existing backend of the right family.
    pub fn check_reference(
        &self,
        store: &str,
        backend: &str,
        want_kv: bool,
    ) -> Result<(), Invalid> {
        let Some(found) = self.backends.get(backend) else {
            let names: Vec<String> = self.backends.keys().map(|k| format!("'{k}'")).collect();
            return Err(Invalid::new(
                store,
                format!(
                    "{store} references unknown backend '{backend}'. Available backends: [{}]",
                    names.join(", ")
                ),
                format!(
                    "Add a backend named '{backend}' under storage.backends, or name one of the available ones."
                ),
            ));
        };
        if found.is_kv() != want_kv {
            let (family, examples) = if want_kv {
                ("kv_*", "kv_sqlite")
            } else {
                ("sql_*", "sql_sqlite")
            };
            return Err(Invalid::new(
                store,
                format!(
                    "{store} references backend '{backend}' of type '{}', but a backend of type {family} is required.",
                    found.type_name()
                ),
                format!("Point it at a backend of type {examples} (or another {family} type)."),
            ));
        }
        Ok(())
    }

    fn check_stores(&self) -> Result<(), Invalid> {
        let s = &self.stores;
        let Some(metadata) = &s.metadata else {
            return Err(Invalid::new(
                "storage.stores.metadata",
                "storage.stores.metadata must be configured with a kv_* backend",
                "Add `metadata: {backend: kv_default, namespace: registry}` under storage.stores.",
            ));
        };
        self.check_reference("storage.stores.metadata", &metadata.backend, true)?;
        let sql = [
            (
                "storage.stores.inference",
                s.inference.as_ref().map(|r| &r.backend),
            ),
            (
                "storage.stores.conversations",
                s.conversations.as_ref().map(|r| &r.backend),
            ),
            (
                "storage.stores.responses",
                s.responses.as_ref().map(|r| &r.backend),
            ),
            (
                "storage.stores.vector_stores",
                s.vector_stores.as_ref().map(|r| &r.backend),
            ),
        ];
        for (store, backend) in sql {
            if let Some(b) = backend {
                self.check_reference(store, b, false)?;
            }
        }
        let either = [
            ("storage.stores.prompts", &s.prompts),
            ("storage.stores.connectors", &s.connectors),
        ];
        for (store, reference) in either {
            match reference {
                Some(StoreRef::Sql(r)) => self.check_reference(store, &r.backend, false)?,
                Some(StoreRef::Kv(r)) => self.check_reference(store, &r.backend, true)?,
                None => {}
            }
        }
        Ok(())
    }
}

const STORAGE_KEYS: &[&str] = &["backends", "stores"];
const STORE_NAMES: &[&str] = &[
    "metadata",
    "inference",
    "conversations",
    "responses",
    "prompts",
    "connectors",
    "vector_stores",
];
const KV_REF_KEYS: &[&str] = &["backend", "namespace"];
const SQL_REF_KEYS: &[&str] = &["backend", "table_name"];
const QUEUED_REF_KEYS: &[&str] = &[
    "backend",
    "table_name",
    "max_write_queue_size",
    "num_writers",
    "enabled",
];
const EITHER_REF_KEYS: &[&str] = &["backend", "table_name", "namespace"];

/// Reads `storage:` (absent or null: the default), checks its references, and appends a warning
/// for each key OGX does not know.
pub fn parse_storage(
    value: Option<&Value>,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<StorageConfig, Invalid> {
    let defaults = StorageConfig::default_for(lookup);
    let Some(section) = Section::of(value, "storage")? else {
        return Ok(defaults);
    };
    section.warn_unknown(STORAGE_KEYS, warnings);
    let backends = match Section::of(section.get("backends"), "storage.backends")? {
        None => defaults.backends,
        Some(b) => {
            let mut out = BTreeMap::new();
            for (name, raw) in b.map {
                let path = b.key(name);
                out.insert(name.clone(), parse_backend(raw, &path, lookup, warnings)?);
            }
            out
        }
    };
    let stores = match Section::of(section.get("stores"), "storage.stores")? {
        None => StoresConfig::default(),
        Some(s) => parse_stores(&s, warnings)?,
    };
    let storage = StorageConfig { backends, stores };
    storage.check_stores()?;
    Ok(storage)
}

/// One `storage.stores` entry: not written, the `default` reference applies; written as null,
/// the store is off; a mapping is read by `read`, after its unknown keys are warned about.
fn store_ref<T>(
    stores: &Section<'_>,
    name: &str,
    known: &[&str],
    default: Option<T>,
    warnings: &mut Vec<String>,
    read: impl FnOnce(&Section<'_>) -> Result<T, Invalid>,
) -> Result<Option<T>, Invalid> {
    match stores.map.get(name) {
        None => Ok(default),
        Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            let path = stores.key(name);
            let s = Section { map, path: &path };
            s.warn_unknown(known, warnings);
            read(&s).map(Some)
        }
        Some(other) => Err(Invalid::new(
            stores.key(name),
            format!(
                "expected a store reference (a mapping), found {}",
                type_name(other)
            ),
            format!(
                "Write it as a mapping with the keys {}, or null to turn the store off.",
                known.join(", ")
            ),
        )),
    }
}

const BACKEND_FIX: &str = "Name one of the backends under storage.backends.";

fn kv_store(
    stores: &Section<'_>,
    name: &str,
    default: Option<KvStoreRef>,
    warnings: &mut Vec<String>,
) -> Result<Option<KvStoreRef>, Invalid> {
    store_ref(stores, name, KV_REF_KEYS, default, warnings, |s| {
        Ok(KvStoreRef {
            backend: s.required_string("backend", BACKEND_FIX)?,
            namespace: s.required_string(
                "namespace",
                &format!("Add a key prefix, e.g. `namespace: {name}`."),
            )?,
        })
    })
}

fn sql_store(
    stores: &Section<'_>,
    name: &str,
    default: Option<SqlStoreRef>,
    warnings: &mut Vec<String>,
) -> Result<Option<SqlStoreRef>, Invalid> {
    store_ref(stores, name, SQL_REF_KEYS, default, warnings, |s| {
        Ok(SqlStoreRef {
            backend: s.required_string("backend", BACKEND_FIX)?,
            table_name: s
                .required_string("table_name", "Add `table_name:` with the table to use.")?,
        })
    })
}

/// A SQL store with a write queue; `default_table` is the table when `table_name` is not written
/// (responses has one, inference does not).
fn queued_store(
    stores: &Section<'_>,
    name: &str,
    default: Option<InferenceStoreRef>,
    default_table: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Option<InferenceStoreRef>, Invalid> {
    store_ref(stores, name, QUEUED_REF_KEYS, default, warnings, |s| {
        let table_name = match (s.string("table_name")?, default_table) {
            (Some(t), _) => t,
            (None, Some(t)) => t.to_owned(),
            (None, None) => {
                s.required_string("table_name", "Add `table_name:`, e.g. inference_store.")?
            }
        };
        Ok(InferenceStoreRef {
            backend: s.required_string("backend", BACKEND_FIX)?,
            table_name,
            max_write_queue_size: s.u64_at_least("max_write_queue_size", 1)?.unwrap_or(10000),
            num_writers: s.u64_at_least("num_writers", 1)?.unwrap_or(4),
            enabled: s.bool("enabled")?.unwrap_or(true),
        })
    })
}

/// `prompts` / `connectors`: `table_name` (OGX 1.5.0) or, without it, `namespace` (the earlier
/// KV layout, kept as such). Neither is an error naming both.
fn table_or_namespace(
    stores: &Section<'_>,
    name: &str,
    default: Option<StoreRef>,
    warnings: &mut Vec<String>,
) -> Result<Option<StoreRef>, Invalid> {
    store_ref(stores, name, EITHER_REF_KEYS, default, warnings, |s| {
        let backend = s.required_string("backend", BACKEND_FIX)?;
        if let Some(table_name) = s.string("table_name")? {
            return Ok(StoreRef::Sql(SqlStoreRef {
                backend,
                table_name,
            }));
        }
        match s.string("namespace")? {
            Some(namespace) => Ok(StoreRef::Kv(KvStoreRef { backend, namespace })),
            None => Err(Invalid::new(
                s.key("table_name"),
                "is required but missing",
                format!(
                    "Add `table_name: {name}` (a SQL table on a sql_* backend, OGX 1.5.0's layout), or \
                     `namespace: {name}` on a kv_* backend for the earlier key-value layout."
                ),
            )),
        }
    })
}

/// The stores of APIs ogx does not serve yet: accepted, and warned about when written.
const UNSERVED_STORES: &[(&str, &str)] = &[
    ("conversations", "the Conversations API"),
    ("connectors", "connectors"),
    ("vector_stores", "vector stores"),
];

/// The table OGX 1.5.0 keeps prompts in, whatever `table_name` says (`TABLE_PROMPTS`).
pub const PROMPTS_TABLE: &str = "prompts";

fn parse_stores(stores: &Section<'_>, warnings: &mut Vec<String>) -> Result<StoresConfig, Invalid> {
    stores.warn_unknown(STORE_NAMES, warnings);
    for (name, what) in UNSERVED_STORES {
        if stores.get(name).is_some_and(|v| !v.is_null()) {
            warnings.push(format!(
                "'{}' is accepted but not used: ogx does not serve {what} yet",
                stores.key(name)
            ));
        }
    }
    let parsed = parse_store_refs(stores, warnings)?;
    match &parsed.prompts {
        Some(StoreRef::Sql(r)) if r.table_name != PROMPTS_TABLE => warnings.push(format!(
            "'{}.table_name' is '{}', but prompts are kept in the table '{PROMPTS_TABLE}' on backend {}, as OGX \
             1.5.0 keeps them whatever table_name says (so that both can share the database)",
            stores.key("prompts"),
            r.table_name,
            r.backend
        )),
        Some(StoreRef::Kv(r)) => warnings.push(format!(
            "'{}' uses the earlier key-value layout (namespace '{}' on {}): ogx keeps prompts there; OGX 1.5.0 would \
             use the SQL table '{PROMPTS_TABLE}' instead. Write `{{backend: <a sql_* backend>, table_name: prompts}}` \
             to share prompts with OGX 1.5.0",
            stores.key("prompts"),
            r.namespace,
            r.backend
        )),
        _ => {}
    }
    Ok(parsed)
}

fn parse_store_refs(
    stores: &Section<'_>,
    warnings: &mut Vec<String>,
) -> Result<StoresConfig, Invalid> {
    let d = StoresConfig::default();
    Ok(StoresConfig {
        metadata: kv_store(stores, "metadata", d.metadata, warnings)?,
        inference: queued_store(stores, "inference", d.inference, None, warnings)?,
        conversations: sql_store(stores, "conversations", d.conversations, warnings)?,
        responses: queued_store(
            stores,
            "responses",
            None,
            Some("openai_responses"),
            warnings,
        )?,
        prompts: table_or_namespace(stores, "prompts", d.prompts, warnings)?,
        connectors: table_or_namespace(stores, "connectors", d.connectors, warnings)?,
        vector_stores: sql_store(stores, "vector_stores", None, warnings)?,
    })
}
