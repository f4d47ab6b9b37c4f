//! [`StorageBackends`]: the databases of `storage.backends`, opened once each, by name. A store
//! asks for "the SQL backend `sql_default`" ([`StorageBackends::sql`]) or "the kv backend
//! `kv_default`" ([`StorageBackends::kv`]) and gets a [`SqlDatabase`] — SQLite or PostgreSQL,
//! it does not need to know which. Two stores that name one backend share its connections.
//!
//! **Which backends.** `kv_sqlite` and `sql_sqlite` open their `db_path` (two backends with the
//! same file share one database); `kv_postgres` and `sql_postgres` connect a pool (kv: at most
//! [`KV_POSTGRES_POOL_SIZE`] connections, TLS by `ssl_mode`; sql: `pool_size` + `max_overflow`,
//! `pool_pre_ping` honoured, `pool_recycle` not used, TLS as libpq's default `prefer`, since
//! OGX gives it no TLS settings). `kv_redis` serves only the gateway keys
//! ([`StorageBackends::gateway_store`]); `kv_mongodb` is refused.
//!
//! **Failures.** [`BackendError`]'s text starts with the config key (`storage.backends.<name>`),
//! says what went wrong and what to change; it never contains a password. Opening is called at
//! start-up, so every such error stops start-up.

use super::gateway_store::GatewayStore;
use super::kv::{HOST_TABLE, PLUGIN_TABLE};
use super::postgres::{self, PgSettings};
use super::redis::RedisClient;
use super::sql::SqlDatabase;
use crate::config::storage::{Backend, StorageConfig};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Connections a `kv_postgres` backend's pool may hold (OGX's has no such setting).
pub const KV_POSTGRES_POOL_SIZE: usize = 4;

/// A backend that cannot be used; the text names its config key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// A kv backend's database and the tables the host and the plugins use in it.
#[derive(Debug, Clone)]
pub struct KvBackend {
    pub db: Arc<SqlDatabase>,
    /// The host's stores' table: [`HOST_TABLE`] on SQLite, `table_name` on PostgreSQL.
    pub host_table: String,
    pub plugin_table: &'static str,
}

/// The opened backends; see the module documentation.
pub struct StorageBackends<'a> {
    storage: &'a StorageConfig,
    opened: HashMap<String, Arc<SqlDatabase>>,
    /// SQLite files already open, so that two backends naming one file share it.
    files: HashMap<PathBuf, Arc<SqlDatabase>>,
}

