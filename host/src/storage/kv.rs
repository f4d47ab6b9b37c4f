//! `kv`: a small persistent key-value store, for plugins and for the host's own stores.
//!
//! **Provides.** [`KvStore`], one table `(namespace, key, value, PRIMARY KEY(namespace, key))`
//! in one [`SqlDatabase`] (a `kv_sqlite` backend's file, a `kv_postgres` backend's database,
//! or SQLite in memory), and [`KvNamespace`], a handle on one namespace. Plugins get the table
//! [`PLUGIN_TABLE`] and their provider id as namespace, so two providers served by the same
//! plugin never see each other's keys; the host's stores (the model registry, the prompts)
//! live in [`HOST_TABLE`] on SQLite (the backend's `table_name` on PostgreSQL) under the
//! namespace their `storage.stores` reference names, out of every plugin's reach.
//! `list_keys` answers in ascending byte order of the UTF-8 keys (on PostgreSQL the key
//! column uses the `C` collation for that).
//!
//! **How.** Every operation runs on tokio's blocking pool (`spawn_blocking`), never on an
//! async worker thread; see [`super::sql`] for the connections behind it.
//!
//! **Limits** ([`KvError::TooLarge`], whose text gives the limit): [`MAX_KEY_BYTES`] per key
//! (and per listing prefix), [`MAX_VALUE_BYTES`] per value, [`MAX_NAMESPACE_BYTES`] of keys
//! and values per namespace (on PostgreSQL two replicas writing one namespace at the same
//! instant may overshoot it by one value each), [`MAX_LISTED_KEYS`] keys per listing.
//!
//! **Failures.** Anything the database reports (unreadable file, full disk, a lock held past
//! the busy timeout, a lost PostgreSQL connection) is [`KvError::Backend`] with its reason;
//! no key or value is ever put in an error text.

use super::sql::{SqlDatabase, SqlError, SqlSession, SqlValue};
use std::path::Path;
use std::sync::Arc;

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
/// The table of the host's stores on SQLite.
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

impl From<SqlError> for KvError {
    fn from(error: SqlError) -> Self {
        KvError::Backend(error.0)
    }
}

/// The store shared by every provider; see the module documentation.
#[derive(Debug, Clone)]
pub struct KvStore {
    db: Arc<SqlDatabase>,
    /// [`PLUGIN_TABLE`], [`HOST_TABLE`] or a `kv_postgres` backend's `table_name`.
    table: String,
}

impl KvStore {
    /// Opens the plugins' table ([`PLUGIN_TABLE`]) of the SQLite database at `path` (created
    /// with its directory if needed), or of an in-memory one for `None`. Blocks briefly on the
    /// file system.
    pub fn open(path: Option<&Path>) -> Result<Self, KvError> {
        Self::on(sqlite(path)?, PLUGIN_TABLE)
    }

    /// Opens the host's table ([`HOST_TABLE`]); otherwise as [`KvStore::open`].
    pub fn open_host(path: Option<&Path>) -> Result<Self, KvError> {
        Self::on(sqlite(path)?, HOST_TABLE)
    }

