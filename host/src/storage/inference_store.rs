//! [`InferenceStore`]: the chat-completion history (`storage.stores.inference`).
//!
//! **Writes** never hold up an answer: [`InferenceStore::record`] puts the completion on a
//! bounded queue (`max_write_queue_size`) and returns. Writer threads drain it in batches, one
//! transaction per batch of up to [`MAX_WRITE_BATCH`]. When the queue is full the write waits
//! on a background task for room — nothing is dropped — and the answer goes out all the same;
//! completions recorded while the queue is full may be stored out of request order.
//!
//! **Writers.** `num_writers` threads are started, but never more than the backend can use
//! ([`CompletionTable::max_writers`]): SQLite has one write lock per file, so extra writer
//! threads would only wait for each other; its single writer commits whole batches instead.
//!
//! **Backends.** [`CompletionTable`] is the seam: [`SqliteTable`] implements it today; a
//! Postgres table (OGX's `sql_postgres`) can be added behind the same trait later.
//!
//! **Ordering.** Rows are listed by `(created, seq)`: `created` is the completion's own second,
//! `seq` an insertion counter, so completions created in the same second keep a stable order
//! and paging with `after` never skips or repeats one (OGX orders by `created` only and skips
//! rows that share the `after` row's second).
//!
//! **Failures.** A batch that cannot be written (full disk, a lock held past the busy
//! timeout) is logged with its size and dropped; the server keeps serving. Reads fail with
//! [`StoreError`]. [`InferenceStore::shutdown`] closes the queue, waits until every queued
//! completion is written, and says how many were.

use super::sqlite::{self, OpenError};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Default `max_write_queue_size` (OGX's).
pub const DEFAULT_MAX_WRITE_QUEUE_SIZE: u64 = 10_000;
/// Default `num_writers` (OGX's).
pub const DEFAULT_NUM_WRITERS: u64 = 4;
/// Most completions one writer commits in one transaction.
pub const MAX_WRITE_BATCH: usize = 256;
/// Writer threads a SQLite table uses, whatever `num_writers` says (see the module docs).
pub const SQLITE_MAX_WRITERS: usize = 1;
/// Longest table name accepted.
pub const MAX_TABLE_NAME_LEN: usize = 63;

/// One stored chat completion.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCompletion {
    pub id: String,
    /// Seconds since the epoch, from the completion itself.
    pub created: i64,
    /// The model id the client asked for.
    pub model: String,
    /// The answer's `choices` array.
    pub choices: Value,
    /// The request's `messages` array.
    pub input_messages: Value,
}

impl StoredCompletion {
    /// OGX's `OpenAICompletionWithInputMessages`: the completion as `chat.completion`, usage
    /// not stored, plus `input_messages`.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "choices": self.choices,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "service_tier": null,
            "system_fingerprint": null,
            "usage": null,
            "input_messages": self.input_messages,
        })
    }
}

/// Listing direction by `(created, seq)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// What `GET /v1/chat/completions` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Start after this completion id.
    pub after: Option<String>,
    pub limit: usize,
    pub order: Order,
    /// Only completions of this client-facing model id.
    pub model: Option<String>,
}

/// One page of completions.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub data: Vec<StoredCompletion>,
    pub has_more: bool,
}

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// `after` names no stored completion (OGX's message).
    #[error("Record with id='{id}' not found in table '{table}'")]
    UnknownAfter { id: String, table: String },
    /// The database could not be read; SQLite's reason.
    #[error("the chat-completion history could not be read: {0}")]
    Backend(String),
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// A table of completions. Methods block: [`InferenceStore`] calls them on blocking threads.
pub trait CompletionTable: Send + Sync + 'static {
    /// Stores a batch, all or nothing; a completion whose id is already stored replaces it.
    fn insert(&self, batch: &[StoredCompletion]) -> Result<(), StoreError>;
    fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;
    fn get(&self, id: &str) -> Result<Option<StoredCompletion>, StoreError>;
    /// How many writer threads can usefully write at once.
    fn max_writers(&self) -> usize;
}

/// The chat-completion history: a [`CompletionTable`] behind a bounded write queue.
pub struct InferenceStore {
    table: Arc<dyn CompletionTable>,
    queue: Mutex<Option<mpsc::Sender<StoredCompletion>>>,
    writers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    written: Arc<AtomicU64>,
}

