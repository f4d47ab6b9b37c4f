//! [`ResponsesStore`]: the Responses API's stored responses (`providers.responses[].config.
//! persistence.responses`, OGX's `ResponsesStore`).
//!
//! Each row keeps what the API gives back (the Response object, the request's input items)
//! and what a later turn needs to continue the chain (`messages`: the chat-completions
//! context after the turn, system messages left out, so `instructions` never carry over).
//!
//! **Writes are synchronous.** A response is written before its answer (or its terminal
//! stream event) goes out, because a client may name it as `previous_response_id` in its very
//! next request; a queued write could lose that race. The config's write-queue fields
//! (`max_write_queue_size`, `num_writers`) are accepted for OGX compatibility and not needed.
//!
//! **Backends.** [`ResponseTable`] is the seam; [`SqlResponseTable`] implements it with one
//! set of SQL on any [`SqlDatabase`], so `persistence.responses.backend` may name a
//! `sql_sqlite` or a `sql_postgres` backend (several `ogx` replicas on one PostgreSQL share
//! their responses, and a chain may continue on any of them).
//!
//! **Layout.** OGX's (`id`, `created_at`, `model`, `response_object`, and the owner columns of
//! [`super::owner`]) plus `input`, `messages` and `seq`. A table OGX created is reused: the missing columns are added and filled from its
//! rows (OGX keeps `input` and `messages` inside `response_object`), so responses OGX stored
//! can be read and continued.
//!
//! **Ordering.** Listing is by `(created_at, seq)` ([`super::paging`]), so responses created
//! in the same second keep a stable order and `after` paging never skips one.
//!
//! **Failures.** Opening fails with [`TableError`]; every operation returns [`StoreError`]:
//! `Backend` for a database failure (the server answers 500 and logs the reason),
//! `UnknownAfter` for an `after` that names nothing.

use super::completion_table::prepare_table;
use super::inference_store::{ListQuery, StoreError, TableError, blocking};
use super::owner::{self, Owner};
use super::paging;
use super::sql::{SqlDatabase, SqlError, SqlSession, SqlValue};
use serde_json::Value;
use std::sync::Arc;

/// The table name OGX uses when the config names none.
pub const DEFAULT_TABLE_NAME: &str = "responses";

/// One stored response.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub id: String,
    /// Seconds since the epoch.
    pub created_at: i64,
    /// The model id the client asked for.
    pub model: String,
    /// The Response object as the API returns it.
    pub response: Value,
    /// This request's input items, each with its id.
    pub input: Value,
    /// The chat messages of the whole chain after this turn, without system messages.
    pub messages: Value,
    /// Who wrote it (OGX's `owner_principal`, `access_attributes`, `tenant_id`).
    pub owner: Owner,
}

/// One page of responses.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsePage {
    pub data: Vec<StoredResponse>,
    pub has_more: bool,
}

/// A table of responses. Methods block: [`ResponsesStore`] calls them on blocking threads.
pub trait ResponseTable: Send + Sync + 'static {
    /// Stores `response`, replacing one with the same id.
    fn put(&self, response: &StoredResponse) -> Result<(), StoreError>;
    fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError>;
    /// Whether a row was deleted.
    fn delete(&self, id: &str) -> Result<bool, StoreError>;
    fn list(&self, query: &ListQuery) -> Result<ResponsePage, StoreError>;
    /// The table's name, which access policies see as `sql_record::<name>`.
    fn name(&self) -> &str {
        DEFAULT_TABLE_NAME
    }
}

/// The stored responses, behind a [`ResponseTable`].
pub struct ResponsesStore {
    table: Arc<dyn ResponseTable>,
}

impl ResponsesStore {
    pub fn new(table: Arc<dyn ResponseTable>) -> Self {
        Self { table }
    }

    /// The table's name (access policies' `sql_record::<name>`).
    pub fn table_name(&self) -> &str {
        self.table.name()
    }

    pub async fn put(&self, response: StoredResponse) -> Result<(), StoreError> {
        let table = Arc::clone(&self.table);
        blocking(move || table.put(&response)).await
    }

    pub async fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        let (table, id) = (Arc::clone(&self.table), id.to_string());
        blocking(move || table.get(&id)).await
    }

    pub async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let (table, id) = (Arc::clone(&self.table), id.to_string());
        blocking(move || table.delete(&id)).await
    }

    pub async fn list(&self, query: ListQuery) -> Result<ResponsePage, StoreError> {
        let table = Arc::clone(&self.table);
        blocking(move || table.list(&query)).await
    }
}

