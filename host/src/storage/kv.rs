//! `kv`: a small persistent key-value store, for plugins and for the host's own stores.
//!
//! **Provides.** [`KvStore`], one table `(namespace, key, value, PRIMARY KEY(namespace, key))`
//! in one SQLite database (a `kv_sqlite` backend's file, or memory when none is given), and
//! [`KvNamespace`], a handle on one namespace. Plugins get the table [`PLUGIN_TABLE`]
//! ([`KvStore::open`]) and their provider id as namespace, so two providers served by the same
//! plugin never see each other's keys; the host's stores (the model registry, the prompts)
//! live in [`HOST_TABLE`] ([`KvStore::open_host`]) under the namespace their
//! `storage.stores` reference names, out of every plugin's reach. `list_keys` answers in
//! ascending byte order of the UTF-8 keys.
//!
//! **How.** SQLite runs in WAL mode (readers do not wait for the writer; other parts of the
//! host may open the same file) with a busy timeout. Every operation runs on tokio's
//! blocking pool (`spawn_blocking`), never on an async worker thread; one connection,
//! behind a mutex, serves all of them.
//!
//! **Limits** ([`KvError::TooLarge`], whose text gives the limit): [`MAX_KEY_BYTES`] per key
//! (and per listing prefix), [`MAX_VALUE_BYTES`] per value, [`MAX_NAMESPACE_BYTES`] of keys
//! and values per namespace, [`MAX_LISTED_KEYS`] keys per listing.
//!
//! **Failures.** Anything SQLite reports (unreadable file, full disk, a lock held past the
//! busy timeout) is [`KvError::Backend`] with SQLite's reason; no key or value is ever put
//! in an error text.

use crate::config::storage::{Backend, KvStoreRef, StorageConfig};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Longest key (and `list_keys` prefix), in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Most bytes of keys and values one namespace may hold, so that a plugin cannot fill the
/// disk.
pub const MAX_NAMESPACE_BYTES: u64 = 64 * 1024 * 1024;
/// Most keys one `list_keys` returns; a plugin with more should list by a longer prefix.
pub const MAX_LISTED_KEYS: usize = 10_000;
pub use crate::storage::sqlite::BUSY_TIMEOUT;

/// The table of the plugins' keys.
pub const PLUGIN_TABLE: &str = "plugin_kv";
/// The table of the host's stores.
pub const HOST_TABLE: &str = "ogx_kv";

/// Why a kv operation failed (the WIT `kv-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The key, the value or the namespace would exceed a limit; the text gives it.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The store could not be read or written; the text says why.
    #[error("kv store: {0}")]
    Backend(String),
}

fn backend(error: impl std::fmt::Display) -> KvError {
    KvError::Backend(error.to_string())
}

/// The store shared by every provider; see the module documentation.
#[derive(Debug, Clone)]
pub struct KvStore {
    connection: Arc<Mutex<Connection>>,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
    /// [`PLUGIN_TABLE`] or [`HOST_TABLE`].
    table: &'static str,
}

impl KvStore {
    /// Opens the plugins' table ([`PLUGIN_TABLE`]) of the database at `path` (created with
    /// its directory if needed), or of an in-memory one for `None`. Called at start-up; it
    /// blocks briefly on the file system.
    pub fn open(path: Option<&Path>) -> Result<Self, KvError> {
        Self::open_table(path, PLUGIN_TABLE)
    }

    /// Opens the host's table ([`HOST_TABLE`]); otherwise as [`KvStore::open`].
    pub fn open_host(path: Option<&Path>) -> Result<Self, KvError> {
        Self::open_table(path, HOST_TABLE)
    }

