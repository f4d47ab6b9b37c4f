//! The PostgreSQL engine of [`super::sql::SqlDatabase`]: a connection pool (deadpool over
//! tokio-postgres) and the sessions that run statements on it.
//!
//! **Connecting.** [`connect`] builds the pool and opens one connection at once, so that a
//! server that is down, a wrong port, database, user or password stops start-up with
//! [`ConnectError`] — which names the server, the database and the user, and never the
//! password. `ssl_mode` follows libpq: `disable`/`allow` never use TLS; `prefer` (the default,
//! as in libpq) and `require` encrypt without checking the server's certificate (`prefer`
//! falls back to plain text when the server has no TLS); `verify-ca` and `verify-full` check
//! the certificate against `ca_cert_path` and the host name (both as `verify-full`).
//!
//! **Threads.** A session's statements run on the tokio runtime the pool was created on,
//! through [`tokio::runtime::Handle::block_on`]: sessions are only used on blocking threads
//! (see [`super::sql`]).
//!
//! **Types.** [`SqlValue`]s bind to whatever the server expects (an integer to `int2`, `int4`
//! or `int8`; text or JSON to `json`/`jsonb`), so tables that another program created (OGX's,
//! with `INTEGER` and `JSON` columns) work as well as ours.

use super::sql::{Dialect, SqlError, SqlSession, SqlValue};
use bytes::BytesMut;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// How long opening one connection may take before it fails.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a session waits for a free connection of the pool.
pub const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to connect (from a `kv_postgres` or `sql_postgres` backend).
#[derive(Clone)]
pub struct PgSettings {
    pub host: String,
    pub port: u16,
    pub db: String,
    pub user: String,
    pub password: Option<String>,
    /// libpq's `sslmode`; `None` is `prefer`.
    pub ssl_mode: Option<String>,
    pub ca_cert_path: Option<PathBuf>,
    /// Most connections open at once.
    pub pool_size: usize,
    /// Check a pooled connection with a query before handing it out (`pool_pre_ping`).
    pub pre_ping: bool,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

impl PgSettings {
    /// Settings from a `postgres://user:password@host:port/db` URL (tests and benchmarks),
    /// with `ssl_mode` disable and a pool of `pool_size`.
    pub fn from_url(url: &str, pool_size: usize) -> Result<Self, String> {
        use std::str::FromStr;
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_string(),
        };
        Ok(PgSettings {
            host,
            port: config.get_ports().first().copied().unwrap_or(5432),
            db: config.get_dbname().unwrap_or("postgres").to_string(),
            user: config.get_user().unwrap_or("postgres").to_string(),
            password: config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            ssl_mode: Some("disable".into()),
            ca_cert_path: None,
            pool_size,
            pre_ping: true,
        })
    }

    /// `host:port/db as user`, never the password.
    pub fn describe(&self) -> String {
        format!(
            "PostgreSQL at {}:{}, database {:?}, user {:?}",
            self.host, self.port, self.db, self.user
        )
    }
}

/// Why [`connect`] failed. The text names the server and the reason, never the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// A setting that cannot work (an unknown `ssl_mode`, an unreadable `ca_cert_path`).
    #[error("{0}")]
    Settings(String),
    /// The server could not be reached or refused the connection.
    #[error("cannot connect to {target}: {reason}")]
    Unreachable { target: String, reason: String },
}

/// A pool of connections to one database.
#[derive(Clone)]
pub struct PgPool {
    pool: Pool,
    runtime: tokio::runtime::Handle,
}

