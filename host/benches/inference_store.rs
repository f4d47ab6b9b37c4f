//! Write throughput of the chat-completion history on SQLite: [`InferenceStore::record`] of a
//! typical completion (a short conversation in, one answer out) into a file in WAL mode, with
//! the queue drained by [`InferenceStore::shutdown`]. Each iteration records 1000 completions
//! into a fresh database, so completions/s = 1000 / the time per iteration.
//!
//! `cargo bench -p ogx --bench inference_store` (the bench profile is optimized).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ogx::storage::inference_store::{
    DEFAULT_MAX_WRITE_QUEUE_SIZE, DEFAULT_NUM_WRITERS, InferenceStore, SqliteTable,
    StoredCompletion,
};
use serde_json::json;
use std::sync::Arc;

const COMPLETIONS: u64 = 1000;

fn completion(i: u64) -> StoredCompletion {
    StoredCompletion {
        id: format!("chatcmpl-{i}"),
        created: 1_700_000_000 + (i / 50) as i64,
        model: "vllm/my-model".into(),
        choices: json!([{"index": 0, "finish_reason": "stop", "logprobs": null,
            "message": {"role": "assistant", "content": "x".repeat(400)}}]),
        input_messages: json!([{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "y".repeat(300)}]),
    }
}

fn write_throughput(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut group = c.benchmark_group("inference_store");
    group.throughput(Throughput::Elements(COMPLETIONS));
    group.sample_size(10);
    group.bench_function("record_1000_and_drain_sqlite_file", |b| {
        b.to_async(&runtime).iter(|| async {
            let dir = tempfile::tempdir().unwrap();
            let table =
                SqliteTable::open(&dir.path().join("sql_store.db"), "inference_store").unwrap();
            let store = InferenceStore::start(
                Arc::new(table),
                DEFAULT_MAX_WRITE_QUEUE_SIZE as usize,
                DEFAULT_NUM_WRITERS as usize,
            );
            for i in 0..COMPLETIONS {
                store.record(completion(i));
            }
            assert_eq!(store.shutdown().await, COMPLETIONS);
        });
    });
    group.finish();
}

criterion_group!(benches, write_throughput);
criterion_main!(benches);
