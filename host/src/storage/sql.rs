//! [`SqlDatabase`]: one SQL database — a SQLite file or a PostgreSQL pool — behind one small,
//! blocking API, so that each store (the kv tables, the chat-completion history, and any
//! later table such as the Responses API's) writes its SQL once for both engines.
//!
//! **How a store uses it.** It gets an `Arc<SqlDatabase>` for a backend name from
//! [`super::backends::StorageBackends`], then calls [`SqlDatabase::write`] (a transaction) or
//! [`SqlDatabase::read`] with a closure that runs statements on a [`SqlSession`]. Statements
//! use `$1`, `$2`… placeholders (numbered in order of first use) and bind [`SqlValue`]s; the
//! few real differences between the engines (column types, schema introspection, the
//! schema lock) are the methods of [`Dialect`].
//!
//! **Threads.** Every method blocks: call them from a blocking thread (`spawn_blocking`), never
//! on an async worker. SQLite runs on the calling thread with one writer connection and one
//! reader connection (WAL lets reads go on during a write). PostgreSQL statements run on the
//! tokio runtime the pool was created on ([`tokio::runtime::Handle::block_on`]), with as many
//! connections as the pool holds.
//!
//! **Failures.** Every engine error becomes [`SqlError`] with the engine's reason (never a
//! bound value); a failed [`SqlDatabase::write`] is rolled back.

use super::postgres::PgPool;
use super::sqlite::{self, OpenError};
use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::Value;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Text(String),
    Bytes(Vec<u8>),
    /// A JSON column's value (SQLite stores it as text).
    Json(Value),
}

/// A statement that failed; the text is the engine's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SqlError(pub String);

impl SqlError {
    pub fn new(reason: impl std::fmt::Display) -> Self {
        SqlError(reason.to_string())
    }
}

impl SqlValue {
    pub fn as_i64(&self) -> Result<i64, SqlError> {
        match self {
            SqlValue::Int(value) => Ok(*value),
            other => Err(SqlError(format!("expected an integer, found {other:?}"))),
        }
    }

    pub fn into_text(self) -> Result<String, SqlError> {
        match self {
            SqlValue::Text(text) => Ok(text),
            SqlValue::Bytes(bytes) => String::from_utf8(bytes).map_err(SqlError::new),
            other => Err(SqlError(format!("expected text, found {other:?}"))),
        }
    }

    pub fn into_bytes(self) -> Result<Vec<u8>, SqlError> {
        match self {
            SqlValue::Bytes(bytes) => Ok(bytes),
            SqlValue::Text(text) => Ok(text.into_bytes()),
            other => Err(SqlError(format!("expected bytes, found {other:?}"))),
        }
    }

    /// A JSON column: a PostgreSQL `json` value, or SQLite's text (unparseable text is null).
    pub fn into_json(self) -> Value {
        match self {
            SqlValue::Json(value) => value,
            SqlValue::Text(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

/// The PostgreSQL advisory lock taken by [`SqlSession::lock_schema`]; arbitrary but fixed.
const SCHEMA_LOCK_KEY: i64 = 0x6f67_785f_7363_6865;

/// Which engine, for the SQL that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A binary value column.
    pub fn bytes_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BLOB",
            Dialect::Postgres => "BYTEA",
        }
    }

    /// A text column that sorts and compares by bytes (SQLite's default; PostgreSQL's `C`
    /// collation), so that a range scan from a prefix finds exactly the keys with it.
    pub fn byte_ordered_text_type(self) -> &'static str {
        match self {
            Dialect::Sqlite => "TEXT",
            Dialect::Postgres => "TEXT COLLATE \"C\"",
        }
    }

    /// The member `field` (a plain identifier) of a JSON object expression, as JSON; SQL
    /// `NULL` when it has none. (SQLite's `->`, not `json_extract`, whose `'$.field'` path
    /// would be taken for a placeholder.)
    pub fn json_field(self, expression: &str, field: &str) -> String {
        match self {
            Dialect::Sqlite => format!("({expression} -> '{field}')"),
            Dialect::Postgres => format!("(({expression})::json -> '{field}')"),
        }
    }

    /// The byte length of a text or binary expression.
    pub fn byte_length(self, expression: &str) -> String {
        match self {
            Dialect::Sqlite => format!("length(CAST({expression} AS BLOB))"),
            Dialect::Postgres => format!("octet_length({expression})"),
        }
    }