/// Builds the pool on the current tokio runtime and opens its first connection.
pub async fn connect(settings: &PgSettings) -> Result<PgPool, ConnectError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&settings.host)
        .port(settings.port)
        .dbname(&settings.db)
        .user(&settings.user)
        .application_name("ogx")
        .connect_timeout(CONNECT_TIMEOUT);
    if let Some(password) = &settings.password {
        config.password(password);
    }
    let manager_config = ManagerConfig {
        recycling_method: if settings.pre_ping {
            RecyclingMethod::Verified
        } else {
            RecyclingMethod::Fast
        },
    };
    let manager = match tls_for(settings)? {
        None => {
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            Manager::from_config(config, tokio_postgres::NoTls, manager_config)
        }
        Some((mode, tls)) => {
            config.ssl_mode(mode);
            Manager::from_config(config, tls, manager_config)
        }
    };
    let pool = Pool::builder(manager)
        .max_size(settings.pool_size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .create_timeout(Some(CONNECT_TIMEOUT))
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .build()
        .map_err(|error| ConnectError::Settings(error.to_string()))?;
    let unreachable = |reason: String| ConnectError::Unreachable {
        target: settings.describe(),
        reason,
    };
    let client = pool.get().await.map_err(|e| unreachable(pool_reason(&e)))?;
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| unreachable(pg_reason(&e)))?;
    Ok(PgPool {
        pool,
        runtime: tokio::runtime::Handle::current(),
    })
}

/// The TLS set-up `ssl_mode` asks for; `None`: plain text.
fn tls_for(
    settings: &PgSettings,
) -> Result<
    Option<(
        tokio_postgres::config::SslMode,
        tokio_postgres_rustls::MakeRustlsConnect,
    )>,
    ConnectError,
> {
    use tokio_postgres::config::SslMode;
    let mode = settings.ssl_mode.as_deref().unwrap_or("prefer");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::Settings(e.to_string()))?;
    let (ssl_mode, config) = match mode {
        "disable" | "allow" => return Ok(None),
        "prefer" | "require" => (
            if mode == "prefer" {
                SslMode::Prefer
            } else {
                SslMode::Require
            },
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
        ),
        "verify-ca" | "verify-full" => {
            let Some(path) = &settings.ca_cert_path else {
                return Err(ConnectError::Settings(format!(
                    "ssl_mode {mode} checks the server's certificate: set ca_cert_path to the CA certificate (PEM) that signed it"
                )));
            };
            let unreadable = |reason: &dyn std::fmt::Display| {
                ConnectError::Settings(format!("ca_cert_path {}: {reason}", path.display()))
            };
            let pem = std::fs::read(path).map_err(|e| unreadable(&e))?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                roots
                    .add(cert.map_err(|e| unreadable(&e))?)
                    .map_err(|e| unreadable(&e))?;
            }
            if roots.is_empty() {
                return Err(unreadable(&"no PEM certificate in the file"));
            }
            (
                SslMode::Require,
                builder.with_root_certificates(roots).with_no_client_auth(),
            )
        }
        other => {
            return Err(ConnectError::Settings(format!(
                "ssl_mode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    Ok(Some((
        ssl_mode,
        tokio_postgres_rustls::MakeRustlsConnect::new(config),
    )))
}

/// libpq's `prefer`/`require`: the session is encrypted, the server's certificate is not
/// checked (its handshake signature still is).
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The server's own message when it sent one (`password authentication failed for user
/// "x"`), else the client's.
/// "x", with the causes ("error performing TLS handshake: invalid peer certificate:
/// UnknownIssuer").
fn pg_reason(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        let more = error.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = error.source();
    }
    text
}

fn pool_reason(error: &PoolError) -> String {
    match error {
        PoolError::Backend(error) => pg_reason(error),
        PoolError::Timeout(_) => format!(
            "no connection within {}s",
            CONNECT_TIMEOUT.as_secs().max(POOL_WAIT_TIMEOUT.as_secs())
        ),
        other => other.to_string(),
    }
}

impl PgPool {
    /// Most connections open at once.
    pub fn max_size(&self) -> usize {
        self.pool.status().max_size
    }

    fn client(&self) -> Result<Object, SqlError> {
        self.runtime
            .block_on(self.pool.get())
            .map_err(|e| SqlError(format!("PostgreSQL: {}", pool_reason(&e))))
    }

    /// Runs `work` in a transaction; blocks.
    pub(super) fn transaction<T, E: From<SqlError>>(
        &self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, E>,
    ) -> Result<T, E> {
        let client = self.client()?;
        let mut session = PgSession {
            client: &client,
            runtime: &self.runtime,
        };
        session.batch("BEGIN")?;
        match work(&mut session) {
            Ok(answer) => {
                session.batch("COMMIT")?;
                Ok(answer)
            }
            Err(error) => {
                if session.batch("ROLLBACK").is_err() {
                    // The connection is in an unknown state: do not give it back.
                    drop(Object::take(client));
                }
                Err(error)
            }
        }
    }

