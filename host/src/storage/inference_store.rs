//! [`InferenceStore`]: the chat-completion history (`storage.stores.inference`).
//!
//! **Writes** never hold up an answer: [`InferenceStore::record`] puts the completion on a
//! bounded queue (`max_write_queue_size`) and returns. Writer threads drain it in batches, one
//! transaction per batch of up to [`MAX_WRITE_BATCH`]. When the queue is full the write waits
//! on a background task for room (on the runtime the store was started on, which outlives the
//! serving threads) — nothing is dropped — and the answer goes out all the same;
//! completions recorded while the queue is full may be stored out of request order.
//!
//! **Linger.** A writer that wakes for one completion waits [`DEFAULT_WRITE_LINGER`] (the
//! `linger` given to [`InferenceStore::start`]; `OGX_HISTORY_WRITE_LINGER_MS` in `ogx run`)
//! before it commits, so that completions arriving one after another share a transaction:
//! one commit and one writer wake-up per batch instead of per request. A completion is
//! therefore readable up to that long after its answer went out. The linger is skipped when
//! the queue is half full, the batch is full or shutdown has begun.
//!
//! **Writers.** `num_writers` tasks on blocking threads are started, but never more than the
//! backend can use ([`CompletionTable::max_writers`]): SQLite has one write lock per file, so
//! extra writers would only wait for each other (its single writer commits whole batches
//! instead); on PostgreSQL up to the pool's size write at once.
//!
//! **Backends.** [`CompletionTable`] is the seam; [`SqlTable`] (in
//! [`super::completion_table`]) implements it on SQLite and PostgreSQL.
//!
//! **Ordering.** Rows are listed by `created`, ties by `id` ascending, as OGX 1.5.0 lists them
//! ([`super::completion_table`]), so paging with `after` never skips or repeats completions
//! created in the same second. On PostgreSQL with
//! several writers, a client paging while two batches commit out of order may miss the late
//! batch's rows in that walk (a new listing shows them).
//!
//! **Failures.** A batch that cannot be written (full disk, a lock held past the busy
//! timeout, PostgreSQL down) is retried with a growing pause ([`RETRY_FIRST_PAUSE`] up to
//! [`RETRY_MAX_PAUSE`]) for as long as the server runs; nothing accepted is dropped. Reads fail
//! with [`StoreError`]. [`InferenceStore::shutdown`] closes the queue and waits until every
//! queued completion is written; a batch that still fails after [`SHUTDOWN_WRITE_ATTEMPTS`]
//! more tries is given up, and the [`ShutdownReport`] counts (and the log lists the ids of)
//! what could not be written.

use super::owner::Owner;
use super::sql::SqlError;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use super::completion_table::{MAX_TABLE_NAME_LEN, SqlTable, TableError, is_plain_identifier};

/// Default `max_write_queue_size` (OGX's).
pub const DEFAULT_MAX_WRITE_QUEUE_SIZE: u64 = 10_000;
/// Default `num_writers` (OGX's).
pub const DEFAULT_NUM_WRITERS: u64 = 4;
/// Most completions one writer commits in one transaction.
pub const MAX_WRITE_BATCH: usize = 256;
/// How long a writer waits for more completions before committing a batch it has started.
pub const DEFAULT_WRITE_LINGER: Duration = Duration::from_millis(10);
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
    /// Who wrote it (OGX's `owner_principal`, `access_attributes`, `tenant_id`).
    pub owner: Owner,
    /// The routing target that answered, `<provider_id>/<provider_model_id>`.
    pub target: Option<String>,
}

impl StoredCompletion {
    /// OGX's `OpenAICompletionWithInputMessages`: the completion as `chat.completion`, usage
    /// not stored, plus `input_messages`, and ogx's `ogx_target` (who answered) when known.
    pub fn to_json(&self) -> Value {
        let mut object = json!({
            "id": self.id,
            "choices": self.choices,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "service_tier": null,
            "system_fingerprint": null,
            "usage": null,
            "input_messages": self.input_messages,
        });
        if let Some(target) = &self.target {
            object["ogx_target"] = json!(target);
        }
        object
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
    #[error("the database could not be read or written: {0}")]
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
    /// The table's name, which access policies see as `sql_record::<name>`.
    fn name(&self) -> &str {
        "inference_store"
    }
}

/// What [`InferenceStore::shutdown`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Completions written since start.
    pub written: u64,
    /// Accepted completions that could not be written (each id is in the log).
    pub lost: u64,
}

/// The write queue at one moment: see [`InferenceStore::queue_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    pub depth: usize,
    pub written: u64,
    pub lost: u64,
}