    /// A query with `$1` = table name and `$2` = column name answering one row with the
    /// number of such columns (0 or 1).
    pub fn column_count_query(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2",
            Dialect::Postgres => {
                // Unquoted names are folded to lower case when a table is created.
                "SELECT COUNT(*) FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = lower($1)
                   AND column_name = $2"
            }
        }
    }
}

/// Runs statements: inside a [`SqlDatabase::write`] transaction or a [`SqlDatabase::read`].
pub trait SqlSession {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; answers how many rows it changed.
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, SqlError>;
    /// Runs a query; answers every row, each as its columns in order.
    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, SqlError>;

    /// The first row, if any.
    fn query_row(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Option<Vec<SqlValue>>, SqlError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Inside a [`SqlDatabase::write`] before changing a schema: makes replicas that create the
    /// same table at once take turns (PostgreSQL's `CREATE TABLE IF NOT EXISTS` fails for the
    /// second of two racing creators; SQLite's write transaction already excludes the other).
    fn lock_schema(&mut self) -> Result<(), SqlError> {
        if self.dialect() == Dialect::Postgres {
            self.execute(
                "SELECT pg_advisory_xact_lock($1)",
                &[SqlValue::Int(SCHEMA_LOCK_KEY)],
            )?;
        }
        Ok(())
    }

    /// Whether `table` has the column `column`.
    fn has_column(&mut self, table: &str, column: &str) -> Result<bool, SqlError> {
        let sql = self.dialect().column_count_query();
        let row = self.query_row(
            sql,
            &[
                SqlValue::Text(table.to_string()),
                SqlValue::Text(column.to_string()),
            ],
        )?;
        Ok(row
            .and_then(|r| r.first().map(SqlValue::as_i64))
            .transpose()?
            == Some(1))
    }
}

/// One database; see the module documentation.
pub struct SqlDatabase {
    engine: Engine,
}

enum Engine {
    Sqlite(Box<SqliteConnections>),
    Postgres(PgPool),
}

struct SqliteConnections {
    writer: Mutex<Connection>,
    /// `None` in memory, where the writer's connection also reads.
    reader: Option<Mutex<Connection>>,
}

impl std::fmt::Debug for SqlDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlDatabase")
            .field("dialect", &self.dialect())
            .finish()
    }
}

impl SqlDatabase {
    /// The SQLite file at `path` (created with its folders), in WAL mode. Blocks on the file
    /// system.
    pub fn open_sqlite(path: &Path) -> Result<Self, OpenError> {
        let writer = sqlite::open(path)?;
        let reader = sqlite::open(path)?;
        Ok(SqlDatabase {
            engine: Engine::Sqlite(Box::new(SqliteConnections {
                writer: Mutex::new(writer),
                reader: Some(Mutex::new(reader)),
            })),
        })
    }

    /// A private in-memory SQLite database (tests, benches, a store without a file).
    pub fn sqlite_in_memory() -> Self {
        let connection = Connection::open_in_memory().expect("SQLite opens an in-memory database");
        SqlDatabase {
            engine: Engine::Sqlite(Box::new(SqliteConnections {
                writer: Mutex::new(connection),
                reader: None,
            })),
        }
    }

