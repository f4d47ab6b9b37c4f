//! `storage.backends` entries (OGX's `StorageBackendConfig`, discriminated by `type`): the six
//! backend kinds with OGX's field defaults, and reading one from the config.
//!
//! Fails when `type` is missing or unknown, when a required field is missing (`db_path` for the
//! SQLite kinds, `user` for the Postgres kinds), or when a value has the wrong type or range.
//! Unknown fields are warned about by path.

use std::path::PathBuf;

use serde_json::Value;

use super::env::{Lookup, expand_user};
use super::fields::{Invalid, Section};
use super::postgres_uri;

/// One entry of `storage.backends`.
#[derive(Debug, Clone, PartialEq)]
pub enum Backend {
    /// `kv_sqlite`: `db_path` required (`~` expanded).
    KvSqlite {
        db_path: PathBuf,
        namespace: Option<String>,
    },
    /// `sql_sqlite`: `db_path` required (`~` expanded), `pool_pre_ping` default true.
    SqlSqlite {
        db_path: PathBuf,
        pool_pre_ping: bool,
    },
    /// `kv_redis`: `host` default localhost, `port` default 6379.
    KvRedis {
        host: String,
        port: u16,
        namespace: Option<String>,
    },
    /// `kv_postgres`.
    KvPostgres(PostgresKv),
    /// `sql_postgres`.
    SqlPostgres(PostgresSql),
    /// `kv_mongodb`.
    KvMongodb(MongodbKv),
}

/// `kv_postgres`: host localhost, port 5432 (a number or text), db `ogx`, `user` required,
/// table `ogx_kvstore`.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresKv {
    pub host: String,
    pub port: String,
    pub db: String,
    pub user: String,
    pub password: Option<String>,
    pub ssl_mode: Option<String>,
    pub ca_cert_path: Option<String>,
    pub table_name: String,
    pub namespace: Option<String>,
}

/// `sql_postgres`: host localhost, port 5432, db `ogx`, `user` required, pool 10 (≥ 1),
/// overflow 20, recycle 3600 (OGX 1.5.0's default; not applied), pre-ping on.
#[derive(Debug, Clone, PartialEq)]
pub struct PostgresSql {
    pub host: String,
    pub port: String,
    pub db: String,
    pub user: String,
    pub password: Option<String>,
    pub pool_size: u32,
    pub max_overflow: u32,
    pub pool_recycle: i64,
    pub pool_pre_ping: bool,
    /// OGX 1.5.0: TLS as for `kv_postgres` (default `prefer`).
    pub ssl_mode: Option<String>,
    pub ca_cert_path: Option<String>,
}

/// `kv_mongodb`: host localhost, port 27017, db `ogx`, collection `ogx_kvstore`.
#[derive(Debug, Clone, PartialEq)]
pub struct MongodbKv {
    pub host: String,
    pub port: u16,
    pub db: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub collection_name: String,
    pub namespace: Option<String>,
}

/// The `type` values, in OGX's order.
pub const BACKEND_TYPES: &[&str] = &[
    "kv_redis",
    "kv_sqlite",
    "kv_postgres",
    "kv_mongodb",
    "sql_sqlite",
    "sql_postgres",
];

impl Backend {
    /// The `type` it was written with.
    pub fn type_name(&self) -> &'static str {
        match self {
            Backend::KvSqlite { .. } => "kv_sqlite",
            Backend::SqlSqlite { .. } => "sql_sqlite",
            Backend::KvRedis { .. } => "kv_redis",
            Backend::KvPostgres(_) => "kv_postgres",
            Backend::SqlPostgres(_) => "sql_postgres",
            Backend::KvMongodb(_) => "kv_mongodb",
        }
    }

    /// Key-value (as opposed to SQL).
    pub fn is_kv(&self) -> bool {
        self.type_name().starts_with("kv_")
    }
}

