//! Cost of reading the run config at start-up: YAML parsing, `${env.*}` substitution and
//! validation, for the example config and for the Bedrock post's config (the ones in
//! `config/`), read from disk as `ogx run` does.
//!
//! `cargo bench -p ogx --bench config_load`

use criterion::{Criterion, criterion_group, criterion_main};
use std::path::{Path, PathBuf};

/// The environment of a typical start: a region and an upstream URL, nothing secret.
fn lookup(name: &str) -> Option<String> {
    match name {
        "AWS_DEFAULT_REGION" => Some("us-west-2".into()),
        "OGX_EXAMPLE_UPSTREAM" => Some("http://127.0.0.1:8000/v1".into()),
        _ => None,
    }
}

fn config_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("config")
        .join(name)
}

fn config_load(c: &mut Criterion) {
    for name in ["example.yaml", "seed-bedrock-sigv4.yaml"] {
        let path = config_file(name);
        ogx::config::load(&path, &lookup).expect("the shipped config loads");
        c.bench_function(&format!("config load {name}"), |b| {
            b.iter(|| ogx::config::load(&path, &lookup).expect("config loads"))
        });
    }
}

criterion_group!(benches, config_load);
criterion_main!(benches);