    /// The table `table` of `db`, created if needed. Blocks: call it at start-up or on a
    /// blocking thread. `table` must be a plain identifier (the caller checks config values).
    pub fn on(db: Arc<SqlDatabase>, table: &str) -> Result<Self, KvError> {
        let dialect = db.dialect();
        db.write(|s: &mut dyn SqlSession| {
            s.lock_schema()?;
            s.execute(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {table} (
                        namespace {text} NOT NULL,
                        key {text} NOT NULL,
                        value {bytes} NOT NULL,
                        PRIMARY KEY (namespace, key)
                    )",
                    text = dialect.byte_ordered_text_type(),
                    bytes = dialect.bytes_type()
                ),
                &[],
            )
        })?;
        if !db.read(|s: &mut dyn SqlSession| s.has_column(table, "namespace"))? {
            return Err(KvError::Backend(format!(
                "the table {table} exists without a `namespace` column (another program's layout, such as OGX's key/value/expiration table): give ogx its own table"
            )));
        }
        Ok(KvStore {
            db,
            table: table.to_string(),
        })
    }

    /// The database behind the store.
    pub fn database(&self) -> &Arc<SqlDatabase> {
        &self.db
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
        let sql = format!(
            "SELECT value FROM {} WHERE namespace = $1 AND key = $2",
            self.table
        );
        let params = [text(namespace), text(key)];
        self.run(move |db| {
            db.read(|s: &mut dyn SqlSession| {
                s.query_row(&sql, &params)?
                    .map(|row| {
                        row.into_iter()
                            .next()
                            .unwrap_or(SqlValue::Null)
                            .into_bytes()
                    })
                    .transpose()
            })
            .map_err(KvError::from)
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
        let table = self.table.clone();
        self.run(move |db| {
            let dialect = db.dialect();
            db.write(|s: &mut dyn SqlSession| {
                let others = s
                    .query_row(
                        &format!(
                            "SELECT COALESCE(SUM({} + {}), 0) FROM {table}
                             WHERE namespace = $1 AND key <> $2",
                            dialect.byte_length("key"),
                            dialect.byte_length("value")
                        ),
                        &[text(&namespace), text(&key)],
                    )?
                    .and_then(|row| row.into_iter().next())
                    .map(|v| v.as_i64())
                    .transpose()?
                    .unwrap_or(0);
                let after = others.max(0) as u64 + (key.len() + value.len()) as u64;
                if after > MAX_NAMESPACE_BYTES {
                    return Err(KvError::TooLarge(format!(
                        "the namespace would hold {after} bytes; the limit is {MAX_NAMESPACE_BYTES} bytes per provider"
                    )));
                }
                s.execute(
                    &format!(
                        "INSERT INTO {table} (namespace, key, value) VALUES ($1, $2, $3)
                         ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value"
                    ),
                    &[text(&namespace), text(&key), SqlValue::Bytes(value)],
                )?;
                Ok(())
            })
        })
        .await
    }

    /// Removes `key`; removing a missing key is not an error.
    pub async fn delete(&self, namespace: &str, key: &str) -> Result<(), KvError> {
        check_key("key", key)?;
        let sql = format!(
            "DELETE FROM {} WHERE namespace = $1 AND key = $2",
            self.table
        );
        let params = [text(namespace), text(key)];
        self.run(move |db| {
            db.write(|s: &mut dyn SqlSession| s.execute(&sql, &params).map(drop))
                .map_err(KvError::from)
        })
        .await
    }

    /// The keys that start with `prefix`, in ascending order.
    pub async fn list_keys(&self, namespace: &str, prefix: &str) -> Result<Vec<String>, KvError> {
        check_key("prefix", prefix)?;
        // Keys compare as bytes, so every key with the prefix sorts at or after it, and they
        // are contiguous: scan from the prefix and stop at the first key without it. (LIKE
        // would treat `%` and `_` in the prefix as wildcards.) One row more than the limit
        // says whether it is exceeded.
        let sql = format!(
            "SELECT key FROM {} WHERE namespace = $1 AND key >= $2 ORDER BY key LIMIT $3",
            self.table
        );
        let prefix = prefix.to_owned();
        let params = [
            text(namespace),
            text(&prefix),
            SqlValue::Int(MAX_LISTED_KEYS as i64 + 1),
        ];
        self.run(move |db| {
            let rows = db.read(|s: &mut dyn SqlSession| s.query(&sql, &params))?;
            let mut keys = Vec::new();
            for row in rows {
                let key = row.into_iter().next().unwrap_or(SqlValue::Null).into_text()?;
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

    /// Runs `work` with the database on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SqlDatabase) -> Result<T, KvError> + Send + 'static,
    ) -> Result<T, KvError> {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|error| KvError::Backend(format!("the kv task failed: {error}")))?
    }
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

fn sqlite(path: Option<&Path>) -> Result<Arc<SqlDatabase>, KvError> {
    Ok(Arc::new(match path {
        Some(path) => {
            SqlDatabase::open_sqlite(path).map_err(|error| KvError::Backend(error.to_string()))?
        }
        None => SqlDatabase::sqlite_in_memory(),
    }))
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
            store
                .namespace("p")
                .set("kept", b"value".to_vec())
                .await
                .unwrap();
            assert_eq!(
                store
                    .database()
                    .read(|s: &mut dyn SqlSession| s.query_row("PRAGMA journal_mode", &[]))
                    .unwrap()
                    .unwrap()[0],
                SqlValue::Text("wal".into())
            );
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