/// The chat-completion history: a [`CompletionTable`] behind a bounded write queue.
pub struct InferenceStore {
    table: Arc<dyn CompletionTable>,
    queue: Mutex<Option<mpsc::Sender<StoredCompletion>>>,
    writers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    progress: Arc<WriteProgress>,
    /// The runtime the store was started on, which outlives the serving threads' runtimes:
    /// a write waiting for room in the queue runs there, so it is not dropped with the
    /// serving thread that recorded it when that thread's runtime ends at shutdown.
    runtime: tokio::runtime::Handle,
}

/// Shared by the writers.
#[derive(Default)]
struct WriteProgress {
    written: AtomicU64,
    lost: AtomicU64,
    /// Set by shutdown: failing batches get [`SHUTDOWN_WRITE_ATTEMPTS`] more tries.
    closing: AtomicBool,
    /// Wakes a lingering writer when shutdown begins.
    closing_signal: (Mutex<()>, Condvar),
}

impl WriteProgress {
    fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    fn begin_closing(&self) {
        let _guard = lock(&self.closing_signal.0);
        self.closing.store(true, Ordering::Relaxed);
        self.closing_signal.1.notify_all();
    }

    /// Sleeps `linger`, or less when shutdown begins meanwhile.
    fn linger(&self, linger: Duration) {
        let guard = lock(&self.closing_signal.0);
        let _unused = self
            .closing_signal
            .1
            .wait_timeout_while(guard, linger, |_| !self.is_closing());
    }
}

impl InferenceStore {
    /// Starts `min(num_writers, table.max_writers())` writers draining a queue of
    /// `max_write_queue_size` (both at least 1), each lingering `linger` before it commits a
    /// batch (see the module docs; zero commits at once). Must be called inside a tokio
    /// runtime.
    pub fn start(
        table: Arc<dyn CompletionTable>,
        max_write_queue_size: usize,
        num_writers: usize,
        linger: Duration,
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
                tokio::task::spawn_blocking(move || drain(&*table, &receiver, &progress, linger))
            })
            .collect();
        Self {
            table,
            queue: Mutex::new(Some(sender)),
            writers: Mutex::new(writers),
            progress,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    /// The table's name (access policies' `sql_record::<name>`).
    pub fn table_name(&self) -> &str {
        self.table.name()
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
                self.runtime.spawn(async move {
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

    /// The write queue now: completions waiting for a writer, and those written and lost
    /// since start (for `/metrics`).
    pub fn queue_state(&self) -> QueueState {
        let depth = lock(&self.queue)
            .as_ref()
            .map_or(0, |sender| sender.max_capacity() - sender.capacity());
        QueueState {
            depth,
            written: self.progress.written.load(Ordering::Relaxed),
            lost: self.progress.lost.load(Ordering::Relaxed),
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
        self.progress.begin_closing();
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

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| StoreError::Backend(format!("the read task failed: {error}")))?
}

/// A writer: takes what is queued (up to a batch, after lingering for more), writes it,
/// until the queue is closed and empty.
fn drain(
    table: &dyn CompletionTable,
    receiver: &Mutex<mpsc::Receiver<StoredCompletion>>,
    progress: &WriteProgress,
    linger: Duration,
) {
    loop {
        let batch = {
            let mut receiver = lock(receiver);
            let Some(first) = receiver.blocking_recv() else {
                return;
            };
            let mut batch = vec![first];
            take_queued(&mut receiver, &mut batch);
            if should_linger(&receiver, &batch, progress, linger) {
                // The lock stays held: other writers would only take single completions.
                progress.linger(linger);
                take_queued(&mut receiver, &mut batch);
            }
            batch
        };
        write_with_retries(table, &batch, progress);
    }
}

/// Moves what is queued into `batch`, up to [`MAX_WRITE_BATCH`], without waiting.
fn take_queued(receiver: &mut mpsc::Receiver<StoredCompletion>, batch: &mut Vec<StoredCompletion>) {
    while batch.len() < MAX_WRITE_BATCH {
        match receiver.try_recv() {
            Ok(next) => batch.push(next),
            Err(_) => break,
        }
    }
}

/// Whether waiting `linger` for more completions is worth it: not when the batch is full,
/// shutdown is waiting, or the queue is half full (senders would start to wait for room).
fn should_linger(
    receiver: &mpsc::Receiver<StoredCompletion>,
    batch: &[StoredCompletion],
    progress: &WriteProgress,
    linger: Duration,
) -> bool {
    !linger.is_zero()
        && batch.len() < MAX_WRITE_BATCH
        && !progress.is_closing()
        && receiver.capacity() * 2 >= receiver.max_capacity()
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
        if progress.is_closing() {
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

#[cfg(test)]
#[path = "inference_store_tests.rs"]
mod tests;
