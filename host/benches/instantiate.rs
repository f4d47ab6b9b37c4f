//! Cost of the per-request sandbox: a fresh store and instance of a plugin from its
//! pre-instantiated component, `init` with the provider's config, and one call, as every API
//! request pays it. Uses the `echo` fixture plugin, whose own work is negligible.
//!
//! `OGX_TEST_PLUGINS_DIR=<dir with ogx_fixture_echo.wasm> cargo bench -p ogx --bench instantiate`

use criterion::{Criterion, criterion_group, criterion_main};
use ogx::runtime::{CallContext, PluginRuntime, RuntimeOptions};
use std::path::PathBuf;

fn echo_provider() -> std::sync::Arc<ogx::runtime::Provider> {
    let fixtures = PathBuf::from(
        std::env::var_os("OGX_TEST_PLUGINS_DIR")
            .expect("set OGX_TEST_PLUGINS_DIR to the folder with ogx_fixture_echo.wasm"),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        fixtures.join("ogx_fixture_echo.wasm"),
        dir.path().join("echo.wasm"),
    )
    .expect("ogx_fixture_echo.wasm in OGX_TEST_PLUGINS_DIR");
    let mut options = RuntimeOptions::new(vec![dir.path().to_path_buf()]);
    options.cache_dir = None;
    let runtime = PluginRuntime::start(options).expect("runtime starts");
    // The provider holds the engine and the compiled plugin; the runtime may go.
    runtime
        .provider("echo", "test::echo", &serde_json::json!({"accept": true}))
        .expect("echo plugin loaded")
}

fn context() -> CallContext {
    CallContext {
        request_id: "bench".into(),
        provider_data: None,
        timeout: None,
        model: None,
        upstream_clock: None,
        trace: None,
    }
}

fn per_request_instance(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let echo = echo_provider();
    let body = serde_json::json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hello"}],
    })
    .to_string();
    c.bench_function("fresh instance + init + list-models", |b| {
        b.to_async(&tokio)
            .iter(|| async { echo.list_models(context()).await.expect("call") })
    });
    c.bench_function("fresh instance + init + chat-completion (echo)", |b| {
        b.to_async(&tokio).iter(|| async {
            echo.chat_completion(context(), body.clone())
                .await
                .expect("call")
        })
    });
}

criterion_group!(benches, per_request_instance);
criterion_main!(benches);
