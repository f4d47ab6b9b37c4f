//! Write throughput of the chat-completion history: [`InferenceStore::record`] of a typical
//! completion (a short conversation in, one answer out), with the queue drained by
//! [`InferenceStore::shutdown`]. Each iteration records 1000 completions into a fresh table,
//! so completions/s = 1000 / the time per iteration (criterion prints it as `thrpt`).
//!
//! - `sqlite_file`: a SQLite file in WAL mode (one writer, whatever `num_writers` says).
//! - `postgres`: the PostgreSQL database `OGX_BENCH_POSTGRES_URL` names
//!   (`postgres://user:password@127.0.0.1:port/db`), with the default `num_writers` (4) and a
//!   pool of 4; skipped without it. A private cluster for it:
//!   `python3 tests/postgres_server.py run -- cargo bench -p ogx --bench inference_store`
//!   (that cluster runs with `fsync=off`, so it measures ogx and the protocol, not the disk).
//!
//! `cargo bench -p ogx --bench inference_store` (the bench profile is optimized).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ogx::storage::inference_store::{
    DEFAULT_MAX_WRITE_QUEUE_SIZE, DEFAULT_NUM_WRITERS, DEFAULT_WRITE_LINGER, InferenceStore,
    SqlTable, StoredCompletion,
};
use ogx::storage::postgres::{self, PgSettings};
use ogx::storage::sql::SqlDatabase;
use serde_json::json;
use std::sync::Arc;

const COMPLETIONS: u64 = 1000;

fn completion(i: u64) -> StoredCompletion {
    StoredCompletion {
        id: format!("chatcmpl-{i}-{}", uuid::Uuid::new_v4().simple()),
        created: 1_700_000_000 + (i / 50) as i64,
        model: "vllm/my-model".into(),
        choices: json!([{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": "x".repeat(400)}}]),
        input_messages: json!([{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "y".repeat(300)}]),
        owner: Default::default(),
        target: Some("vllm/my-model".into()),
    }
}

async fn record_and_drain(table: SqlTable) {
    let store = InferenceStore::start(
        Arc::new(table),
        DEFAULT_MAX_WRITE_QUEUE_SIZE as usize,
        DEFAULT_NUM_WRITERS as usize,
        DEFAULT_WRITE_LINGER,
    );
    for i in 0..COMPLETIONS {
        store.record(completion(i));
    }
    assert_eq!(store.shutdown().await.written, COMPLETIONS);
}

fn write_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("inference_store");
    group.throughput(Throughput::Elements(COMPLETIONS));
    group.sample_size(10);
    group.bench_function("record_1000_and_drain_sqlite_file", |b| {
        b.to_async(&runtime).iter(|| async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("sql_store.db");
            let table = tokio::task::spawn_blocking(move || {
                SqlTable::sqlite(&path, "inference_store").unwrap()
            })
            .await
            .unwrap();
            record_and_drain(table).await;
        });
    });
    if let Some(url) = std::env::var("OGX_BENCH_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        let settings = PgSettings::from_url(&url, DEFAULT_NUM_WRITERS as usize).unwrap();
        let db = runtime.block_on(async {
            Arc::new(SqlDatabase::postgres(
                postgres::connect(&settings).await.unwrap(),
            ))
        });
        group.bench_function("record_1000_and_drain_postgres", |b| {
            b.to_async(&runtime).iter(|| async {
                let db = Arc::clone(&db);
                let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
                let table = tokio::task::spawn_blocking(move || SqlTable::on(db, &name).unwrap())
                    .await
                    .unwrap();
                record_and_drain(table).await;
            });
        });
    } else {
        eprintln!("inference_store/postgres skipped: set OGX_BENCH_POSTGRES_URL");
    }
    group.finish();
}

criterion_group!(benches, write_throughput);
criterion_main!(benches);
