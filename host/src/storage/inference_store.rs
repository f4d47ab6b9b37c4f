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
mod tests {
    use super::*;
    use crate::storage::completion_table::test_support::{completion, query, walk};
    use std::time::Duration;

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
        let store = InferenceStore::start(table.clone(), 1, 2, DEFAULT_WRITE_LINGER);
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_for_room_outlive_the_runtime_that_recorded_them() {
        let table = Arc::new(Slow(SqlTable::in_memory("t").unwrap()));
        let store = Arc::new(InferenceStore::start(table.clone(), 1, 1, Duration::ZERO));
        let recording = Arc::clone(&store);
        // As a serving thread: its own runtime records, then ends (at shutdown) while most
        // of its writes still wait for room in the queue of 1.
        tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                for i in 0..10 {
                    recording.record(completion(&format!("c{i}"), 1, "m"));
                }
            });
        })
        .await
        .unwrap();
        assert_eq!(
            store.shutdown().await,
            ShutdownReport {
                written: 10,
                lost: 0
            }
        );
        assert_eq!(walk(&table.0, 100, Order::Asc).len(), 10);
    }

    #[tokio::test]
    async fn shutdown_drains_the_queue_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sql_store.db");
        let table = Arc::new(SqlTable::sqlite(&path, "inference_store").unwrap());
        let store = InferenceStore::start(
            table,
            DEFAULT_MAX_WRITE_QUEUE_SIZE as usize,
            4,
            DEFAULT_WRITE_LINGER,
        );
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

    /// Records 20 completions one at a time, 1 ms apart, each after the writer has taken
    /// the previous one off the queue, unless it is lingering; counts the transactions.
    async fn transactions_for_twenty_records_one_by_one(linger: Duration) -> u64 {
        let table = flaky(0);
        let store = InferenceStore::start(table.clone(), 100, 1, linger);
        let queued = || 100 - lock(&store.queue).as_ref().unwrap().capacity();
        for i in 0..20 {
            store.record(completion(&format!("c{i}"), 1, "m"));
            let started = std::time::Instant::now();
            // A lingering writer leaves the rest queued; give up waiting after 100 ms.
            while queued() > 0 && started.elapsed() < Duration::from_millis(100) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let report = store.shutdown().await;
        assert_eq!(
            report,
            ShutdownReport {
                written: 20,
                lost: 0
            }
        );
        assert_eq!(walk(&table.inner, 100, Order::Asc).len(), 20);
        table.batches.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lingering_writers_commit_completions_arriving_one_by_one_together() {
        // Without a linger each completion is its own transaction; with a long one, the
        // writer wakes for the first and the other nineteen join its transaction.
        assert_eq!(
            transactions_for_twenty_records_one_by_one(Duration::ZERO).await,
            20
        );
        assert_eq!(
            transactions_for_twenty_records_one_by_one(Duration::from_secs(30)).await,
            1
        );
    }

    /// A table whose first `failures` inserts fail, as a database that is down for a while;
    /// it counts the transactions tried.
    struct Flaky {
        inner: SqlTable,
        failures: AtomicU64,
        batches: AtomicU64,
    }

    impl CompletionTable for Flaky {
        fn insert(&self, batch: &[StoredCompletion]) -> Result<(), StoreError> {
            self.batches.fetch_add(1, Ordering::SeqCst);
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
            batches: AtomicU64::new(0),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_batch_is_retried_until_it_is_written() {
        let table = flaky(3);
        let store = InferenceStore::start(table.clone(), 100, 1, DEFAULT_WRITE_LINGER);
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
        let store = InferenceStore::start(table.clone(), 100, 1, DEFAULT_WRITE_LINGER);
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
}
