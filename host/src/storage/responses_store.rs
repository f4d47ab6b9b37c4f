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
//! **Backends.** [`ResponseTable`] is the seam: [`SqliteResponseTable`] implements it today;
//! another SQL backend can implement the same trait.
//!
//! **Ordering.** Listing is by `(created_at, seq)`, `seq` an insertion counter, so responses
//! created in the same second keep a stable order and `after` paging never skips one.
//!
//! **Failures.** Every operation returns [`StoreError`]: `Backend` for a database failure (the
//! server answers 500 and logs the reason), `UnknownAfter` for an `after` that names nothing.

use super::inference_store::{
    ListQuery, StoreError, TableError, blocking, json_column, list_page, lock,
};
use super::sqlite::{self, OpenError};
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};

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
}

/// The stored responses, behind a [`ResponseTable`].
pub struct ResponsesStore {
    table: Arc<dyn ResponseTable>,
}

impl ResponsesStore {
    pub fn new(table: Arc<dyn ResponseTable>) -> Self {
        Self { table }
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

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// The responses table in a SQLite file: one connection writes, another reads.
pub struct SqliteResponseTable {
    table: String,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

const COLUMNS: &str = "id, created_at, model, response_object, input, messages";

/// Creates the table and its ordering index. A table OGX created (`id`, `created_at`, `model`,
/// `response_object` holding `input` and `messages` inside it) gets the other columns added,
/// filled from its rows, so responses OGX stored can be read and continued.
fn create_table(connection: &Connection, table: &str) -> rusqlite::Result<()> {
    connection.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            id TEXT PRIMARY KEY,
            created_at INTEGER NOT NULL,
            model TEXT NOT NULL,
            response_object JSON NOT NULL,
            input JSON NOT NULL,
            messages JSON NOT NULL,
            seq INTEGER NOT NULL
        )"
    ))?;
    let has = |column: &str| -> rusqlite::Result<bool> {
        connection.query_row(
            &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
            [column],
            |row| row.get::<_, i64>(0).map(|count| count > 0),
        )
    };
    for column in ["input", "messages"] {
        if !has(column)? {
            connection.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} JSON;
                 UPDATE {table} SET {column} =
                    COALESCE(json_extract(response_object, '$.{column}'), '[]');"
            ))?;
        }
    }
    if !has("seq")? {
        connection.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN seq INTEGER; UPDATE {table} SET seq = rowid;"
        ))?;
    }
    connection.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS {table}_created_seq ON {table} (created_at, seq)"
    ))
}

impl SqliteResponseTable {
    /// Opens the table `table` in the database at `path`, creating both if needed. Blocks on
    /// the file system.
    pub fn open(path: &Path, table: &str) -> Result<Self, TableError> {
        if !super::inference_store::is_plain_identifier(table) {
            return Err(TableError::BadName(table.to_string()));
        }
        let writer = sqlite::open(path)?;
        create_table(&writer, table).map_err(|error| OpenError {
            path: path.to_path_buf(),
            reason: error.to_string(),
        })?;
        let reader = sqlite::open(path)?;
        Ok(Self {
            table: table.to_string(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }

    fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredResponse> {
        let mut response = json_column(row, 3)?;
        if let Value::Object(fields) = &mut response {
            // Rows OGX wrote keep these inside the object.
            fields.remove("input");
            fields.remove("messages");
        }
        Ok(StoredResponse {
            id: row.get(0)?,
            created_at: row.get(1)?,
            model: row.get(2)?,
            response,
            input: json_column(row, 4)?,
            messages: json_column(row, 5)?,
        })
    }
}

impl ResponseTable for SqliteResponseTable {
    fn put(&self, response: &StoredResponse) -> Result<(), StoreError> {
        let connection = lock(&self.writer);
        // A replaced row keeps its place in the listing order.
        connection
            .execute(
                &format!(
                    "INSERT INTO {table} ({COLUMNS}, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6,
                        (SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}))
                     ON CONFLICT(id) DO UPDATE SET response_object = excluded.response_object,
                        input = excluded.input, messages = excluded.messages",
                    table = self.table
                ),
                rusqlite::params![
                    response.id,
                    response.created_at,
                    response.model,
                    response.response.to_string(),
                    response.input.to_string(),
                    response.messages.to_string(),
                ],
            )
            .map(|_| ())
            .map_err(backend)
    }

    fn get(&self, id: &str) -> Result<Option<StoredResponse>, StoreError> {
        lock(&self.reader)
            .query_row(
                &format!("SELECT {COLUMNS} FROM {} WHERE id = ?1", self.table),
                [id],
                Self::row,
            )
            .optional()
            .map_err(backend)
    }

    fn delete(&self, id: &str) -> Result<bool, StoreError> {
        lock(&self.writer)
            .execute(&format!("DELETE FROM {} WHERE id = ?1", self.table), [id])
            .map(|deleted| deleted > 0)
            .map_err(backend)
    }

    fn list(&self, query: &ListQuery) -> Result<ResponsePage, StoreError> {
        let connection = lock(&self.reader);
        let (data, has_more) = list_page(
            &connection,
            &self.table,
            "created_at",
            COLUMNS,
            query,
            Self::row,
        )?;
        Ok(ResponsePage { data, has_more })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::inference_store::Order;
    use serde_json::json;

    fn response(id: &str, created_at: i64) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            created_at,
            model: "m".into(),
            response: json!({"id": id}),
            input: json!([]),
            messages: json!([{"role": "user", "content": id}]),
        }
    }

    #[test]
    fn put_get_list_delete_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql.db");
        {
            let table = SqliteResponseTable::open(&path, "responses").unwrap();
            for (id, created) in [("a", 5), ("b", 5), ("c", 4)] {
                table.put(&response(id, created)).unwrap();
            }
            // Replacing keeps the row's place.
            let mut replaced = response("a", 5);
            replaced.response = json!({"id": "a", "status": "completed"});
            table.put(&replaced).unwrap();
        }
        let table = SqliteResponseTable::open(&path, "responses").unwrap();
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
            SqliteResponseTable::open(&path, "bad-name"),
            Err(TableError::BadName(_))
        ));
    }

    #[test]
    fn a_table_ogx_created_is_read_and_extended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql_store.db");
        {
            let connection = sqlite::open(&path).unwrap();
            connection
                .execute_batch(
                    "CREATE TABLE responses (id TEXT PRIMARY KEY, created_at INTEGER,
                        model TEXT, response_object JSON);",
                )
                .unwrap();
            let object = json!({"id": "resp_ogx", "status": "completed",
                "input": [{"type": "message", "role": "user", "content": "hi"}],
                "messages": [{"role": "user", "content": "hi"}]});
            connection
                .execute(
                    "INSERT INTO responses VALUES ('resp_ogx', 3, 'm', ?1)",
                    [object.to_string()],
                )
                .unwrap();
        }
        let table = SqliteResponseTable::open(&path, "responses").unwrap();
        let old = table.get("resp_ogx").unwrap().unwrap();
        assert_eq!(
            old.response,
            json!({"id": "resp_ogx", "status": "completed"})
        );
        assert_eq!(old.input[0]["content"], "hi");
        assert_eq!(old.messages, json!([{"role": "user", "content": "hi"}]));
        table.put(&response("resp_new", 4)).unwrap();
        let query = ListQuery {
            after: None,
            limit: 10,
            order: Order::Asc,
            model: None,
        };
        let ids: Vec<String> = table
            .list(&query)
            .unwrap()
            .data
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["resp_ogx", "resp_new"]);
    }
}
