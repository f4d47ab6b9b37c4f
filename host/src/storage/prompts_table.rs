//! OGX 1.5.0's prompts table (`src/ogx/core/prompts/prompts.py`), so that OGX and ogx can
//! share one database: one row per version,
//! `id` (`<prompt_id>:<version>`, primary key), `prompt_id`, `version`, `is_default`,
//! `created_at` (seconds), `prompt_data` (JSON `{"prompt", "variables"}`), plus the
//! `owner_principal` / `access_attributes` columns OGX's authorized store adds (written as `''`
//! and NULL, as OGX writes them without auth). The table is always named `prompts`, as in OGX,
//! whatever `table_name` says (the config layer warns when it says otherwise).
//!
//! A table OGX created is used as it is (missing owner columns are added); one ogx creates has
//! the types SQLAlchemy gives those columns. Booleans are written and read as SQL booleans
//! (0 / 1 on SQLite). The version rules live in [`super::prompts`]; this module only reads and
//! writes rows, on a blocking thread. Failures are [`KvError::Backend`] with the database's
//! reason.

use super::completion_table::{TableError, prepare_table};
use super::kv::KvError;
use super::paging::add_missing_columns;
use super::sql::{SqlDatabase, SqlError, SqlSession, SqlValue};
use serde_json::Value;
use std::sync::Arc;

/// The prompts table on one SQL backend.
#[derive(Debug, Clone)]
pub struct PromptTable {
    db: Arc<SqlDatabase>,
    table: String,
}

fn create_table(s: &mut dyn SqlSession, table: &str) -> Result<(), SqlError> {
    s.lock_schema()?;
    s.execute(
        &format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                id VARCHAR NOT NULL PRIMARY KEY,
                prompt_id VARCHAR,
                version INTEGER,
                is_default BOOLEAN,
                created_at INTEGER,
                prompt_data JSON,
                owner_principal VARCHAR,
                access_attributes JSON
            )"
        ),
        &[],
    )?;
    add_missing_columns(
        s,
        table,
        &[
            ("owner_principal", "VARCHAR"),
            ("access_attributes", "JSON"),
        ],
    )?;
    Ok(())
}

/// `is_default` as 0 / 1 on both engines (SQLite stores it so; PostgreSQL's boolean is cast).
const IS_DEFAULT: &str = "CASE WHEN is_default THEN 1 ELSE 0 END";

impl PromptTable {
    /// The table `table` on `db`, created if needed. Blocks: call it at start-up.
    pub fn on(db: Arc<SqlDatabase>, table: &str) -> Result<Self, TableError> {
        prepare_table(&db, table, create_table)?;
        Ok(PromptTable {
            db,
            table: table.to_string(),
        })
    }