    fn open_table(path: Option<&Path>, table: &'static str) -> Result<Self, KvError> {
        let connection = match path {
            Some(path) => crate::storage::sqlite::open(path)
                .map_err(|error| KvError::Backend(error.to_string()))?,
            None => Connection::open_in_memory().map_err(backend)?,
        };
        connection
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    namespace TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value BLOB NOT NULL,
                    PRIMARY KEY (namespace, key)
                )"
            ))
            .map_err(backend)?;
        Ok(KvStore {
            connection: Arc::new(Mutex::new(connection)),
            path: path.map(Path::to_path_buf),
            table,
        })
    }

    /// The database file; `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A handle on one namespace (a provider id).
    pub fn namespace(self: &Arc<Self>, namespace: impl Into<String>) -> KvNamespace {
        KvNamespace {
            store: Arc::clone(self),
            namespace: namespace.into(),
        }
    }

    /// The value stored under `key`, or `None`.
    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        check_key("key", key)?;
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        let table = self.table;
        self.run(move |connection| {
            connection
                .query_row(
                    &format!("SELECT value FROM {table} WHERE namespace = ?1 AND key = ?2"),
                    params![namespace, key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(backend)
        })
        .await
    }

    /// Stores `value` under `key`, replacing what was there.
    pub async fn set(&self, namespace: &str, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        check_key("key", key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(KvError::TooLarge(format!(
                "the value is {} bytes; the limit is {MAX_VALUE_BYTES} bytes",
                value.len()
            )));
        }
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        let table = self.table;
        self.run(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(backend)?;
            let others: i64 = transaction
                .query_row(
                    &format!(
                        "SELECT COALESCE(SUM(length(CAST(key AS BLOB)) + length(value)), 0)
                         FROM {table} WHERE namespace = ?1 AND key <> ?2"
                    ),
                    params![namespace, key],
                    |row| row.get(0),
                )
                .map_err(backend)?;
            let after = others.max(0) as u64 + (key.len() + value.len()) as u64;
            if after > MAX_NAMESPACE_BYTES {
                return Err(KvError::TooLarge(format!(
                    "the namespace would hold {after} bytes; the limit is {MAX_NAMESPACE_BYTES} bytes per provider"
                )));
            }
            transaction
                .execute(
                    &format!(
                        "INSERT INTO {table} (namespace, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value"
                    ),
                    params![namespace, key, value],
                )
                .map_err(backend)?;
            transaction.commit().map_err(backend)
        })
        .await
    }

    /// Removes `key`; removing a missing key is not an error.
    pub async fn delete(&self, namespace: &str, key: &str) -> Result<(), KvError> {
        check_key("key", key)?;
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        let table = self.table;
        self.run(move |connection| {
            connection
                .execute(
                    &format!("DELETE FROM {table} WHERE namespace = ?1 AND key = ?2"),
                    params![namespace, key],
                )
                .map(drop)
                .map_err(backend)
        })
        .await
    }

    /// The keys that start with `prefix`, in ascending order.
    pub async fn list_keys(&self, namespace: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        check_key("prefix", prefix)?;
        let (namespace, prefix) = (namespace.to_owned(), prefix.to_owned());
        let table = self.table;
        self.run(move |connection| {
            // Keys compare as bytes, so every key with the prefix sorts at or after it, and
            // they are contiguous: scan from the prefix and stop at the first key without
            // it. (LIKE would treat `%` and `_` in the prefix as wildcards.)
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT key FROM {table} WHERE namespace = ?1 AND key >= ?2 ORDER BY key"
                ))
                .map_err(backend)?;
            let mut rows = statement
                .query(params![namespace, prefix])
                .map_err(backend)?;
            let mut keys = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                let key: String = row.get(0).map_err(backend)?;
                if !key.starts_with(&prefix) {
                    break;
                }
                if keys.len() == MAX_LISTED_KEYS {
                    return Err(KvError::TooLarge(format!(
                        "more than {MAX_LISTED_KEYS} keys start with the prefix; list with a longer prefix"
                    )));
                }
                keys.push(key);
            }
            Ok(keys)
        })
        .await
    }

    /// Runs `work` with the connection on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite inconsistent (an open
            // transaction rolls back on drop), so a poisoned lock is still usable.
            let mut connection = connection.lock().unwrap_or_else(|p| p.into_inner());
            work(&mut connection)
        })
        .await
        .map_err(|error| KvError::Backend(format!("the kv task failed: {error}")))?
    }
}