impl InferenceStore {
    /// Starts `min(num_writers, table.max_writers())` writers draining a queue of
    /// `max_write_queue_size` (both at least 1). Must be called inside a tokio runtime.
    pub fn start(
        table: Arc<dyn CompletionTable>,
        max_write_queue_size: usize,
        num_writers: usize,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(max_write_queue_size.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let written = Arc::new(AtomicU64::new(0));
        let writers = (0..num_writers.clamp(1, table.max_writers().max(1)))
            .map(|_| {
                let (table, receiver, written) = (
                    Arc::clone(&table),
                    Arc::clone(&receiver),
                    Arc::clone(&written),
                );
                tokio::task::spawn_blocking(move || drain(&*table, &receiver, &written))
            })
            .collect();
        Self {
            table,
            queue: Mutex::new(Some(sender)),
            writers: Mutex::new(writers),
            written,
        }
    }

    /// Queues `completion` for writing and returns at once (see the module docs for a full
    /// queue). After [`Self::shutdown`] the completion is logged and not stored.
    pub fn record(&self, completion: StoredCompletion) {
        let Some(sender) = lock(&self.queue).clone() else {
            tracing::warn!(id = %completion.id, "the inference store is shut down: chat completion not recorded");
            return;
        };
        match sender.try_send(completion) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(completion)) => {
                tracing::debug!("the inference store's write queue is full: the write waits");
                tokio::spawn(async move {
                    // Fails only once the writers are gone, which shutdown prevents while a
                    // sender (this one) is alive.
                    let _ = sender.send(completion).await;
                });
            }
            Err(mpsc::error::TrySendError::Closed(completion)) => {
                tracing::error!(id = %completion.id, "the inference store's writers stopped: chat completion not recorded");
            }
        }
    }

    pub async fn list(&self, query: ListQuery) -> Result<Page, StoreError> {
        let table = Arc::clone(&self.table);
        blocking(move || table.list(&query)).await
    }

    pub async fn get(&self, id: &str) -> Result<Option<StoredCompletion>, StoreError> {
        let (table, id) = (Arc::clone(&self.table), id.to_string());
        blocking(move || table.get(&id)).await
    }

    /// Closes the queue, waits until the writers have written everything queued (including
    /// writes still waiting for room), and returns how many completions were written since
    /// start.
    pub async fn shutdown(&self) -> u64 {
        drop(lock(&self.queue).take());
        let writers = std::mem::take(&mut *lock(&self.writers));
        for writer in writers {
            if let Err(error) = writer.await {
                tracing::error!("an inference store writer failed: {error}");
            }
        }
        self.written.load(Ordering::Relaxed)
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Backend(format!("the read task failed: {error}")))?
}

/// A writer thread: takes what is queued (up to a batch), writes it, until the queue is
/// closed and empty.
fn drain(
    table: &dyn CompletionTable,
    receiver: &Mutex<mpsc::Receiver<StoredCompletion>>,
    written: &AtomicU64,
) {
    loop {
        let batch = {
            let mut receiver = lock(receiver);
            let Some(first) = receiver.blocking_recv() else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_WRITE_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        match table.insert(&batch) {
            Ok(()) => {
                written.fetch_add(batch.len() as u64, Ordering::Relaxed);
            }
            Err(error) => tracing::error!(
                "{} chat completion(s) could not be stored: {error}",
                batch.len()
            ),
        }
    }
}

/// The completions table in a SQLite file: one connection writes, another reads (WAL lets
/// reads go on during a write).
pub struct SqliteTable {
    table: String,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

/// Why a table could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error(
        "table name {0:?} is not a plain identifier: use letters, digits and `_` (not first), at most {MAX_TABLE_NAME_LEN} characters"
    )]
    BadName(String),
    #[error(transparent)]
    Open(#[from] OpenError),
}

