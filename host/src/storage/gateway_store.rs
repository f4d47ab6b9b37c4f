//! Where gateway keys and their counters live, shared by every replica that names the same
//! backend: a SQL database (`kv_sqlite`, `sql_sqlite`, `kv_postgres`, `sql_postgres`) or a
//! Redis server (`kv_redis`).
//!
//! **Provides.** [`GatewayStore`]: key records (opaque JSON text, each under its id and found
//! by its secret's hash) and counters. A counter is an integer under a name, with an optional
//! expiry; [`GatewayStore::add`] adds to it atomically and answers the new value, so that
//! replicas incrementing one counter at once each see a distinct total (this is what makes a
//! shared request limit exact). On SQL: the tables [`KEYS_TABLE`] and [`COUNTERS_TABLE`]
//! (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING`, atomic in SQLite's write transaction and
//! under PostgreSQL's row lock); expired counters are deleted now and then. On Redis: keys
//! under [`REDIS_PREFIX`] (`key:<id>`, `hash:<hash>`, the set `keys`, `counter:<name>`), the
//! multi-key writes in `MULTI`/`EXEC`, counters by `INCRBY` + `EXPIRE`.
//!
//! **Failures.** Every error is a [`GatewayStoreError`] with the backend's reason; no record
//! and no hash is ever put in its text.

use super::redis::{Command, RedisClient, Reply, command};
use super::sql::{SqlDatabase, SqlError, SqlSession, SqlValue};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The SQL table of key records.
pub const KEYS_TABLE: &str = "ogx_gateway_keys";
/// The SQL table of counters.
pub const COUNTERS_TABLE: &str = "ogx_gateway_counters";
/// The prefix of every Redis key ogx writes for gateway keys.
pub const REDIS_PREFIX: &str = "ogx:gateway_keys:";
/// Every this many counter additions, a SQL store deletes the expired counters.
const CLEANUP_EVERY: u64 = 1000;

/// A store operation that failed; the text is the backend's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("gateway key store: {0}")]
pub struct GatewayStoreError(pub String);

impl From<SqlError> for GatewayStoreError {
    fn from(error: SqlError) -> Self {
        GatewayStoreError(error.0)
    }
}

impl From<super::redis::RedisError> for GatewayStoreError {
    fn from(error: super::redis::RedisError) -> Self {
        GatewayStoreError(error.to_string())
    }
}

/// Keys and counters on one backend; see the module documentation.
#[derive(Clone)]
pub enum GatewayStore {
    Sql {
        db: Arc<SqlDatabase>,
        additions: Arc<AtomicU64>,
    },
    Redis(Arc<RedisClient>),
}

impl std::fmt::Debug for GatewayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GatewayStore::Sql { db, .. } => f.debug_tuple("GatewayStore::Sql").field(db).finish(),
            GatewayStore::Redis(client) => {
                f.debug_tuple("GatewayStore::Redis").field(client).finish()
            }
        }
    }
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_string())
}

