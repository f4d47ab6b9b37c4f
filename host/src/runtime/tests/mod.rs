//! Tests of the runtime against the guest fixtures (`plugins/fixtures/*`, built to
//! `plugins/target/wasm32-wasip2/release/`). The directory comes from `OGX_TEST_PLUGINS_DIR`;
//! without it the fixture tests print why and pass vacuously (CI sets it).
//!
//! Each test copies the fixtures it needs into its own temporary plugins directory, so the
//! search path holds exactly what the test is about.

mod calls;
mod loading;
mod rescan;
mod versions;

use super::{CallContext, PluginRuntime, RuntimeLimits, RuntimeOptions};
use crate::environment::Environment;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The fixtures directory, or `None` after printing why the test is skipped.
fn fixtures_dir() -> Option<PathBuf> {
    match std::env::var_os("OGX_TEST_PLUGINS_DIR") {
        Some(dir) if Path::new(&dir).join("ogx_fixture_echo.wasm").is_file() => Some(dir.into()),
        Some(dir) => panic!(
            "OGX_TEST_PLUGINS_DIR={} has no ogx_fixture_echo.wasm: build plugins/ first",
            Path::new(&dir).display()
        ),
        // CI must run them: there, a missing directory is a failure, not a skip.
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but OGX_TEST_PLUGINS_DIR is not: scripts/test.sh sets it")
        }
        None => {
            eprintln!(
                "skipped: set OGX_TEST_PLUGINS_DIR to plugins/target/wasm32-wasip2/release to run the fixture tests"
            );
            None
        }
    }
}

/// One compiled-code cache for all tests of this process, so each fixture compiles once.
fn shared_cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
        .to_path_buf()
}

/// Limits small enough that the limit tests finish quickly.
fn test_limits() -> RuntimeLimits {
    RuntimeLimits {
        memory_bytes: 32 * 1024 * 1024,
        call_timeout: Duration::from_secs(10),
        stream_idle_timeout: Duration::from_secs(5),
        cpu_budget_ticks: 100,
        max_instances: 8,
        ..RuntimeLimits::default()
    }
}

/// A plugins directory holding copies of `fixtures` (file stems without `ogx_fixture_`).
fn plugins_dir(fixtures: &Path, names: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for name in names {
        let file = format!("ogx_fixture_{name}.wasm");
        std::fs::copy(fixtures.join(&file), dir.path().join(&file)).expect("copy fixture");
    }
    dir
}

fn options(dir: &Path) -> RuntimeOptions {
    RuntimeOptions {
        search_path: vec![dir.to_path_buf()],
        cache_dir: Some(shared_cache_dir()),
        limits: test_limits(),
        kv: None,
        env: Environment::from_pairs([
            ("OGX_TEST_VISIBLE", "visible-value"),
            ("OGX_TEST_HIDDEN", "hidden-value"),
        ]),
        policy: Default::default(),
    }
}

fn start(dir: &Path) -> PluginRuntime {
    PluginRuntime::start(options(dir)).expect("runtime starts")
}

fn ctx(request_id: &str) -> CallContext {
    CallContext {
        request_id: request_id.into(),
        provider_data: None,
        timeout: None,
        model: None,
        upstream_clock: None,
        trace: None,
    }
}

/// The server shares these across axum handlers and tasks.
#[test]
fn runtime_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<PluginRuntime>();
    send_sync::<super::Provider>();
    send_sync::<super::CallError>();
    fn send<T: Send>() {}
    send::<super::ChunkStream>();
}
