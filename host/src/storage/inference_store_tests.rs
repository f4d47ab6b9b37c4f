//! Unit tests of [`super`].

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