impl<'a> StorageBackends<'a> {
    pub fn new(storage: &'a StorageConfig) -> Self {
        StorageBackends {
            storage,
            opened: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// The `sql_sqlite` or `sql_postgres` backend `name`.
    pub async fn sql(&mut self, name: &str) -> Result<Arc<SqlDatabase>, BackendError> {
        match self.backend(name)? {
            Backend::SqlSqlite { .. } | Backend::SqlPostgres(_) => self.open(name).await,
            other => Err(wrong_family(name, other, "sql_sqlite or sql_postgres")),
        }
    }

    /// The `kv_sqlite` or `kv_postgres` backend `name`.
    pub async fn kv(&mut self, name: &str) -> Result<KvBackend, BackendError> {
        let host_table = match self.backend(name)? {
            Backend::KvSqlite { .. } => HOST_TABLE.to_string(),
            Backend::KvPostgres(pg) => {
                if !super::inference_store::is_plain_identifier(&pg.table_name) {
                    return Err(BackendError(format!(
                        "storage.backends.{name}.table_name: {:?} is not a plain identifier: use letters, digits and `_` (not first)",
                        pg.table_name
                    )));
                }
                pg.table_name.clone()
            }
            other @ (Backend::KvRedis { .. } | Backend::KvMongodb(_)) => {
                return Err(BackendError(format!(
                    "storage backend '{name}' is of type {}, which ogx does not support: only kv_sqlite and kv_postgres backends are supported; point the store at one",
                    other.type_name()
                )));
            }
            other => return Err(wrong_family(name, other, "kv_sqlite or kv_postgres")),
        };
        Ok(KvBackend {
            db: self.open(name).await?,
            host_table,
            plugin_table: PLUGIN_TABLE,
        })
    }

    /// The store of gateway keys and counters on backend `name`: any SQL or kv backend, or a
    /// `kv_redis` server (connected and pinged now).
    pub async fn gateway_store(&mut self, name: &str) -> Result<GatewayStore, BackendError> {
        let store = match self.backend(name)? {
            Backend::KvRedis { host, port, .. } => {
                let client = RedisClient::connect(host, *port).await.map_err(|error| {
                    BackendError(format!(
                        "storage.backends.{name}: {error}. Check that redis-server is running there and that storage.backends.{name}.host and port are right"
                    ))
                })?;
                GatewayStore::on_redis(client)
            }
            Backend::KvMongodb(_) => {
                return Err(BackendError(format!(
                    "storage backend '{name}' is of type kv_mongodb, which ogx does not support: point gateway_keys.store at a kv_sqlite, kv_postgres, kv_redis, sql_sqlite or sql_postgres backend"
                )));
            }
            _ => {
                let db = self.open(name).await?;
                tokio::task::spawn_blocking(move || GatewayStore::on_sql(db))
                    .await
                    .map_err(|e| BackendError(format!("storage.backends.{name}: {e}")))?
                    .map_err(|error| BackendError(format!("storage.backends.{name}: {error}")))?
            }
        };
        Ok(store)
    }

    fn backend(&self, name: &str) -> Result<&'a Backend, BackendError> {
        self.storage.backends.get(name).ok_or_else(|| {
            let known: Vec<&String> = self.storage.backends.keys().collect();
            BackendError(format!(
                "storage backend '{name}' is not defined. Available backends: {known:?}"
            ))
        })
    }

    async fn open(&mut self, name: &str) -> Result<Arc<SqlDatabase>, BackendError> {
        if let Some(db) = self.opened.get(name) {
            return Ok(Arc::clone(db));
        }
        let db = match self.backend(name)? {
            Backend::KvSqlite { db_path, .. } | Backend::SqlSqlite { db_path, .. } => {
                self.sqlite(name, db_path).await?
            }
            Backend::KvPostgres(pg) => {
                let settings = PgSettings {
                    ssl_mode: pg.ssl_mode.clone(),
                    ca_cert_path: pg.ca_cert_path.as_ref().map(PathBuf::from),
                    pool_size: KV_POSTGRES_POOL_SIZE,
                    ..server(name, &pg.host, &pg.port, &pg.db, &pg.user, &pg.password)?
                };
                postgres_database(name, &settings).await?
            }
            Backend::SqlPostgres(pg) => {
                let settings = PgSettings {
                    ssl_mode: pg.ssl_mode.clone(),
                    ca_cert_path: pg.ca_cert_path.as_ref().map(PathBuf::from),
                    pool_size: (pg.pool_size + pg.max_overflow) as usize,
                    pre_ping: pg.pool_pre_ping,
                    ..server(name, &pg.host, &pg.port, &pg.db, &pg.user, &pg.password)?
                };
                postgres_database(name, &settings).await?
            }
            other => {
                return Err(BackendError(format!(
                    "storage.backends.{name} is of type {}, which ogx does not support: use kv_sqlite or kv_postgres (sql_sqlite or sql_postgres for SQL stores)",
                    other.type_name()
                )));
            }
        };
        self.opened.insert(name.to_string(), Arc::clone(&db));
        Ok(db)
    }

    async fn sqlite(
        &mut self,
        name: &str,
        db_path: &PathBuf,
    ) -> Result<Arc<SqlDatabase>, BackendError> {
        if let Some(db) = self.files.get(db_path) {
            return Ok(Arc::clone(db));
        }
        let path = db_path.clone();
        let db = tokio::task::spawn_blocking(move || SqlDatabase::open_sqlite(&path))
            .await
            .map_err(|e| BackendError(format!("storage.backends.{name}: {e}")))?
            .map_err(|error| {
                BackendError(format!(
                    "storage.backends.{name}.db_path: {error}. ogx needs a SQLite file it can create, read and write: fix the path or its permissions, or set storage.backends.{name}.db_path to another file"
                ))
            })?;
        let db = Arc::new(db);
        self.files.insert(db_path.clone(), Arc::clone(&db));
        Ok(db)
    }
}

fn wrong_family(name: &str, found: &Backend, wanted: &str) -> BackendError {
    BackendError(format!(
        "storage backend '{name}' is of type '{}', but a backend of type {wanted} is required",
        found.type_name()
    ))
}

/// The server and credentials both Postgres backend types have; TLS `prefer` (libpq's
/// default, and what `sql_postgres`, which has no TLS settings, uses), one connection,
/// pre-ping on.
fn server(
    name: &str,
    host: &str,
    port: &str,
    db: &str,
    user: &str,
    password: &Option<String>,
) -> Result<PgSettings, BackendError> {
    let port = port.trim().parse().map_err(|_| {
        BackendError(format!(
            "storage.backends.{name}.port: {port:?} is not a port number (1-65535)"
        ))
    })?;
    Ok(PgSettings {
        host: host.to_string(),
        port,
        db: db.to_string(),
        user: user.to_string(),
        password: password.clone(),
        ssl_mode: None,
        ca_cert_path: None,
        pool_size: 1,
        pre_ping: true,
    })
}

async fn postgres_database(
    name: &str,
    settings: &PgSettings,
) -> Result<Arc<SqlDatabase>, BackendError> {
    let pool = postgres::connect(settings).await.map_err(|error| {
        BackendError(format!(
            "storage.backends.{name}: {error}. Check that PostgreSQL is running and accepts TCP connections there, that storage.backends.{name}.host, port, db, user and password are right, and for TLS errors its ssl_mode and ca_cert_path"
        ))
    })?;
    Ok(Arc::new(SqlDatabase::postgres(pool)))
}
