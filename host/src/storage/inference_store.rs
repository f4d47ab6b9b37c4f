//! [`InferenceStore`]: the chat-completion history (`storage.stores.inference`).
//!
//! **Writes** never hold up an answer: [`InferenceStore::record`] puts the completion on a
//! bounded queue (`max_write_queue_size`) and returns. Writer threads drain it in batches, one
//! transaction per batch of up to [`MAX_WRITE_BATCH`]. When the queue is full the write waits
//! on a background task for room — nothing is dropped — and the answer goes out all the same;
//! completions recorded while the queue is full may be stored out of request order.
//!
//! **Writers.** `num_writers` tasks on blocking threads are started, but never more than the
//! backend can use ([`CompletionTable::max_writers`]): SQLite has one write lock per file, so
//! extra writers would only wait for each other (its single writer commits whole batches
//! instead); on PostgreSQL up to the pool's size write at once.
//!
//! **Backends.** [`CompletionTable`] is the seam; [`SqlTable`] implements it on any
//! [`SqlDatabase`] (SQLite or PostgreSQL) with one set of SQL. Its layout is OGX's
//! (`id`, `created`, `model`, `choices`, `input_messages`, `owner_principal`,
//! `access_attributes`; the last two NULL, as OGX writes them without authentication) plus
//! `seq`, which ogx adds to a table OGX created.
//!
//! **Ordering.** Rows are listed by `(created, seq)`: `created` is the completion's own second,
//! `seq` an insertion counter (SQLite: the next number in the writer's transaction;
//! PostgreSQL: a sequence), so completions created in the same second keep a stable order
//! and paging with `after` never skips or repeats one (OGX orders by `created` only and skips
//! rows that share the `after` row's second). On PostgreSQL with several writers, a page read
//! while two batches commit may miss the later-committing one's rows; it is listed afterwards.
//!
//! **Failures.** A batch that cannot be written (full disk, a lock held past the busy
//! timeout, PostgreSQL down) is retried with a growing pause ([`RETRY_FIRST_PAUSE`] up to
//! [`RETRY_MAX_PAUSE`]) for as long as the server runs; nothing accepted is dropped. Reads fail
//! with [`StoreError`]. [`InferenceStore::shutdown`] closes the queue and waits until every
//! queued completion is written; a batch that still fails after [`SHUTDOWN_WRITE_ATTEMPTS`]
//! more tries is given up, and the [`ShutdownReport`] counts (and the log lists the ids of)
//! what could not be written.

use super::sql::{SqlDatabase, SqlError, SqlSession, SqlValue};
use super::sqlite::OpenError;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Default `max_write_queue_size` (OGX's).
pub const DEFAULT_MAX_WRITE_QUEUE_SIZE: u64 = 10_000;
/// Default `num_writers` (OGX's).
pub const DEFAULT_NUM_WRITERS: u64 = 4;
/// Most completions one writer commits in one transaction.
pub const MAX_WRITE_BATCH: usize = 256;
/// Longest table name accepted.
pub const MAX_TABLE_NAME_LEN: usize = 63;
/// The pause before a failed batch is tried again; it doubles on each failure.
pub const RETRY_FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two tries of a failed batch.
pub const RETRY_MAX_PAUSE: Duration = Duration::from_secs(5);
/// Tries a failing batch still gets once shutdown has begun, before it is given up.
pub const SHUTDOWN_WRITE_ATTEMPTS: u32 = 5;

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
    /// The database could not be read or written; its reason.
    #[error("the chat-completion history could not be read: {0}")]
    Backend(String),
}

impl From<SqlError> for StoreError {
    fn from(error: SqlError) -> Self {
        StoreError::Backend(error.0)
    }
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

/// What [`InferenceStore::shutdown`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Completions written since start.
    pub written: u64,
    /// Accepted completions that could not be written (each id is in the log).
    pub lost: u64,
}

/// The chat-completion history: a [`CompletionTable`] behind a bounded write queue.
pub struct InferenceStore {
    table: Arc<dyn CompletionTable>,
    queue: Mutex<Option<mpsc::Sender<StoredCompletion>>>,
    writers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    progress: Arc<WriteProgress>,
}