/// The SQLite file behind `storage.stores.<store>`. Only `kv_sqlite` backends hold the host's
/// stores so far; any other type is an error that names the store and says what to use.
pub fn sqlite_file(
    storage: &StorageConfig,
    store: &str,
    reference: &KvStoreRef,
) -> Result<PathBuf, String> {
    match storage.backends.get(&reference.backend) {
        Some(Backend::KvSqlite { db_path, .. }) => Ok(db_path.clone()),
        Some(other) => Err(format!(
            "storage.stores.{store} uses backend `{}` of type {}, which ogx does not support yet: only kv_sqlite backends are supported; point storage.stores.{store}.backend at a kv_sqlite backend",
            reference.backend,
            other.type_name()
        )),
        None => Err(format!(
            "storage.stores.{store} references unknown backend `{}`",
            reference.backend
        )),
    }
}

fn check_key(what: &str, key: &str) -> Result<(), KvError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::TooLarge(format!(
            "the {what} is {} bytes; the limit is {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    Ok(())
}

/// One namespace of the store: a provider's keys (under its provider id), or a host store's.
#[derive(Debug, Clone)]
pub struct KvNamespace {
    pub store: Arc<KvStore>,
    pub namespace: String,
}

impl KvNamespace {
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        self.store.get(&self.namespace, key).await
    }
    pub async fn set(&self, key: &str, value: Vec<u8>) -> Result<(), KvError> {
        self.store.set(&self.namespace, key, value).await
    }
    pub async fn delete(&self, key: &str) -> Result<(), KvError> {
        self.store.delete(&self.namespace, key).await
    }
    pub async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, KvError> {
        self.store.list_keys(&self.namespace, prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Arc<KvStore> {
        Arc::new(KvStore::open(None).unwrap())
    }

    #[tokio::test]
    async fn set_get_replace_delete() {
        let kv = memory().namespace("vllm-local");
        assert_eq!(kv.get("token").await, Ok(None));
        kv.set("token", b"one".to_vec()).await.unwrap();
        assert_eq!(kv.get("token").await, Ok(Some(b"one".to_vec())));
        kv.set("token", b"two".to_vec()).await.unwrap();
        assert_eq!(kv.get("token").await, Ok(Some(b"two".to_vec())));
        kv.set("empty", Vec::new()).await.unwrap();
        assert_eq!(kv.get("empty").await, Ok(Some(Vec::new())));
        kv.delete("token").await.unwrap();
        assert_eq!(kv.get("token").await, Ok(None));
        // Deleting a missing key is not an error.
        kv.delete("token").await.unwrap();
        kv.delete("never-there").await.unwrap();
    }

    #[tokio::test]
    async fn list_keys_by_prefix_in_order() {
        let kv = memory().namespace("p");
        for key in [
            "models/b", "models/a", "models", "modelz", "other", "mod%", "mod_x", "é", "z", "",
        ] {
            kv.set(key, key.as_bytes().to_vec()).await.unwrap();
        }
        let cases: &[(&str, &[&str])] = &[
            ("models/", &["models/a", "models/b"]),
            ("models", &["models", "models/a", "models/b"]),
            ("model", &["models", "models/a", "models/b", "modelz"]),
            ("mod%", &["mod%"]),
            ("mod_", &["mod_x"]),
            ("nothing", &[]),
            (
                "",
                &[
                    "", "mod%", "mod_x", "models", "models/a", "models/b", "modelz", "other", "z",
                    "é",
                ],
            ),
        ];
        for (prefix, expected) in cases {
            assert_eq!(kv.list_keys(prefix).await.unwrap(), *expected, "{prefix:?}");
        }
    }

    #[tokio::test]
    async fn namespaces_are_isolated() {
        let store = memory();
        let a = store.namespace("provider-a");
        let b = store.namespace("provider-b");
        a.set("key", b"a".to_vec()).await.unwrap();
        b.set("key", b"b".to_vec()).await.unwrap();
        a.set("only-a", b"1".to_vec()).await.unwrap();
        assert_eq!(a.get("key").await, Ok(Some(b"a".to_vec())));
        assert_eq!(b.get("key").await, Ok(Some(b"b".to_vec())));
        assert_eq!(b.get("only-a").await, Ok(None));
        assert_eq!(b.list_keys("").await.unwrap(), ["key"]);
        b.delete("key").await.unwrap();
        assert_eq!(a.get("key").await, Ok(Some(b"a".to_vec())));
    }

    #[tokio::test]
    async fn plugins_never_see_the_host_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let host = Arc::new(KvStore::open_host(Some(&path)).unwrap());
        let plugins = Arc::new(KvStore::open(Some(&path)).unwrap());
        host.namespace("registry")
            .set("model", b"host".to_vec())
            .await
            .unwrap();
        // A provider whose id is the host store's namespace still sees nothing.
        let provider = plugins.namespace("registry");
        assert_eq!(provider.get("model").await, Ok(None));
        assert!(provider.list_keys("").await.unwrap().is_empty());
        provider.set("model", b"plugin".to_vec()).await.unwrap();
        assert_eq!(
            host.namespace("registry").get("model").await,
            Ok(Some(b"host".to_vec()))
        );
    }

    #[tokio::test]
    async fn limits_are_enforced_with_the_limit_in_the_text() {
        let kv = memory().namespace("p");
        let long_key = "k".repeat(MAX_KEY_BYTES + 1);
        let key_at_limit = "k".repeat(MAX_KEY_BYTES);
        let too_large = |result: Result<_, KvError>, limit: usize| match result {
            Err(KvError::TooLarge(text)) => {
                assert!(text.contains(&limit.to_string()), "{text}")
            }
            other => panic!("expected TooLarge, got {other:?}"),
        };
        too_large(
            kv.set(&long_key, b"v".to_vec()).await.map(drop),
            MAX_KEY_BYTES,
        );
        too_large(kv.get(&long_key).await.map(drop), MAX_KEY_BYTES);
        too_large(kv.delete(&long_key).await.map(drop), MAX_KEY_BYTES);
        too_large(kv.list_keys(&long_key).await.map(drop), MAX_KEY_BYTES);
        too_large(
            kv.set("k", vec![0; MAX_VALUE_BYTES + 1]).await.map(drop),
            MAX_VALUE_BYTES,
        );
        kv.set(&key_at_limit, vec![7; MAX_VALUE_BYTES])
            .await
            .unwrap();
        assert_eq!(
            kv.get(&key_at_limit).await.unwrap().map(|v| v.len()),
            Some(MAX_VALUE_BYTES)
        );
    }

    #[tokio::test]
    async fn a_namespace_cannot_grow_past_its_quota() {
        let store = memory();
        let kv = store.namespace("greedy");
        let per_value = MAX_VALUE_BYTES;
        let fits = (MAX_NAMESPACE_BYTES as usize) / (per_value + 8);
        for i in 0..fits {
            kv.set(&format!("k{i:06}"), vec![0; per_value])
                .await
                .unwrap();
        }
        let result = kv.set("one-more", vec![0; per_value]).await;
        assert!(
            matches!(result, Err(KvError::TooLarge(ref t)) if t.contains("per provider")),
            "{result:?}"
        );
        // Replacing an existing key counts its new size only.
        kv.set("k000000", vec![1; per_value]).await.unwrap();
        // Other namespaces are unaffected.
        store
            .namespace("modest")
            .set("k", vec![0; per_value])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn values_persist_across_reopen_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("registry.db");
        {
            let store = Arc::new(KvStore::open(Some(&path)).unwrap());
            assert_eq!(store.path(), Some(path.as_path()));
            store
                .namespace("p")
                .set("kept", b"value".to_vec())
                .await
                .unwrap();
            let mode: String = store
                .connection
                .lock()
                .unwrap()
                .query_row("PRAGMA journal_mode", [], |row| row.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
        let store = Arc::new(KvStore::open(Some(&path)).unwrap());
        assert_eq!(
            store.namespace("p").get("kept").await,
            Ok(Some(b"value".to_vec()))
        );
        assert_eq!(store.namespace("q").get("kept").await, Ok(None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writers() {
        let store = memory();
        let tasks: Vec<_> = (0..32)
            .map(|i| {
                let kv = store.namespace("p");
                tokio::spawn(async move { kv.set(&format!("k{i:02}"), vec![i as u8]).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.namespace("p").list_keys("k").await.unwrap().len(), 32);
    }

    #[test]
    fn an_unopenable_path_is_a_backend_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the database file should be.
        let error = KvStore::open(Some(dir.path())).unwrap_err();
        match error {
            KvError::Backend(text) => {
                assert!(text.contains(&dir.path().display().to_string()), "{text}")
            }
            other => panic!("{other:?}"),
        }
    }
}