/// Whether `name` can be put in SQL as a table name without quoting surprises.
pub fn is_plain_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= MAX_TABLE_NAME_LEN
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl SqliteTable {
    /// Opens the table `table` in the database at `path`, creating both if needed. Blocks on
    /// the file system.
    pub fn open(path: &Path, table: &str) -> Result<Self, TableError> {
        check_name(table)?;
        let open_error = |error: rusqlite::Error| OpenError {
            path: path.to_path_buf(),
            reason: error.to_string(),
        };
        let writer = sqlite::open(path)?;
        create_table(&writer, table).map_err(open_error)?;
        let reader = sqlite::open(path)?;
        Ok(Self::new(table, writer, reader))
    }

    /// A table in a private in-memory database (tests, benches).
    pub fn in_memory(table: &str) -> Result<Self, TableError> {
        check_name(table)?;
        let uri = format!(
            "file:ogx-inference-{}?mode=memory&cache=shared",
            uuid::Uuid::new_v4().simple()
        );
        let flags = OpenFlags::default() | OpenFlags::SQLITE_OPEN_URI;
        let open = || {
            Connection::open_with_flags(&uri, flags).map_err(|error| OpenError {
                path: uri.clone().into(),
                reason: error.to_string(),
            })
        };
        let writer = open()?;
        create_table(&writer, table).map_err(|error| OpenError {
            path: uri.clone().into(),
            reason: error.to_string(),
        })?;
        let reader = open()?;
        Ok(Self::new(table, writer, reader))
    }

    fn new(table: &str, writer: Connection, reader: Connection) -> Self {
        Self {
            table: table.to_string(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        }
    }

    fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredCompletion> {
        Ok(StoredCompletion {
            id: row.get(0)?,
            created: row.get(1)?,
            model: row.get(2)?,
            choices: json_column(row, 3)?,
            input_messages: json_column(row, 4)?,
        })
    }
}

fn check_name(table: &str) -> Result<(), TableError> {
    if is_plain_identifier(table) {
        Ok(())
    } else {
        Err(TableError::BadName(table.to_string()))
    }
}

/// Creates the table and its ordering index. A table OGX created in the same file (same
/// columns, no `seq`) gets `seq` added, numbered in insertion (rowid) order.
fn create_table(connection: &Connection, table: &str) -> rusqlite::Result<()> {
    connection.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            id TEXT PRIMARY KEY,
            created INTEGER NOT NULL,
            model TEXT NOT NULL,
            choices JSON NOT NULL,
            input_messages JSON NOT NULL,
            seq INTEGER NOT NULL
        )"
    ))?;
    let has_seq: bool = connection
        .query_row(
            &format!("SELECT COUNT(*) FROM pragma_table_info('{table}') WHERE name = 'seq'"),
            [],
            |row| row.get::<_, i64>(0),
        )
        .map(|count| count > 0)?;
    if !has_seq {
        connection.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN seq INTEGER; UPDATE {table} SET seq = rowid;"
        ))?;
    }
    connection.execute_batch(&format!(
        "CREATE INDEX IF NOT EXISTS {table}_created_seq ON {table} (created, seq)"
    ))
}

const COLUMNS: &str = "id, created, model, choices, input_messages";

impl CompletionTable for SqliteTable {
    fn insert(&self, batch: &[StoredCompletion]) -> Result<(), StoreError> {
        let mut connection = lock(&self.writer);
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        let last: i64 = transaction
            .query_row(
                &format!("SELECT COALESCE(MAX(seq), 0) FROM {}", self.table),
                [],
                |row| row.get(0),
            )
            .map_err(backend)?;
        {
            let mut statement = transaction
                .prepare(&format!(
                    "INSERT OR REPLACE INTO {} ({COLUMNS}, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    self.table
                ))
                .map_err(backend)?;
            for (completion, seq) in batch.iter().zip(last + 1..) {
                statement
                    .execute(rusqlite::params![
                        completion.id,
                        completion.created,
                        completion.model,
                        completion.choices.to_string(),
                        completion.input_messages.to_string(),
                        seq,
                    ])
                    .map_err(backend)?;
            }
        }
        transaction.commit().map_err(backend)
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let connection = lock(&self.reader);
        let (data, has_more) = list_page(
            &connection,
            &self.table,
            "created",
            COLUMNS,
            query,
            Self::row,
        )?;
        Ok(Page { data, has_more })
    }

    fn get(&self, id: &str) -> Result<Option<StoredCompletion>, StoreError> {
        lock(&self.reader)
            .query_row(
                &format!("SELECT {COLUMNS} FROM {} WHERE id = ?1", self.table),
                [id],
                Self::row,
            )
            .optional()
            .map_err(backend)
    }

    fn max_writers(&self) -> usize {
        SQLITE_MAX_WRITERS
    }
}