    /// Runs `work` outside a transaction; blocks.
    pub(super) fn session<T, E: From<SqlError>>(
        &self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, E>,
    ) -> Result<T, E> {
        let client = self.client()?;
        work(&mut PgSession {
            client: &client,
            runtime: &self.runtime,
        })
    }
}

struct PgSession<'a> {
    client: &'a Object,
    runtime: &'a tokio::runtime::Handle,
}

impl PgSession<'_> {
    fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        self.runtime
            .block_on(self.client.batch_execute(sql))
            .map_err(|e| SqlError(format!("PostgreSQL: {}", pg_reason(&e))))
    }
}

fn bound(params: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl SqlSession for PgSession<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, SqlError> {
        let fail = |e: tokio_postgres::Error| SqlError(format!("PostgreSQL: {}", pg_reason(&e)));
        self.runtime.block_on(async {
            let statement = self.client.prepare_cached(sql).await.map_err(fail)?;
            self.client
                .execute(&statement, &bound(params))
                .await
                .map_err(fail)
        })
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, SqlError> {
        let fail = |e: tokio_postgres::Error| SqlError(format!("PostgreSQL: {}", pg_reason(&e)));
        let rows = self.runtime.block_on(async {
            let statement = self.client.prepare_cached(sql).await.map_err(fail)?;
            self.client
                .query(&statement, &bound(params))
                .await
                .map_err(fail)
        })?;
        rows.iter().map(row_values).collect()
    }
}

fn row_values(row: &tokio_postgres::Row) -> Result<Vec<SqlValue>, SqlError> {
    let fail = |e: tokio_postgres::Error| SqlError(format!("PostgreSQL: {e}"));
    (0..row.len())
        .map(|index| {
            let ty = row.columns()[index].type_();
            let value = match *ty {
                Type::INT2 => row
                    .try_get::<_, Option<i16>>(index)
                    .map(|v| v.map(|v| SqlValue::Int(v.into()))),
                Type::INT4 => row
                    .try_get::<_, Option<i32>>(index)
                    .map(|v| v.map(|v| SqlValue::Int(v.into()))),
                Type::INT8 => row
                    .try_get::<_, Option<i64>>(index)
                    .map(|v| v.map(SqlValue::Int)),
                Type::BOOL => row
                    .try_get::<_, Option<bool>>(index)
                    .map(|v| v.map(|v| SqlValue::Int(v.into()))),
                Type::BYTEA => row
                    .try_get::<_, Option<Vec<u8>>>(index)
                    .map(|v| v.map(SqlValue::Bytes)),
                Type::JSON | Type::JSONB => row
                    .try_get::<_, Option<serde_json::Value>>(index)
                    .map(|v| v.map(SqlValue::Json)),
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row
                    .try_get::<_, Option<String>>(index)
                    .map(|v| v.map(SqlValue::Text)),
                _ => {
                    return Err(SqlError(format!(
                        "PostgreSQL: column {} has the type {ty}, which ogx does not read",
                        row.columns()[index].name()
                    )));
                }
            };
            value.map(|v| v.unwrap_or(SqlValue::Null)).map_err(fail)
        })
        .collect()
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for SqlValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let is_json = *ty == Type::JSON || *ty == Type::JSONB;
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Int(value) => match *ty {
                Type::INT2 => i16::try_from(*value)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*value)?.to_sql(ty, out),
                // Booleans are read as 0 / 1 and written back the same way.
                Type::BOOL => (*value != 0).to_sql(ty, out),
                _ => value.to_sql(ty, out),
            },
            SqlValue::Text(text) if is_json => {
                serde_json::from_str::<serde_json::Value>(text)?.to_sql(ty, out)
            }
            SqlValue::Text(text) => text.as_str().to_sql(ty, out),
            SqlValue::Bytes(bytes) => bytes.as_slice().to_sql(ty, out),
            SqlValue::Json(value) if is_json => value.to_sql(ty, out),
            SqlValue::Json(value) => value.to_string().to_sql(ty, out),
        }
    }

    /// Any type: [`Self::to_sql`] converts, or fails with the server's type in the text.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