    /// A PostgreSQL database reached through `pool` (see [`super::postgres::connect`]).
    pub fn postgres(pool: PgPool) -> Self {
        SqlDatabase {
            engine: Engine::Postgres(pool),
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self.engine {
            Engine::Sqlite(_) => Dialect::Sqlite,
            Engine::Postgres(_) => Dialect::Postgres,
        }
    }

    /// How many transactions can write at once: 1 for SQLite (one write lock per file), the
    /// pool's size for PostgreSQL.
    pub fn max_writers(&self) -> usize {
        match &self.engine {
            Engine::Sqlite(_) => 1,
            Engine::Postgres(pool) => pool.max_size(),
        }
    }

    /// Runs `work` in a transaction: committed when it answers `Ok`, rolled back otherwise.
    /// Blocks (see the module documentation).
    pub fn write<T, E: From<SqlError>>(
        &self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.engine {
            Engine::Sqlite(sqlite) => {
                let mut connection = lock(&sqlite.writer);
                // IMMEDIATE: take the write lock first, so a read-then-write transaction never
                // fails half-way on a lock upgrade.
                let transaction = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(SqlError::new)?;
                let answer = work(&mut SqliteSession(&transaction))?;
                transaction.commit().map_err(SqlError::new)?;
                Ok(answer)
            }
            Engine::Postgres(pool) => pool.transaction(work),
        }
    }

    /// Runs `work` outside a transaction (each statement on its own). Blocks.
    pub fn read<T, E: From<SqlError>>(
        &self,
        work: impl FnOnce(&mut dyn SqlSession) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.engine {
            Engine::Sqlite(sqlite) => {
                let connection = lock(sqlite.reader.as_ref().unwrap_or(&sqlite.writer));
                work(&mut SqliteSession(&connection))
            }
            Engine::Postgres(pool) => pool.session(work),
        }
    }
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave SQLite inconsistent (an open transaction
    // rolls back on drop), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

struct SqliteSession<'a>(&'a Connection);

/// SQLite reads `$1` as a parameter *named* "$1"; `?1` is the positional one.
fn sqlite_placeholders(sql: &str) -> String {
    sql.replace('$', "?")
}

impl SqlSession for SqliteSession<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, SqlError> {
        let mut statement = self
            .0
            .prepare_cached(&sqlite_placeholders(sql))
            .map_err(SqlError::new)?;
        statement
            .execute(rusqlite::params_from_iter(params))
            .map(|changed| changed as u64)
            .map_err(SqlError::new)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, SqlError> {
        let mut statement = self
            .0
            .prepare_cached(&sqlite_placeholders(sql))
            .map_err(SqlError::new)?;
        let columns = statement.column_count();
        let mut rows = statement
            .query(rusqlite::params_from_iter(params))
            .map_err(SqlError::new)?;
        let mut answer = Vec::new();
        while let Some(row) = rows.next().map_err(SqlError::new)? {
            let mut values = Vec::with_capacity(columns);
            for index in 0..columns {
                values.push(match row.get_ref(index).map_err(SqlError::new)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(value) => SqlValue::Int(value),
                    ValueRef::Real(value) => SqlValue::Int(value as i64),
                    ValueRef::Text(text) => {
                        SqlValue::Text(String::from_utf8_lossy(text).into_owned())
                    }
                    ValueRef::Blob(bytes) => SqlValue::Bytes(bytes.to_vec()),
                });
            }
            answer.push(values);
        }
        Ok(answer)
    }
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            SqlValue::Int(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
            SqlValue::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            SqlValue::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            SqlValue::Json(value) => ToSqlOutput::Owned(value.to_string().into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_sessions_bind_and_read_every_value_kind() {
        let db = SqlDatabase::sqlite_in_memory();
        db.write(|s| {
            s.execute(
                "CREATE TABLE t (i INTEGER, t TEXT, b BLOB, j JSON, n TEXT)",
                &[],
            )?;
            s.execute(
                "INSERT INTO t VALUES ($1, $2, $3, $4, $5)",
                &[
                    SqlValue::Int(7),
                    SqlValue::Text("x".into()),
                    SqlValue::Bytes(vec![0, 1]),
                    SqlValue::Json(serde_json::json!({"a": [1]})),
                    SqlValue::Null,
                ],
            )
        })
        .unwrap();
        let row = db
            .read(|s| {
                s.query_row(
                    "SELECT i, t, b, j, n FROM t WHERE i = $1",
                    &[SqlValue::Int(7)],
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(row[0], SqlValue::Int(7));
        assert_eq!(row[1], SqlValue::Text("x".into()));
        assert_eq!(row[2], SqlValue::Bytes(vec![0, 1]));
        assert_eq!(row[3].clone().into_json(), serde_json::json!({"a": [1]}));
        assert_eq!(row[4], SqlValue::Null);
        assert!(db.read(|s| s.has_column("t", "j")).unwrap());
        assert!(!db.read(|s| s.has_column("t", "zz")).unwrap());
    }

    #[test]
    fn a_failed_write_is_rolled_back() {
        let db = SqlDatabase::sqlite_in_memory();
        db.write(|s| s.execute("CREATE TABLE t (i INTEGER PRIMARY KEY)", &[]))
            .unwrap();
        let failed: Result<(), SqlError> = db.write(|s| {
            s.execute("INSERT INTO t VALUES ($1)", &[SqlValue::Int(1)])?;
            s.execute("INSERT INTO t VALUES ($1)", &[SqlValue::Int(1)])?;
            Ok(())
        });
        assert!(failed.unwrap_err().0.contains("UNIQUE"));
        let count = db
            .read(|s| s.query_row("SELECT COUNT(*) FROM t", &[]))
            .unwrap()
            .unwrap();
        assert_eq!(count[0], SqlValue::Int(0));
    }
}