/// One page of rows of `table` for `query`, by `(<created_column>, seq)`: `model` filters,
/// `after` is a row id (its position; [`StoreError::UnknownAfter`] when no row has it), one
/// more row than `limit` is read to know whether there are more. Shared by the SQLite tables of
/// the chat-completion history and of the Responses API.
pub(crate) fn list_page<T>(
    connection: &Connection,
    table: &str,
    created_column: &str,
    columns: &str,
    query: &ListQuery,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<(Vec<T>, bool), StoreError> {
    let mut conditions = Vec::new();
    let mut values: Vec<SqlValue> = Vec::new();
    if let Some(model) = &query.model {
        values.push(SqlValue::Text(model.clone()));
        conditions.push(format!("model = ?{}", values.len()));
    }
    if let Some(after) = &query.after {
        let position: Option<(i64, i64)> = connection
            .query_row(
                &format!("SELECT {created_column}, seq FROM {table} WHERE id = ?1"),
                [after],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(backend)?;
        let Some((created, seq)) = position else {
            return Err(StoreError::UnknownAfter {
                id: after.clone(),
                table: table.to_string(),
            });
        };
        values.push(SqlValue::Integer(created));
        values.push(SqlValue::Integer(seq));
        let op = if query.order == Order::Asc { ">" } else { "<" };
        conditions.push(format!(
            "({created_column}, seq) {op} (?{}, ?{})",
            values.len() - 1,
            values.len()
        ));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let direction = if query.order == Order::Asc {
        "ASC"
    } else {
        "DESC"
    };
    // One more than asked, to know whether there are more.
    values.push(SqlValue::Integer(query.limit as i64 + 1));
    let sql = format!(
        "SELECT {columns} FROM {table} {filter} ORDER BY {created_column} {direction}, seq {direction} LIMIT ?{}",
        values.len()
    );
    let mut statement = connection.prepare(&sql).map_err(backend)?;
    let mut data = statement
        .query_map(params_from_iter(values), row)
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    let has_more = data.len() > query.limit;
    data.truncate(query.limit);
    Ok((data, has_more))
}

/// The JSON text in column `index`; `null` when it does not parse.
pub(crate) fn json_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Value> {
    let text: String = row.get(index)?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn completion(id: &str, created: i64, model: &str) -> StoredCompletion {
        StoredCompletion {
            id: id.into(),
            created,
            model: model.into(),
            choices: json!([{"index": 0, "message": {"role": "assistant", "content": id}}]),
            input_messages: json!([{"role": "user", "content": "hi"}]),
        }
    }

    fn query(after: Option<&str>, limit: usize, order: Order) -> ListQuery {
        ListQuery {
            after: after.map(str::to_string),
            limit,
            order,
            model: None,
        }
    }

    fn ids(page: &Page) -> Vec<&str> {
        page.data.iter().map(|c| c.id.as_str()).collect()
    }

    /// Every id, following `after` from page to page.
    fn walk(table: &SqliteTable, limit: usize, order: Order) -> Vec<String> {
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = table.list(&query(after.as_deref(), limit, order)).unwrap();
            seen.extend(page.data.iter().map(|c| c.id.clone()));
            if !page.has_more {
                return seen;
            }
            after = seen.last().cloned();
        }
    }

    #[test]
    fn table_names_must_be_plain_identifiers() {
        for good in ["inference_store", "_t", "T1"] {
            assert!(is_plain_identifier(good), "{good}");
        }
        let long = "t".repeat(MAX_TABLE_NAME_LEN + 1);
        for bad in ["", "1t", "a-b", "a b", "t;drop", "\"t\"", long.as_str()] {
            assert!(!is_plain_identifier(bad), "{bad}");
            assert!(matches!(
                SqliteTable::in_memory(bad),
                Err(TableError::BadName(_))
            ));
        }
    }

    #[test]
    fn paging_sees_rows_of_the_same_second_exactly_once() {
        let table = SqliteTable::in_memory("inference_store").unwrap();
        // 25 rows in three seconds, inserted in two batches, some out of `created` order.
        let batch: Vec<_> = (0..25)
            .map(|i| completion(&format!("c{i:02}"), 100 + [1, 0, 2][i % 3], "m"))
            .collect();
        table.insert(&batch[..10]).unwrap();
        table.insert(&batch[10..]).unwrap();
        let mut expected: Vec<_> = batch.iter().enumerate().collect();
        expected.sort_by_key(|(seq, c)| (c.created, *seq));
        let expected: Vec<String> = expected.iter().map(|(_, c)| c.id.clone()).collect();
        for limit in [1, 4, 7, 25, 100] {
            assert_eq!(walk(&table, limit, Order::Asc), expected, "limit {limit}");
            let mut reversed = expected.clone();
            reversed.reverse();
            assert_eq!(walk(&table, limit, Order::Desc), reversed, "limit {limit}");
        }
        let page = table.list(&query(None, 25, Order::Desc)).unwrap();
        assert!(!page.has_more);
        let page = table.list(&query(None, 24, Order::Desc)).unwrap();
        assert!(page.has_more);
        let page = table
            .list(&query(Some(expected[23].as_str()), 5, Order::Asc))
            .unwrap();
        assert_eq!(ids(&page), [expected[24].as_str()]);
        assert!(!page.has_more);
    }

    #[test]
    fn model_filter_unknown_after_and_get() {
        let table = SqliteTable::in_memory("inference_store").unwrap();
        table
            .insert(&[completion("a", 1, "x/m"), completion("b", 2, "y/m")])
            .unwrap();
        let mut only_y = query(None, 20, Order::Desc);
        only_y.model = Some("y/m".into());
        assert_eq!(ids(&table.list(&only_y).unwrap()), ["b"]);
        assert_eq!(
            table.list(&query(Some("nope"), 20, Order::Desc)),
            Err(StoreError::UnknownAfter {
                id: "nope".into(),
                table: "inference_store".into()
            })
        );
        assert_eq!(
            StoreError::UnknownAfter {
                id: "nope".into(),
                table: "t".into()
            }
            .to_string(),
            "Record with id='nope' not found in table 't'"
        );
        assert_eq!(table.get("a").unwrap(), Some(completion("a", 1, "x/m")));
        assert_eq!(table.get("zzz").unwrap(), None);
    }

    #[test]
    fn a_table_without_seq_gets_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sql_store.db");
        let connection = sqlite::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE inference_store (id TEXT PRIMARY KEY, created INTEGER,
                    model TEXT, choices JSON, input_messages JSON, owner_principal TEXT);
                 INSERT INTO inference_store VALUES ('old1', 5, 'm', '[]', '[]', NULL);
                 INSERT INTO inference_store VALUES ('old2', 5, 'm', '[]', '[]', NULL);",
            )
            .unwrap();
        drop(connection);
        let table = SqliteTable::open(&path, "inference_store").unwrap();
        table.insert(&[completion("new", 5, "m")]).unwrap();
        assert_eq!(walk(&table, 1, Order::Asc), ["old1", "old2", "new"]);
    }

    /// A table that takes its time over each batch.
    struct Slow(SqliteTable);

    impl CompletionTable for Slow {
        fn insert(&self, batch: &[StoredCompletion]) -> Result<(), StoreError> {
            std::thread::sleep(Duration::from_millis(20));
            self.0.insert(batch)
        }
        fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
            self.0.list(query)
        }
        fn get(&self, id: &str) -> Result<Option<StoredCompletion>, StoreError> {
            self.0.get(id)
        }
        fn max_writers(&self) -> usize {
            4
        }
    }

    #[tokio::test]
    async fn a_full_queue_makes_writes_wait_and_none_is_lost() {
        let table = Arc::new(Slow(SqliteTable::in_memory("t").unwrap()));
        let store = InferenceStore::start(table.clone(), 1, 2);
        let started = std::time::Instant::now();
        for i in 0..30 {
            store.record(completion(&format!("c{i}"), 1, "m"));
        }
        // Recording never waits for the writers.
        assert!(started.elapsed() < Duration::from_millis(200));
        assert_eq!(store.shutdown().await, 30);
        let page = store.list(query(None, 100, Order::Asc)).await.unwrap();
        assert_eq!(page.data.len(), 30);
    }

    #[tokio::test]
    async fn shutdown_drains_the_queue_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sql_store.db");
        let table = Arc::new(SqliteTable::open(&path, "inference_store").unwrap());
        let store = InferenceStore::start(table, DEFAULT_MAX_WRITE_QUEUE_SIZE as usize, 4);
        for i in 0..500 {
            store.record(completion(&format!("c{i}"), i / 100, "m"));
        }
        assert_eq!(store.shutdown().await, 500);
        // A recording after shutdown is refused, not queued forever.
        store.record(completion("late", 1, "m"));
        let reopened = SqliteTable::open(&path, "inference_store").unwrap();
        assert_eq!(walk(&reopened, 100, Order::Asc).len(), 500);
        assert_eq!(reopened.get("late").unwrap(), None);
    }
}