/// Shared by the writers.
#[derive(Default)]
struct WriteProgress {
    written: AtomicU64,
    lost: AtomicU64,
    /// Set by shutdown: failing batches get [`SHUTDOWN_WRITE_ATTEMPTS`] more tries.
    closing: AtomicBool,
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
        let progress = Arc::new(WriteProgress::default());
        let writers = (0..Self::writer_count(&*table, num_writers))
            .map(|_| {
                let (table, receiver, progress) = (
                    Arc::clone(&table),
                    Arc::clone(&receiver),
                    Arc::clone(&progress),
                );
                tokio::task::spawn_blocking(move || drain(&*table, &receiver, &progress))
            })
            .collect();
        Self {
            table,
            queue: Mutex::new(Some(sender)),
            writers: Mutex::new(writers),
            progress,
        }
    }

    /// How many writers [`Self::start`] runs for `num_writers` on `table`.
    pub fn writer_count(table: &dyn CompletionTable, num_writers: usize) -> usize {
        num_writers.clamp(1, table.max_writers().max(1))
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
    /// writes still waiting for room), and reports how many completions were written since
    /// start and how many could not be.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.progress.closing.store(true, Ordering::Relaxed);
        drop(lock(&self.queue).take());
        let writers = std::mem::take(&mut *lock(&self.writers));
        for writer in writers {
            if let Err(error) = writer.await {
                tracing::error!("an inference store writer failed: {error}");
            }
        }
        ShutdownReport {
            written: self.progress.written.load(Ordering::Relaxed),
            lost: self.progress.lost.load(Ordering::Relaxed),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    super::sql::lock(mutex)
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Backend(format!("the read task failed: {error}")))?
}

/// A writer: takes what is queued (up to a batch), writes it, until the queue is closed and
/// empty.
fn drain(
    table: &dyn CompletionTable,
    receiver: &Mutex<mpsc::Receiver<StoredCompletion>>,
    progress: &WriteProgress,
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
        write_with_retries(table, &batch, progress);
    }
}