/// The responses table in a [`SqlDatabase`] (SQLite or PostgreSQL).
pub struct SqlResponseTable {
    db: Arc<SqlDatabase>,
    table: String,
}

const COLUMNS: &str = "id, created_at, model, response_object, input, messages, owner_principal, access_attributes, tenant_id";

/// The columns ogx adds to a table OGX created, each filled from the same member of
/// `response_object` (an empty list when it has none).
const COLUMNS_INSIDE_THE_OBJECT: [(&str, &str); 2] = [("input", "JSON"), ("messages", "JSON")];

/// Creates the table and its ordering index, and brings a table OGX created up to date (see
/// the module documentation).
fn create_table(s: &mut dyn SqlSession, table: &str) -> Result<(), SqlError> {
    s.lock_schema()?;
    s.execute(
        &format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                id VARCHAR PRIMARY KEY,
                created_at INTEGER NOT NULL,
                model VARCHAR NOT NULL,
                response_object JSON NOT NULL,
                input JSON NOT NULL,
                messages JSON NOT NULL,
                owner_principal VARCHAR,
                access_attributes JSON,
                tenant_id VARCHAR,
                seq {}
            )",
            paging::seq_column_type(s.dialect())
        ),
        &[],
    )?;
    paging::add_missing_columns(s, table, &owner::COLUMN_TYPES)?;
    for column in paging::add_missing_columns(s, table, &COLUMNS_INSIDE_THE_OBJECT)? {
        let member = s.dialect().json_field("response_object", column);
        s.execute(
            &format!("UPDATE {table} SET {column} = COALESCE({member}, '[]')"),
            &[],
        )?;
    }
    paging::add_seq(s, table, "created_at")
}

impl SqlResponseTable {
    /// The table `table` in `db`, created (or brought up to date) if needed. Blocks: call it
    /// at start-up or on a blocking thread.
    pub fn on(db: Arc<SqlDatabase>, table: &str) -> Result<Self, TableError> {
        prepare_table(&db, table, create_table)?;
        Ok(Self {
            db,
            table: table.to_string(),
        })
    }

    fn response(row: Vec<SqlValue>) -> Result<StoredResponse, StoreError> {
        let mut columns = row.into_iter();
        let mut next = || columns.next().unwrap_or(SqlValue::Null);
        let id = next().into_text()?;
        let created_at = next().as_i64()?;
        let model = next().into_text()?;
        let mut response = next().into_json();
        if let Value::Object(fields) = &mut response {
            // Rows OGX wrote keep these inside the object.
            fields.remove("input");
            fields.remove("messages");
        }
        Ok(StoredResponse {
            id,
            created_at,
            model,
            response,
            input: next().into_json(),
            messages: next().into_json(),
            owner: Owner::from_values(next(), next(), next()),
        })
    }
}

impl ResponseTable for SqlResponseTable {
    fn put(&self, response: &StoredResponse) -> Result<(), StoreError> {
        let table = &self.table;
        self.db.write(|s: &mut dyn SqlSession| {
            let mut params = vec![
                SqlValue::Text(response.id.clone()),
                SqlValue::Int(response.created_at),
                SqlValue::Text(response.model.clone()),
                SqlValue::Json(response.response.clone()),
                SqlValue::Json(response.input.clone()),
                SqlValue::Json(response.messages.clone()),
            ];
            params.extend(response.owner.params());
            let (seq_column, seq_value) = match paging::last_seq(s, table)? {
                Some(last) => {
                    params.push(SqlValue::Int(last + 1));
                    (", seq", ", $10")
                }
                None => ("", ""),
            };
            // A replaced row keeps its place in the listing order.
            s.execute(
                &format!(
                    "INSERT INTO {table} ({COLUMNS}{seq_column})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9{seq_value})
                     ON CONFLICT (id) DO UPDATE SET response_object = excluded.response_object,
                        input = excluded.input, messages = excluded.messages"
                ),
                &params,
            )?;
            Ok(())
        })
    }

    fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        self.db.read(|s: &mut dyn SqlSession| {
            paging::get_by_id(s, &self.table, COLUMNS, id, Self::response)
        })
    }

    fn delete(&self, id: &str) -> Result<bool, StoreError> {
        self.db.write(|s: &mut dyn SqlSession| {
            let deleted = s.execute(
                &format!("DELETE FROM {} WHERE id = $1", self.table),
                &[SqlValue::Text(id.to_string())],
            )?;
            Ok(deleted > 0)
        })
    }

    fn list(&self, query: &ListQuery) -> Result<ResponsePage, StoreError> {
        self.db.read(|s: &mut dyn SqlSession| {
            let (data, has_more) = paging::list_page(
                s,
                &self.table,
                "created_at",
                paging::TieBreak::Seq,
                COLUMNS,
                query,
                Self::response,
            )?;
            Ok(ResponsePage { data, has_more })
        })
    }

    fn name(&self) -> &str {
        &self.table
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::storage::inference_store::Order;
    use serde_json::json;

    /// Creates `table` as OGX does (`response_object` holding `input` and `messages`) with one
    /// row, opens it with ogx, and checks that the row reads and the table takes new rows
    /// after it.
    pub fn a_table_ogx_created_is_read_and_extended(db: Arc<SqlDatabase>, table: &str) {
        let object = json!({"id": "resp_ogx", "status": "completed",
            "input": [{"type": "message", "role": "user", "content": "hi"}],
            "messages": [{"role": "user", "content": "hi"}]});
        db.write(|s: &mut dyn SqlSession| {
            s.execute(
                &format!(
                    "CREATE TABLE {table} (id VARCHAR PRIMARY KEY, created_at INTEGER,
                        model VARCHAR, response_object JSON)"
                ),
                &[],
            )?;
            s.execute(
                &format!("INSERT INTO {table} VALUES ('resp_ogx', 3, 'm', $1)"),
                &[SqlValue::Json(object)],
            )
        })
        .unwrap();
        let responses = SqlResponseTable::on(db, table).unwrap();
        let old = responses.get("resp_ogx").unwrap().unwrap();
        assert_eq!(
            old.response,
            json!({"id": "resp_ogx", "status": "completed"})
        );
        assert_eq!(old.input[0]["content"], "hi");
        assert_eq!(old.messages, json!([{"role": "user", "content": "hi"}]));
        responses.put(&response("resp_new", 4)).unwrap();
        let query = ListQuery {
            after: None,
            limit: 10,
            order: Order::Asc,
            model: None,
        };
        let ids: Vec<String> = responses
            .list(&query)
            .unwrap()
            .data
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["resp_ogx", "resp_new"]);
    }

    pub fn response(id: &str, created_at: i64) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            created_at,
            model: "m".into(),
            response: json!({"id": id}),
            input: json!([]),
            messages: json!([{"role": "user", "content": id}]),
            owner: Owner::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::response;
    use super::*;
    use crate::storage::inference_store::Order;
    use serde_json::json;
    use std::path::Path;

    fn open(path: &Path, table: &str) -> Result<SqlResponseTable, TableError> {
        SqlResponseTable::on(Arc::new(SqlDatabase::open_sqlite(path)?), table)
    }

    #[test]
    fn put_get_list_delete_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql.db");
        {
            let table = open(&path, "responses").unwrap();
            for (id, created) in [("a", 5), ("b", 5), ("c", 4)] {
                table.put(&response(id, created)).unwrap();
            }
            // Replacing keeps the row's place.
            let mut replaced = response("a", 5);
            replaced.response = json!({"id": "a", "status": "completed"});
            table.put(&replaced).unwrap();
        }
        let table = open(&path, "responses").unwrap();
        let query = |after: Option<&str>, order| ListQuery {
            after: after.map(str::to_string),
            limit: 2,
            order,
            model: None,
        };
        let page = table.list(&query(None, Order::Desc)).unwrap();
        let ids: Vec<&str> = page.data.iter().map(|r| r.id.as_str()).collect();
        assert_eq!((ids, page.has_more), (vec!["b", "a"], true));
        let page = table.list(&query(Some("a"), Order::Desc)).unwrap();
        assert_eq!(page.data[0].id, "c");
        assert!(!page.has_more);
        assert_eq!(
            table.get("a").unwrap().unwrap().response["status"],
            "completed"
        );
        assert!(table.delete("a").unwrap());
        assert!(!table.delete("a").unwrap());
        assert_eq!(table.get("a").unwrap(), None);
        assert!(matches!(
            table.list(&query(Some("zz"), Order::Asc)),
            Err(StoreError::UnknownAfter { .. })
        ));
        assert!(matches!(
            open(&path, "bad-name"),
            Err(TableError::BadName(_))
        ));
    }

    #[test]
    fn a_table_ogx_created_is_read_and_extended() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(SqlDatabase::open_sqlite(&dir.path().join("sql_store.db")).unwrap());
        test_support::a_table_ogx_created_is_read_and_extended(db, "responses");
    }
}