pub(super) fn parse_backend(
    raw: &Value,
    path: &str,
    lookup: Lookup<'_>,
    warnings: &mut Vec<String>,
) -> Result<Backend, Invalid> {
    let s = Section::of(Some(raw), path)?.ok_or_else(|| {
        Invalid::new(
            path,
            "is null",
            "Give the backend a `type` and its settings, or remove it.",
        )
    })?;
    let types = BACKEND_TYPES.join(", ");
    let kind = s.required_string("type", &format!("Add `type:` with one of: {types}."))?;
    let host = || Ok::<_, Invalid>(s.string("host")?.unwrap_or_else(|| "localhost".into()));
    let db = || Ok::<_, Invalid>(s.string("db")?.unwrap_or_else(|| "ogx".into()));
    let db_path = || {
        s.required_string(
            "db_path",
            "Add `db_path:` with the SQLite file's path, e.g. ./.ogx/kvstore.db.",
        )
        .map(|p| PathBuf::from(expand_user(&p, lookup)))
    };
    let port_u16 =
        |default: u16| Ok::<_, Invalid>(s.int_in("port", 1, 65535)?.map_or(default, |p| p as u16));
    let uri = if kind.ends_with("_postgres") {
        postgres_uri::read(&s)?
    } else {
        None
    };
    let from_uri = |field: fn(&postgres_uri::PostgresUri) -> &Option<String>| {
        uri.as_ref().and_then(|u| field(u).clone())
    };
    let host = || match from_uri(|u| &u.host) {
        Some(h) => Ok(h),
        None => host(),
    };
    let db = || match from_uri(|u| &u.db) {
        Some(d) => Ok(d),
        None => db(),
    };
    let postgres_port = || match from_uri(|u| &u.port) {
        Some(p) => Ok(p),
        None => Ok::<_, Invalid>(s.string("port")?.unwrap_or_else(|| "5432".into())),
    };
    let postgres_user = || {
        match from_uri(|u| &u.user) {
        Some(u) => Ok(u),
        None => s.required_string(
            "user",
            "Add `user:` with the database user, or a `connection_string: postgresql://user:password@host:port/db`.",
        ),
    }
    };
    let password = || match from_uri(|u| &u.password) {
        Some(p) => Ok(Some(p)),
        None => s.string("password"),
    };
    let ssl_mode = || match from_uri(|u| &u.ssl_mode) {
        Some(m) => Ok(Some(m)),
        None => s.string("ssl_mode"),
    };
    let ca_cert_path = || match from_uri(|u| &u.ca_cert_path) {
        Some(c) => Ok(Some(c)),
        None => s.string("ca_cert_path"),
    };
    let (backend, known): (Backend, &[&str]) = match kind.as_str() {
        "kv_sqlite" => (
            Backend::KvSqlite {
                db_path: db_path()?,
                namespace: s.string("namespace")?,
            },
            &["db_path", "namespace"],
        ),
        "sql_sqlite" => (
            Backend::SqlSqlite {
                db_path: db_path()?,
                pool_pre_ping: s.bool("pool_pre_ping")?.unwrap_or(true),
            },
            &["db_path", "pool_pre_ping"],
        ),
        "kv_redis" => (
            Backend::KvRedis {
                host: host()?,
                port: port_u16(6379)?,
                namespace: s.string("namespace")?,
            },
            &["host", "port", "namespace"],
        ),
        "kv_postgres" => (
            Backend::KvPostgres(PostgresKv {
                host: host()?,
                port: postgres_port()?,
                db: db()?,
                user: postgres_user()?,
                password: password()?,
                ssl_mode: ssl_mode()?,
                ca_cert_path: ca_cert_path()?,
                table_name: s
                    .string("table_name")?
                    .unwrap_or_else(|| "ogx_kvstore".into()),
                namespace: s.string("namespace")?,
            }),
            &[
                "host",
                "port",
                "db",
                "user",
                "password",
                "ssl_mode",
                "ca_cert_path",
                "table_name",
                "namespace",
                "connection_string",
                "pool_size",
                "max_overflow",
                "command_timeout",
            ],
        ),
        "sql_postgres" => (
            Backend::SqlPostgres(PostgresSql {
                host: host()?,
                port: postgres_port()?,
                db: db()?,
                user: postgres_user()?,
                password: password()?,
                pool_size: s.u32_at_least("pool_size", 1)?.unwrap_or(10),
                max_overflow: s.u32_at_least("max_overflow", 0)?.unwrap_or(20),
                pool_recycle: s.int_in("pool_recycle", -1, i64::MAX)?.unwrap_or(3600),
                pool_pre_ping: s.bool("pool_pre_ping")?.unwrap_or(true),
                ssl_mode: ssl_mode()?,
                ca_cert_path: ca_cert_path()?,
            }),
            &[
                "host",
                "port",
                "db",
                "user",
                "password",
                "pool_size",
                "max_overflow",
                "pool_recycle",
                "pool_pre_ping",
                "connection_string",
                "ssl_mode",
                "ca_cert_path",
            ],
        ),
        "kv_mongodb" => (
            Backend::KvMongodb(MongodbKv {
                host: host()?,
                port: port_u16(27017)?,
                db: db()?,
                user: s.string("user")?,
                password: s.string("password")?,
                collection_name: s
                    .string("collection_name")?
                    .unwrap_or_else(|| "ogx_kvstore".into()),
                namespace: s.string("namespace")?,
            }),
            &[
                "host",
                "port",
                "db",
                "user",
                "password",
                "collection_name",
                "namespace",
            ],
        ),
        other => {
            return Err(Invalid::new(
                s.key("type"),
                format!("unknown storage backend type '{other}'"),
                format!("Use one of: {types}."),
            ));
        }
    };
    let mut all_known = vec!["type"];
    all_known.extend_from_slice(known);
    s.warn_unknown(&all_known, warnings);
    Ok(backend)
}