impl GatewayStore {
    /// The store on a SQL database, its tables created if needed. Blocks: call it at start-up.
    pub fn on_sql(db: Arc<SqlDatabase>) -> Result<Self, GatewayStoreError> {
        db.write(|s: &mut dyn SqlSession| {
            s.lock_schema()?;
            s.execute(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (
                        key_id TEXT PRIMARY KEY,
                        secret_hash TEXT NOT NULL UNIQUE,
                        record TEXT NOT NULL
                    )"
                ),
                &[],
            )?;
            s.execute(
                &format!(
                    "CREATE TABLE IF NOT EXISTS {COUNTERS_TABLE} (
                        name TEXT PRIMARY KEY,
                        value BIGINT NOT NULL,
                        expires_at BIGINT NOT NULL
                    )"
                ),
                &[],
            )
        })?;
        Ok(GatewayStore::Sql {
            db,
            additions: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The store on a Redis server.
    pub fn on_redis(client: RedisClient) -> Self {
        GatewayStore::Redis(Arc::new(client))
    }

    async fn sql<T: Send + 'static>(
        db: &Arc<SqlDatabase>,
        work: impl FnOnce(&SqlDatabase) -> Result<T, SqlError> + Send + 'static,
    ) -> Result<T, GatewayStoreError> {
        let db = Arc::clone(db);
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| GatewayStoreError(format!("a store task failed: {e}")))?
            .map_err(GatewayStoreError::from)
    }

    /// The `record` of the key row whose `column` (a column name of ours) equals `value`.
    async fn sql_record(
        db: &Arc<SqlDatabase>,
        column: &'static str,
        value: &str,
    ) -> Result<Option<String>, GatewayStoreError> {
        let params = [text(value)];
        Self::sql(db, move |db| {
            db.read(|s: &mut dyn SqlSession| {
                s.query_row(
                    &format!("SELECT record FROM {KEYS_TABLE} WHERE {column} = $1"),
                    &params,
                )?
                .and_then(|row| row.into_iter().next())
                .map(SqlValue::into_text)
                .transpose()
            })
        })
        .await
    }

    async fn redis(
        client: &RedisClient,
        commands: Vec<Command>,
    ) -> Result<Vec<Reply>, GatewayStoreError> {
        let replies = client.pipeline(&commands).await?;
        for reply in &replies {
            if let Reply::Error(message) = reply {
                return Err(GatewayStoreError(format!(
                    "redis refused a command: {message}"
                )));
            }
        }
        Ok(replies)
    }

    /// Stores a new key record. Fails if the id or the hash is taken.
    pub async fn insert_key(
        &self,
        key_id: &str,
        secret_hash: &str,
        record: &str,
    ) -> Result<(), GatewayStoreError> {
        match self {
            GatewayStore::Sql { db, .. } => {
                let params = [text(key_id), text(secret_hash), text(record)];
                Self::sql(db, move |db| {
                    db.write(|s: &mut dyn SqlSession| {
                        s.execute(
                            &format!(
                                "INSERT INTO {KEYS_TABLE} (key_id, secret_hash, record) VALUES ($1, $2, $3)"
                            ),
                            &params,
                        )
                    })
                })
                .await
                .map(drop)
            }
            GatewayStore::Redis(client) => {
                let (key, hash) = redis_names(key_id, secret_hash);
                let replies = Self::redis(
                    client,
                    vec![
                        command([b"SET", key.as_bytes(), record.as_bytes(), b"NX"]),
                        command([b"SET", hash.as_bytes(), key_id.as_bytes(), b"NX"]),
                        command([b"SADD", redis_set().as_bytes(), key_id.as_bytes()]),
                    ],
                )
                .await?;
                if replies.iter().take(2).any(|r| *r == Reply::Bulk(None)) {
                    return Err(GatewayStoreError("the key id or hash is taken".into()));
                }
                Ok(())
            }
        }
    }

    /// Replaces a key's record, and its hash when `new_hash` differs from `old_hash` (a
    /// rotation: the old hash no longer finds the key). False when the key does not exist.
    pub async fn replace_key(
        &self,
        key_id: &str,
        old_hash: &str,
        new_hash: &str,
        record: &str,
    ) -> Result<bool, GatewayStoreError> {
        match self {
            GatewayStore::Sql { db, .. } => {
                let params = [text(key_id), text(new_hash), text(record)];
                Self::sql(db, move |db| {
                    db.write(|s: &mut dyn SqlSession| {
                        s.execute(
                            &format!(
                                "UPDATE {KEYS_TABLE} SET secret_hash = $2, record = $3 WHERE key_id = $1"
                            ),
                            &params,
                        )
                    })
                })
                .await
                .map(|changed| changed == 1)
            }
            GatewayStore::Redis(client) => {
                let (key, old) = redis_names(key_id, old_hash);
                let (_, new) = redis_names(key_id, new_hash);
                let replies = Self::redis(
                    client,
                    vec![
                        command([b"MULTI"]),
                        command([b"SET", key.as_bytes(), record.as_bytes(), b"XX"]),
                        command([b"DEL", old.as_bytes()]),
                        command([b"SET", new.as_bytes(), key_id.as_bytes()]),
                        command([b"EXEC"]),
                    ],
                )
                .await?;
                Ok(
                    matches!(replies.last(), Some(Reply::Array(Some(done))) if done.first() != Some(&Reply::Bulk(None))),
                )
            }
        }
    }

    /// A key's record by id.
    pub async fn key(&self, key_id: &str) -> Result<Option<String>, GatewayStoreError> {
        match self {
            GatewayStore::Sql { db, .. } => Self::sql_record(db, "key_id", key_id).await,
            GatewayStore::Redis(client) => {
                let (key, _) = redis_names(key_id, "");
                let mut replies =
                    Self::redis(client, vec![command([b"GET", key.as_bytes()])]).await?;
                Ok(replies.pop().and_then(Reply::into_text))
            }
        }
    }

    /// The record of the key whose secret hashes to `secret_hash`.
    pub async fn key_by_hash(
        &self,
        secret_hash: &str,
    ) -> Result<Option<String>, GatewayStoreError> {
        match self {
            GatewayStore::Sql { db, .. } => Self::sql_record(db, "secret_hash", secret_hash).await,
            GatewayStore::Redis(client) => {
                let (_, hash) = redis_names("", secret_hash);
                let mut replies =
                    Self::redis(client, vec![command([b"GET", hash.as_bytes()])]).await?;
                match replies.pop().and_then(Reply::into_text) {
                    Some(key_id) => self.key(&key_id).await,
                    None => Ok(None),
                }
            }
        }
    }

    /// Every key record.
    pub async fn keys(&self) -> Result<Vec<String>, GatewayStoreError> {
        match self {
            GatewayStore::Sql { db, .. } => {
                Self::sql(db, move |db| {
                    db.read(|s: &mut dyn SqlSession| {
                        s.query(
                            &format!("SELECT record FROM {KEYS_TABLE} ORDER BY key_id"),
                            &[],
                        )?
                        .into_iter()
                        .filter_map(|row| row.into_iter().next())
                        .map(SqlValue::into_text)
                        .collect()
                    })
                })
                .await
            }
            GatewayStore::Redis(client) => {
                let mut replies =
                    Self::redis(client, vec![command([b"SMEMBERS", redis_set().as_bytes()])])
                        .await?;
                let Some(Reply::Array(Some(ids))) = replies.pop() else {
                    return Ok(Vec::new());
                };
                let mut ids: Vec<String> = ids.into_iter().filter_map(Reply::into_text).collect();
                ids.sort();
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut get: Command = vec![b"MGET".to_vec()];
                get.extend(ids.iter().map(|id| redis_names(id, "").0.into_bytes()));
                let mut replies = Self::redis(client, vec![get]).await?;
                let Some(Reply::Array(Some(records))) = replies.pop() else {
                    return Ok(Vec::new());
                };
                Ok(records.into_iter().filter_map(Reply::into_text).collect())
            }
        }
    }

    /// Deletes a key; false when it did not exist.
    pub async fn delete_key(
        &self,
        key_id: &str,
        secret_hash: &str,
    ) -> Result<bool, GatewayStoreError> {
        match self {
            GatewayStore::Sql { db, .. } => {
                let params = [text(key_id)];
                Self::sql(db, move |db| {
                    db.write(|s: &mut dyn SqlSession| {
                        s.execute(
                            &format!("DELETE FROM {KEYS_TABLE} WHERE key_id = $1"),
                            &params,
                        )
                    })
                })
                .await
                .map(|changed| changed == 1)
            }
            GatewayStore::Redis(client) => {
                let (key, hash) = redis_names(key_id, secret_hash);
                let replies = Self::redis(
                    client,
                    vec![
                        command([b"MULTI"]),
                        command([b"DEL", key.as_bytes(), hash.as_bytes()]),
                        command([b"SREM", redis_set().as_bytes(), key_id.as_bytes()]),
                        command([b"EXEC"]),
                    ],
                )
                .await?;
                Ok(
                    matches!(replies.last(), Some(Reply::Array(Some(done))) if done.first().and_then(Reply::as_i64).unwrap_or(0) > 0),
                )
            }
        }
    }

    /// Adds each `(name, amount, expires_at)` to its counter, in one transaction (SQL) or one
    /// pipeline (Redis), and answers the new values in order. A counter created by this call
    /// expires at `expires_at` (Unix seconds; `None`: never).
    pub async fn add(
        &self,
        additions: Vec<(String, i64, Option<u64>)>,
    ) -> Result<Vec<i64>, GatewayStoreError> {
        if additions.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            GatewayStore::Sql {
                db,
                additions: count,
            } => {
                let cleanup = count.fetch_add(1, Ordering::Relaxed) % CLEANUP_EVERY == 0;
                let now = crate::gateway_keys::now_seconds() as i64;
                Self::sql(db, move |db| {
                    db.write(|s: &mut dyn SqlSession| {
                        if cleanup {
                            s.execute(
                                &format!(
                                    "DELETE FROM {COUNTERS_TABLE} WHERE expires_at > 0 AND expires_at < $1"
                                ),
                                &[SqlValue::Int(now)],
                            )?;
                        }
                        let mut values = Vec::with_capacity(additions.len());
                        for (name, amount, expires_at) in &additions {
                            let params = [
                                text(name),
                                SqlValue::Int(*amount),
                                SqlValue::Int(expires_at.map_or(0, |at| at as i64)),
                            ];
                            let value = s
                                .query_row(
                                    &format!(
                                        "INSERT INTO {COUNTERS_TABLE} (name, value, expires_at) VALUES ($1, $2, $3)
                                         ON CONFLICT (name) DO UPDATE SET value = {COUNTERS_TABLE}.value + EXCLUDED.value
                                         RETURNING value"
                                    ),
                                    &params,
                                )?
                                .and_then(|row| row.into_iter().next())
                                .ok_or_else(|| SqlError::new("the counter update returned no row"))?
                                .as_i64()?;
                            values.push(value);
                        }
                        Ok(values)
                    })
                })
                .await
            }
            GatewayStore::Redis(client) => {
                let mut commands = Vec::new();
                let mut positions = Vec::new();
                for (name, amount, expires_at) in &additions {
                    let counter = redis_counter(name);
                    positions.push(commands.len());
                    commands.push(command([
                        b"INCRBY",
                        counter.as_bytes(),
                        amount.to_string().as_bytes(),
                    ]));
                    if let Some(at) = expires_at {
                        commands.push(command([
                            b"EXPIREAT",
                            counter.as_bytes(),
                            at.to_string().as_bytes(),
                        ]));
                    }
                }
                let replies = Self::redis(client, commands).await?;
                positions
                    .into_iter()
                    .map(|at| {
                        replies.get(at).and_then(Reply::as_i64).ok_or_else(|| {
                            GatewayStoreError("INCRBY did not answer a number".into())
                        })
                    })
                    .collect()
            }
        }
    }

    /// The values of the counters `names`, in order (0 for a missing or expired one).
    pub async fn counters(&self, names: &[String]) -> Result<Vec<i64>, GatewayStoreError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            GatewayStore::Sql { db, .. } => {
                let now = crate::gateway_keys::now_seconds() as i64;
                let names = names.to_vec();
                Self::sql(db, move |db| {
                    let placeholders: Vec<String> =
                        (2..names.len() + 2).map(|n| format!("${n}")).collect();
                    let mut params = vec![SqlValue::Int(now)];
                    params.extend(names.iter().map(|n| text(n)));
                    let rows = db.read(|s: &mut dyn SqlSession| {
                        s.query(
                            &format!(
                                "SELECT name, value FROM {COUNTERS_TABLE}
                                 WHERE (expires_at = 0 OR expires_at >= $1) AND name IN ({})",
                                placeholders.join(", ")
                            ),
                            &params,
                        )
                    })?;
                    let mut found = std::collections::HashMap::new();
                    for row in rows {
                        let mut columns = row.into_iter();
                        if let (Some(name), Some(value)) = (columns.next(), columns.next()) {
                            found.insert(name.into_text()?, value.as_i64()?);
                        }
                    }
                    Ok(names
                        .iter()
                        .map(|n| found.get(n).copied().unwrap_or(0))
                        .collect())
                })
                .await
            }
            GatewayStore::Redis(client) => {
                let mut get: Command = vec![b"MGET".to_vec()];
                get.extend(names.iter().map(|n| redis_counter(n).into_bytes()));
                let mut replies = Self::redis(client, vec![get]).await?;
                let Some(Reply::Array(Some(values))) = replies.pop() else {
                    return Err(GatewayStoreError("MGET did not answer a list".into()));
                };
                Ok(values.iter().map(|v| v.as_i64().unwrap_or(0)).collect())
            }
        }
    }
}