    /// Runs `work` against the database on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SqlDatabase, &str) -> Result<T, SqlError> + Send + 'static,
    ) -> Result<T, KvError> {
        let (db, table) = (Arc::clone(&self.db), self.table.clone());
        tokio::task::spawn_blocking(move || work(&db, &table))
            .await
            .map_err(|e| KvError::Backend(e.to_string()))?
            .map_err(KvError::from)
    }

    /// Adds one version (`id` = `<prompt_id>:<version>`; a second writer of the same version
    /// fails on the primary key).
    pub async fn insert(
        &self,
        prompt_id: &str,
        version: u64,
        is_default: bool,
        created_at: u64,
        prompt_data: Value,
    ) -> Result<(), KvError> {
        let params = vec![
            SqlValue::Text(format!("{prompt_id}:{version}")),
            SqlValue::Text(prompt_id.to_string()),
            SqlValue::Int(version as i64),
            SqlValue::Int(i64::from(is_default)),
            SqlValue::Int(created_at as i64),
            SqlValue::Json(prompt_data),
        ];
        self.blocking(move |db, table| {
            db.write(|s: &mut dyn SqlSession| {
                s.execute(
                    &format!(
                        "INSERT INTO {table} (id, prompt_id, version, is_default, created_at, prompt_data, owner_principal, access_attributes)
                         VALUES ($1, $2, $3, $4, $5, $6, '', NULL)"
                    ),
                    &params,
                )
            })
        })
        .await?;
        Ok(())
    }

    /// Makes `version` the only default of the prompt (one statement, so never none or two).
    pub async fn set_default(&self, prompt_id: &str, version: u64) -> Result<(), KvError> {
        let params = [
            SqlValue::Text(prompt_id.to_string()),
            SqlValue::Int(version as i64),
        ];
        self.blocking(move |db, table| {
            db.write(|s: &mut dyn SqlSession| {
                s.execute(
                    &format!("UPDATE {table} SET is_default = (version = $2) WHERE prompt_id = $1"),
                    &params,
                )
            })
        })
        .await?;
        Ok(())
    }

    /// The default version's number.
    pub async fn default_version(&self, prompt_id: &str) -> Result<Option<u64>, KvError> {
        let id = SqlValue::Text(prompt_id.to_string());
        self.blocking(move |db, table| {
            db.read(|s: &mut dyn SqlSession| {
                let row = s.query_row(
                    &format!(
                        "SELECT version FROM {table} WHERE prompt_id = $1 AND {IS_DEFAULT} = 1 ORDER BY version DESC"
                    ),
                    &[id],
                )?;
                row.and_then(|r| r.into_iter().next())
                    .map(|v| v.as_i64().map(|n| n as u64))
                    .transpose()
            })
        })
        .await
    }

    /// Every version's number, oldest first.
    pub async fn version_numbers(&self, prompt_id: &str) -> Result<Vec<u64>, KvError> {
        let id = SqlValue::Text(prompt_id.to_string());
        self.blocking(move |db, table| {
            db.read(|s: &mut dyn SqlSession| {
                s.query(
                    &format!(
                        "SELECT version FROM {table} WHERE prompt_id = $1 ORDER BY version ASC"
                    ),
                    &[id],
                )?
                .into_iter()
                .filter_map(|r| r.into_iter().next())
                .map(|v| v.as_i64().map(|n| n as u64))
                .collect()
            })
        })
        .await
    }

    /// One version's `prompt_data`.
    pub async fn prompt_data(
        &self,
        prompt_id: &str,
        version: u64,
    ) -> Result<Option<Value>, KvError> {
        let params = [
            SqlValue::Text(prompt_id.to_string()),
            SqlValue::Int(version as i64),
        ];
        self.blocking(move |db, table| {
            db.read(|s: &mut dyn SqlSession| {
                Ok(s.query_row(
                    &format!(
                        "SELECT prompt_data FROM {table} WHERE prompt_id = $1 AND version = $2"
                    ),
                    &params,
                )?
                .and_then(|r| r.into_iter().next())
                .map(SqlValue::into_json))
            })
        })
        .await
    }

    /// The default version of every prompt, by `prompt_id` descending (OGX's order).
    pub async fn list_defaults(&self) -> Result<Vec<super::prompts::Prompt>, KvError> {
        self.blocking(move |db, table| {
            db.read(|s: &mut dyn SqlSession| {
                s.query(
                    &format!(
                        "SELECT prompt_id, version, prompt_data FROM {table} WHERE {IS_DEFAULT} = 1 ORDER BY prompt_id DESC"
                    ),
                    &[],
                )?
                .into_iter()
                .map(|row| {
                    let mut columns = row.into_iter();
                    let mut next = || columns.next().unwrap_or(SqlValue::Null);
                    let prompt_id = next().into_text()?;
                    let version = next().as_i64()? as u64;
                    let data = next().into_json();
                    Ok(super::prompts::Prompt::from_data(prompt_id, version, &data, true))
                })
                .collect()
            })
        })
        .await
    }

    /// Removes every version of a prompt.
    pub async fn delete(&self, prompt_id: &str) -> Result<(), KvError> {
        let id = SqlValue::Text(prompt_id.to_string());
        self.blocking(move |db, table| {
            db.write(|s: &mut dyn SqlSession| {
                s.execute(&format!("DELETE FROM {table} WHERE prompt_id = $1"), &[id])
            })
        })
        .await?;
        Ok(())
    }
}