/// Writes `batch`, trying again after each failure with a growing pause: while the server
/// runs, until it succeeds; once shutdown has begun, [`SHUTDOWN_WRITE_ATTEMPTS`] more times.
fn write_with_retries(
    table: &dyn CompletionTable,
    batch: &[StoredCompletion],
    progress: &WriteProgress,
) {
    let mut pause = RETRY_FIRST_PAUSE;
    let mut tries_while_closing = 0;
    loop {
        let error = match table.insert(batch) {
            Ok(()) => {
                progress
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
            Err(error) => error,
        };
        if progress.closing.load(Ordering::Relaxed) {
            if tries_while_closing == 0 {
                // Shutdown is waiting: short pauses from here on.
                pause = RETRY_FIRST_PAUSE;
            }
            tries_while_closing += 1;
            if tries_while_closing >= SHUTDOWN_WRITE_ATTEMPTS {
                let ids: Vec<&str> = batch.iter().map(|c| c.id.as_str()).collect();
                tracing::error!(
                    "{} chat completion(s) could not be stored before shutdown: {error}; ids: {}",
                    batch.len(),
                    ids.join(", ")
                );
                progress
                    .lost
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
        }
        tracing::warn!(
            "{} chat completion(s) could not be stored yet ({error}); trying again in {pause:?}",
            batch.len()
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(RETRY_MAX_PAUSE);
    }
}

/// The completions table in a [`SqlDatabase`].
pub struct SqlTable {
    db: Arc<SqlDatabase>,
    table: String,
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
    /// The table could not be created or brought up to date; the database's reason.
    #[error("the table could not be created: {0}")]
    Schema(String),
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

impl SqlTable {
    /// The table `table` in `db`, created (or brought up to date) if needed. Blocks: call it
    /// at start-up or on a blocking thread.
    pub fn on(db: Arc<SqlDatabase>, table: &str) -> Result<Self, TableError> {
        if !is_plain_identifier(table) {
            return Err(TableError::BadName(table.to_string()));
        }
        db.write(|s: &mut dyn SqlSession| create_table(s, table))
            .map_err(|error: SqlError| TableError::Schema(error.0))?;
        Ok(Self {
            db,
            table: table.to_string(),
        })
    }

    /// The table in the SQLite file at `path` (created with its folders). Blocks.
    pub fn sqlite(path: &Path, table: &str) -> Result<Self, TableError> {
        if !is_plain_identifier(table) {
            return Err(TableError::BadName(table.to_string()));
        }
        Self::on(Arc::new(SqlDatabase::open_sqlite(path)?), table)
    }

    /// A table in a private in-memory SQLite database (tests, benches).
    pub fn in_memory(table: &str) -> Result<Self, TableError> {
        Self::on(Arc::new(SqlDatabase::sqlite_in_memory()), table)
    }

    fn completion(row: Vec<SqlValue>) -> Result<StoredCompletion, StoreError> {
        let mut columns = row.into_iter();
        let mut next = || columns.next().unwrap_or(SqlValue::Null);
        Ok(StoredCompletion {
            id: next().into_text()?,
            created: next().as_i64()?,
            model: next().into_text()?,
            choices: next().into_json(),
            input_messages: next().into_json(),
        })
    }
}

/// Creates the table and its ordering index, and adds the columns ogx writes to a table that
/// lacks them (OGX's own has no `seq`; `seq` is then numbered in insertion order).
fn create_table(s: &mut dyn SqlSession, table: &str) -> Result<(), SqlError> {
    let dialect = s.dialect();
    s.lock_schema()?;
    let (seq_type, new_seq_type) = match dialect {
        super::sql::Dialect::Sqlite => ("INTEGER NOT NULL", "INTEGER"),
        super::sql::Dialect::Postgres => ("BIGSERIAL NOT NULL", "BIGSERIAL"),
    };
    s.execute(
        &format!(
            "CREATE TABLE IF NOT EXISTS {table} (
                id VARCHAR PRIMARY KEY,
                created INTEGER NOT NULL,
                model VARCHAR NOT NULL,
                choices JSON NOT NULL,
                input_messages JSON NOT NULL,
                owner_principal VARCHAR,
                access_attributes JSON,
                seq {seq_type}
            )"
        ),
        &[],
    )?;
    for (column, ty) in [
        ("owner_principal", "VARCHAR"),
        ("access_attributes", "JSON"),
    ] {
        if !s.has_column(table, column)? {
            s.execute(
                &format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"),
                &[],
            )?;
        }
    }
    if !s.has_column(table, "seq")? {
        s.execute(
            &format!("ALTER TABLE {table} ADD COLUMN seq {new_seq_type}"),
            &[],
        )?;
        if dialect == super::sql::Dialect::Sqlite {
            s.execute(&format!("UPDATE {table} SET seq = rowid"), &[])?;
        }
    }
    s.execute(
        &format!("CREATE INDEX IF NOT EXISTS {table}_created_seq ON {table} (created, seq)"),
        &[],
    )?;
    Ok(())
}

const COLUMNS: &str = "id, created, model, choices, input_messages";

impl CompletionTable for SqlTable {
    fn insert(&self, batch: &[StoredCompletion]) -> Result<(), StoreError> {
        let table = &self.table;
        let dialect = self.db.dialect();
        self.db.write(|s: &mut dyn SqlSession| {
            // SQLite numbers `seq` itself (its one writer holds the file's write lock);
            // PostgreSQL's column takes the next value of its sequence.
            let mut next_seq = match dialect {
                super::sql::Dialect::Sqlite => Some(
                    s.query_row(&format!("SELECT COALESCE(MAX(seq), 0) FROM {table}"), &[])?
                        .and_then(|row| row.into_iter().next())
                        .map(|v| v.as_i64())
                        .transpose()?
                        .unwrap_or(0),
                ),
                super::sql::Dialect::Postgres => None,
            };
            let (seq_column, seq_value) = if next_seq.is_some() {
                (", seq", ", $8")
            } else {
                ("", "")
            };
            let sql = format!(
                "INSERT INTO {table} ({COLUMNS}, owner_principal, access_attributes{seq_column})
                 VALUES ($1, $2, $3, $4, $5, $6, $7{seq_value})
                 ON CONFLICT (id) DO UPDATE SET created = excluded.created, model = excluded.model,
                    choices = excluded.choices, input_messages = excluded.input_messages"
            );
            for completion in batch {
                let mut params = vec![
                    SqlValue::Text(completion.id.clone()),
                    SqlValue::Int(completion.created),
                    SqlValue::Text(completion.model.clone()),
                    SqlValue::Json(completion.choices.clone()),
                    SqlValue::Json(completion.input_messages.clone()),
                    // No authentication: no owner, no access attributes (as OGX writes them).
                    SqlValue::Null,
                    SqlValue::Null,
                ];
                if let Some(seq) = next_seq.as_mut() {
                    *seq += 1;
                    params.push(SqlValue::Int(*seq));
                }
                s.execute(&sql, &params)?;
            }
            Ok(())
        })
    }

    fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let table = &self.table;
        self.db.read(|s: &mut dyn SqlSession| {
            let mut conditions = Vec::new();
            let mut values: Vec<SqlValue> = Vec::new();
            if let Some(model) = &query.model {
                values.push(SqlValue::Text(model.clone()));
                conditions.push(format!("model = ${}", values.len()));
            }
            if let Some(after) = &query.after {
                let position = s.query_row(
                    &format!("SELECT created, seq FROM {table} WHERE id = $1"),
                    &[SqlValue::Text(after.clone())],
                )?;
                let Some(position) = position else {
                    return Err(StoreError::UnknownAfter {
                        id: after.clone(),
                        table: table.clone(),
                    });
                };
                values.extend(position);
                let op = if query.order == Order::Asc { ">" } else { "<" };
                conditions.push(format!(
                    "(created, seq) {op} (${}, ${})",
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
            values.push(SqlValue::Int(query.limit as i64 + 1));
            let sql = format!(
                "SELECT {COLUMNS} FROM {table} {filter} ORDER BY created {direction}, seq {direction} LIMIT ${}",
                values.len()
            );
            let mut data = s
                .query(&sql, &values)?
                .into_iter()
                .map(Self::completion)
                .collect::<Result<Vec<_>, _>>()?;
            let has_more = data.len() > query.limit;
            data.truncate(query.limit);
            Ok(Page { data, has_more })
        })
    }

    fn get(&self, id: &str) -> Result<Option<StoredCompletion>, StoreError> {
        self.db.read(|s: &mut dyn SqlSession| {
            s.query_row(
                &format!("SELECT {COLUMNS} FROM {} WHERE id = $1", self.table),
                &[SqlValue::Text(id.to_string())],
            )?
            .map(Self::completion)
            .transpose()
        })
    }

    fn max_writers(&self) -> usize {
        self.db.max_writers()
    }
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
    fn walk(table: &SqlTable, limit: usize, order: Order) -> Vec<String> {
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
                SqlTable::in_memory(bad),
                Err(TableError::BadName(_))
            ));
        }
    }

    #[test]
    fn paging_sees_rows_of_the_same_second_exactly_once() {
        let table = SqlTable::in_memory("inference_store").unwrap();
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
        let table = SqlTable::in_memory("inference_store").unwrap();
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
        let connection = crate::storage::sqlite::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE inference_store (id TEXT PRIMARY KEY, created INTEGER,
                    model TEXT, choices JSON, input_messages JSON, owner_principal TEXT);
                 INSERT INTO inference_store VALUES ('old1', 5, 'm', '[]', '[]', NULL);
                 INSERT INTO inference_store VALUES ('old2', 5, 'm', '[]', '[]', NULL);",
            )
            .unwrap();
        drop(connection);
        let table = SqlTable::sqlite(&path, "inference_store").unwrap();
        table.insert(&[completion("new", 5, "m")]).unwrap();
        assert_eq!(walk(&table, 1, Order::Asc), ["old1", "old2", "new"]);
    }

    /// A table that takes its time over each batch.
    struct Slow(SqlTable);

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
        let table = Arc::new(Slow(SqlTable::in_memory("t").unwrap()));
        let store = InferenceStore::start(table.clone(), 1, 2);
        let started = std::time::Instant::now();
        for i in 0..30 {
            store.record(completion(&format!("c{i}"), 1, "m"));
        }
        // Recording never waits for the writers.
        assert!(started.elapsed() < Duration::from_millis(200));
        assert_eq!(
            store.shutdown().await,
            ShutdownReport {
                written: 30,
                lost: 0
            }
        );
        let page = store.list(query(None, 100, Order::Asc)).await.unwrap();
        assert_eq!(page.data.len(), 30);
    }

    #[tokio::test]
    async fn shutdown_drains_the_queue_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sql_store.db");
        let table = Arc::new(SqlTable::sqlite(&path, "inference_store").unwrap());
        let store = InferenceStore::start(table, DEFAULT_MAX_WRITE_QUEUE_SIZE as usize, 4);
        for i in 0..500 {
            store.record(completion(&format!("c{i}"), i / 100, "m"));
        }
        assert_eq!(
            store.shutdown().await,
            ShutdownReport {
                written: 500,
                lost: 0
            }
        );
        // A recording after shutdown is refused, not queued forever.
        store.record(completion("late", 1, "m"));
        let reopened = SqlTable::sqlite(&path, "inference_store").unwrap();
        assert_eq!(walk(&reopened, 100, Order::Asc).len(), 500);
        assert_eq!(reopened.get("late").unwrap(), None);
    }

    /// A table whose first `failures` inserts fail, as a database that is down for a while.
    struct Flaky {
        inner: SqlTable,
        failures: AtomicU64,
    }

    impl CompletionTable for Flaky {
        fn insert(&self, batch: &[StoredCompletion]) -> Result<(), StoreError> {
            let left = self.failures.load(Ordering::SeqCst);
            if left > 0 {
                self.failures.store(left - 1, Ordering::SeqCst);
                return Err(StoreError::Backend("the database is down".into()));
            }
            self.inner.insert(batch)
        }
        fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
            self.inner.list(query)
        }
        fn get(&self, id: &str) -> Result<Option<StoredCompletion>, StoreError> {
            self.inner.get(id)
        }
        fn max_writers(&self) -> usize {
            1
        }
    }

    fn flaky(failures: u64) -> Arc<Flaky> {
        Arc::new(Flaky {
            inner: SqlTable::in_memory("t").unwrap(),
            failures: AtomicU64::new(failures),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_is_retried_until_it_is_written() {
        let table = flaky(3);
        let store = InferenceStore::start(table.clone(), 100, 1);
        for i in 0..10 {
            store.record(completion(&format!("c{i}"), 1, "m"));
        }
        // Three failures cost 100 + 200 + 400 ms of pauses; the writes all land.
        assert_eq!(
            store.shutdown().await,
            ShutdownReport {
                written: 10,
                lost: 0
            }
        );
        assert_eq!(walk(&table.inner, 100, Order::Asc).len(), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_reports_what_could_not_be_written() {
        let table = flaky(u64::MAX);
        let store = InferenceStore::start(table.clone(), 100, 1);
        for i in 0..7 {
            store.record(completion(&format!("c{i}"), 1, "m"));
        }
        let report = store.shutdown().await;
        assert_eq!(
            report,
            ShutdownReport {
                written: 0,
                lost: 7
            }
        );
        assert!(walk(&table.inner, 100, Order::Asc).is_empty());
    }

    #[test]
    fn writers_are_bounded_by_the_backend() {
        let sqlite = SqlTable::in_memory("t").unwrap();
        assert_eq!(InferenceStore::writer_count(&sqlite, 4), 1);
        assert_eq!(InferenceStore::writer_count(&Slow(sqlite), 8), 4);
        assert_eq!(InferenceStore::writer_count(&flaky(0).inner, 0), 1);
    }

    #[test]
    fn ogx_columns_are_written_as_null() {
        let db = Arc::new(SqlDatabase::sqlite_in_memory());
        let table = SqlTable::on(Arc::clone(&db), "inference_store").unwrap();
        table.insert(&[completion("a", 1, "m")]).unwrap();
        let row = db
            .read(|s: &mut dyn SqlSession| {
                s.query_row(
                    "SELECT owner_principal, access_attributes FROM inference_store",
                    &[],
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(row, [SqlValue::Null, SqlValue::Null]);
    }
}