fn redis_names(key_id: &str, secret_hash: &str) -> (String, String) {
    (
        format!("{REDIS_PREFIX}key:{key_id}"),
        format!("{REDIS_PREFIX}hash:{secret_hash}"),
    )
}

fn redis_set() -> String {
    format!("{REDIS_PREFIX}keys")
}

fn redis_counter(name: &str) -> String {
    format!("{REDIS_PREFIX}counter:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sql_keys_and_counters_round_trip() {
        let store = GatewayStore::on_sql(Arc::new(SqlDatabase::sqlite_in_memory())).unwrap();
        store
            .insert_key("gk_1", "h1", r#"{"id":"gk_1"}"#)
            .await
            .unwrap();
        assert!(
            store.insert_key("gk_2", "h1", "{}").await.is_err(),
            "hash taken"
        );
        assert_eq!(
            store.key_by_hash("h1").await.unwrap().as_deref(),
            Some(r#"{"id":"gk_1"}"#)
        );
        assert!(
            store
                .replace_key("gk_1", "h1", "h2", r#"{"v":2}"#)
                .await
                .unwrap()
        );
        assert_eq!(store.key_by_hash("h1").await.unwrap(), None, "rotated away");
        assert_eq!(
            store.key("gk_1").await.unwrap().as_deref(),
            Some(r#"{"v":2}"#)
        );
        assert_eq!(store.keys().await.unwrap().len(), 1);
        assert!(store.delete_key("gk_1", "h2").await.unwrap());
        assert!(!store.delete_key("gk_1", "h2").await.unwrap());
        assert!(!store.replace_key("gk_1", "h2", "h3", "{}").await.unwrap());

        let add = |name: &str, amount, at| vec![(name.to_string(), amount, at)];
        assert_eq!(store.add(add("c", 2, None)).await.unwrap(), [2]);
        assert_eq!(store.add(add("c", 3, None)).await.unwrap(), [5]);
        let both = [add("old", 3, Some(1)), add("c", 1, None)].concat();
        assert_eq!(store.add(both).await.unwrap(), [3, 6]);
        let names = ["c".to_string(), "old".to_string(), "none".to_string()];
        assert_eq!(store.counters(&names).await.unwrap(), vec![6, 0, 0]);
    }
}
