//! Rescanning the plugin files: unchanged files keep their loaded plugin, new and changed ones
//! load, a broken replacement is refused while the old version keeps serving, a removed file
//! is reported.

use super::*;
use crate::runtime::PluginChange;
use std::sync::Arc;

/// `bytes` with a custom section appended: the same plugin, other bytes (a "new build").
fn rebuilt(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    // Custom section (id 0), 5 bytes: a 4-byte name "ogx!" and no payload.
    out.extend_from_slice(b"\x00\x05\x04ogx!");
    out
}

fn echo_provider(runtime: &PluginRuntime) -> Arc<crate::runtime::Provider> {
    runtime
        .provider("echo", "test::echo", &serde_json::json!({}))
        .expect("echo binds")
}

#[tokio::test]
async fn a_rescan_keeps_unchanged_files_and_reports_every_change() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["echo"]);
    let echo = dir.path().join("ogx_fixture_echo.wasm");
    let original = std::fs::read(&echo).unwrap();
    let first = start(dir.path());
    let provider = echo_provider(&first);

    // Loading runs on the loader's own threads, each with its own runtime.
    let rescan = |runtime: &PluginRuntime| runtime.rescan().expect("rescan");

    // Nothing changed: the same loaded plugin, so the provider is carried over.
    let (same, changes) = rescan(&first);
    assert!(changes.is_empty(), "{changes:?}");
    assert!(same.runs(&provider));
    assert_eq!(same.file(&echo), first.file(&echo));

    // A broken replacement: refused with the load error, the old version keeps serving.
    std::fs::write(&echo, b"not wasm at all").unwrap();
    let (kept, changes) = rescan(&first);
    let [
        PluginChange::Refused {
            path,
            error,
            kept: true,
        },
    ] = changes.as_slice()
    else {
        panic!("one refusal expected: {changes:?}");
    };
    assert_eq!(path, &echo);
    assert!(error.contains("is not a WebAssembly file"), "{error}");
    assert!(kept.runs(&provider));
    assert_eq!(kept.file(&echo), first.file(&echo));
    let answer = echo_provider(&kept)
        .chat_completion(
            ctx("after-refusal"),
            r#"{"model":"m","messages":[]}"#.into(),
        )
        .await
        .expect("the old version answers");
    assert!(answer.contains("chat.completion"), "{answer}");

    // A new build and a new file: both load; providers of the replaced file must be rebound.
    std::fs::write(&echo, rebuilt(&original)).unwrap();
    let trap = dir.path().join("ogx_fixture_trap.wasm");
    std::fs::copy(fixtures.join("ogx_fixture_trap.wasm"), &trap).unwrap();
    let (next, mut changes) = rescan(&kept);
    changes.sort_by_key(|c| format!("{c:?}"));
    assert_eq!(
        changes,
        vec![
            PluginChange::Added(trap.clone()),
            PluginChange::Replaced(echo.clone())
        ]
    );
    assert!(!next.runs(&provider));
    assert_ne!(
        next.file(&echo).map(|f| f.digest),
        first.file(&echo).map(|f| f.digest)
    );
    assert!(next.runs(&echo_provider(&next)));

    // A removed file.
    std::fs::remove_file(&trap).unwrap();
    let (last, changes) = rescan(&next);
    assert_eq!(changes, vec![PluginChange::Removed(trap.clone())]);
    assert!(last.catalog().plugin_for("test::trap").is_none());
    assert!(
        last.provider("t", "test::trap", &serde_json::json!({}))
            .is_err()
    );
}
