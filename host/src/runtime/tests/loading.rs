//! Loading: the search path, each staged error as the user reads it, duplicates, the cache.

use super::*;
use crate::runtime::{CacheOutcome, PluginLoadError, discovery, limits};

fn only_error(runtime: &PluginRuntime) -> String {
    let errors: Vec<String> = runtime
        .catalog()
        .entries
        .iter()
        .filter_map(|e| e.outcome.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert_eq!(errors.len(), 1, "one failing entry expected: {errors:?}");
    errors.into_iter().next().unwrap_or_default()
}

#[tokio::test]
async fn not_a_component_and_garbage_name_the_file_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("core.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let runtime = start(dir.path());
    let text = only_error(&runtime);
    assert!(
        text.contains("core.wasm is a core WebAssembly module, not a component"),
        "{text}"
    );
    assert!(
        text.contains("cargo build --target wasm32-wasip2"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("junk.wasm"), b"hello, this is not wasm").unwrap();
    std::fs::write(dir.path().join("ignored.txt"), b"not a candidate").unwrap();
    let runtime = start(dir.path());
    assert_eq!(runtime.catalog().entries.len(), 1);
    let text = only_error(&runtime);
    assert!(
        text.contains("junk.wasm is not a WebAssembly file"),
        "{text}"
    );
}

#[tokio::test]
async fn missing_directories_are_skipped() {
    let mut opts = options(Path::new("/nonexistent/ogx/plugins"));
    opts.search_path.push(PathBuf::from("/also/missing"));
    let runtime = PluginRuntime::start(opts).unwrap();
    assert!(runtime.catalog().entries.is_empty());
    let err = runtime
        .provider("p", "remote::nothing", &serde_json::json!({}))
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("provider `p`: no plugin serves provider type `remote::nothing`"),
        "{err}"
    );
}

#[test]
fn search_path_order() {
    let env = |n: &str| match n {
        "OGX_PLUGINS_DIR" => Some("/env/a:/env/b".to_owned()),
        "HOME" => Some("/home/u".to_owned()),
        _ => None,
    };
    let dirs = discovery::search_path(&[PathBuf::from("/cli")], Some(Path::new("/etc/ogx")), env);
    let expected: Vec<PathBuf> = [
        "/cli",
        "/env/a",
        "/env/b",
        "/etc/ogx/plugins",
        "/home/u/.ogx/plugins",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    assert_eq!(dirs[..5], expected[..]);
    let exe_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("plugins");
    assert_eq!(dirs[5], exe_dir);
}

#[test]
fn import_allow_list() {
    use crate::runtime::InterfaceVersion::{V0_1_0, V0_2_0};
    for (ok, version) in [
        ("ogx:provider/kv@0.1.0", V0_1_0),
        ("ogx:provider/outbound-http@0.2.0", V0_2_0),
        ("wasi:cli/environment@0.2.6", V0_1_0),
        ("wasi:io/streams@0.2.0", V0_2_0),
        ("wasi:filesystem/preopens@0.2.6", V0_2_0),
    ] {
        assert!(discovery::import_allowed(ok, version), "{ok}");
    }
    for (denied, version) in [
        ("wasi:sockets/tcp@0.2.6", V0_2_0),
        ("wasi:http/outgoing-handler@0.2.6", V0_1_0),
        ("ogx:provider/kv@0.2.0", V0_1_0),
        ("ogx:provider/kv@0.1.0", V0_2_0),
        ("ogx:provider/kv@0.9.0", V0_2_0),
        ("ogx-test:forbidden/secrets", V0_2_0),
        ("wasi:cli/environment@0.3.0", V0_2_0),
    ] {
        assert!(!discovery::import_allowed(denied, version), "{denied}");
    }
}

#[test]
fn limits_overrides_env_wins_over_config() {
    let config = limits::LimitOverrides {
        memory_mb: Some(128),
        call_timeout_ms: Some(1000),
        ..Default::default()
    };
    let env = |n: &str| (n == "OGX_PLUGIN_CALL_TIMEOUT_MS").then(|| "2500".to_owned());
    let l = RuntimeLimits::from_overrides(&config, env).unwrap();
    assert_eq!(l.memory_bytes, 128 * 1024 * 1024);
    assert_eq!(l.call_timeout, Duration::from_millis(2500));
    assert_eq!(l.max_instances, limits::DEFAULT_MAX_INSTANCES);
    let bad = RuntimeLimits::from_overrides(&Default::default(), |n: &str| {
        (n == "OGX_PLUGIN_MEMORY_MB").then(|| "lots".to_owned())
    });
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("OGX_PLUGIN_MEMORY_MB")
    );
    assert!(
        RuntimeLimits::from_overrides(
            &limits::LimitOverrides {
                max_instances: Some(0),
                ..Default::default()
            },
            |_: &str| None
        )
        .is_err()
    );
}

#[test]
fn keep_resident_memory_comes_from_the_environment_and_may_be_zero() {
    let default = RuntimeLimits::from_overrides(&Default::default(), |_: &str| None).unwrap();
    assert_eq!(
        default.keep_resident_bytes,
        limits::DEFAULT_KEEP_RESIDENT_KB as usize * 1024
    );
    for (raw, bytes) in [("0", 0), ("512", 512 * 1024)] {
        let env = |n: &str| (n == "OGX_PLUGIN_KEEP_RESIDENT_KB").then(|| raw.to_owned());
        let l = RuntimeLimits::from_overrides(&Default::default(), env).unwrap();
        assert_eq!(l.keep_resident_bytes, bytes, "{raw}");
    }
    let bad = RuntimeLimits::from_overrides(&Default::default(), |n: &str| {
        (n == "OGX_PLUGIN_KEEP_RESIDENT_KB").then(|| "-1".to_owned())
    });
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("OGX_PLUGIN_KEEP_RESIDENT_KB")
    );
}

#[tokio::test]
async fn other_version_and_bad_import_fail_with_their_fix() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["other_version"]);
    let text = only_error(&start(dir.path()));
    assert!(
        text.contains("ogx_fixture_other_version.wasm is built against ogx:provider@0.9.0; this ogx serves ogx:provider@0.1.0 and 0.2.0 plugins: it needs a newer ogx (upgrade ogx), or rebuild it with ogx-provider-sdk 0.2"),
        "{text}"
    );

    let dir = plugins_dir(&fixtures, &["bad_import"]);
    let runtime = start(dir.path());
    let text = only_error(&runtime);
    assert!(
        text.contains("ogx_fixture_bad_import.wasm imports `ogx-test:forbidden/secrets"),
        "{text}"
    );
    assert!(
        text.contains("which ogx does not give plugins. Allowed imports:"),
        "{text}"
    );
    let err = runtime
        .provider("bad", "test::bad-import", &serde_json::json!({}))
        .err()
        .unwrap();
    assert!(
        matches!(err, PluginLoadError::UnknownProviderType { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn duplicate_types_fail_both_files() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["echo"]);
    // A different build of the same plugin: the same component plus a custom section
    // (id 0, 5 bytes: name length 4, name "ogx!").
    let mut other_build = std::fs::read(dir.path().join("ogx_fixture_echo.wasm")).unwrap();
    other_build.extend_from_slice(b"\x00\x05\x04ogx!");
    std::fs::write(dir.path().join("echo-copy.wasm"), other_build).unwrap();
    let runtime = start(dir.path());
    assert_eq!(runtime.catalog().entries.len(), 2);
    for entry in &runtime.catalog().entries {
        let text = entry.outcome.as_ref().expect_err("both fail").to_string();
        assert!(
            text.contains("echo-copy.wasm") && text.contains("ogx_fixture_echo.wasm"),
            "{text}"
        );
        assert!(
            text.contains("both serve provider type `test::echo`"),
            "{text}"
        );
    }
    let err = runtime
        .provider("e", "test::echo", &serde_json::json!({}))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("provider `e` (type `test::echo`): ") && err.contains("echo-copy.wasm"),
        "{err}"
    );
}

#[tokio::test]
async fn the_same_file_in_two_directories_is_one_plugin() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let first = plugins_dir(&fixtures, &["echo"]);
    let second = plugins_dir(&fixtures, &["echo"]);
    let mut opts = options(first.path());
    opts.search_path.push(second.path().to_path_buf());
    let runtime = PluginRuntime::start(opts).unwrap();
    assert_eq!(runtime.catalog().entries.len(), 1);
    let entry = &runtime.catalog().entries[0];
    assert!(entry.path.starts_with(first.path()), "{:?}", entry.path);
    assert!(entry.outcome.is_ok(), "{:?}", entry.outcome);
    assert!(
        runtime
            .provider("e", "test::echo", &serde_json::json!({}))
            .is_ok()
    );
}

#[tokio::test]
async fn second_start_loads_from_the_cache() {
    let Some(fixtures) = fixtures_dir() else {
        return;
    };
    let dir = plugins_dir(&fixtures, &["echo"]);
    let cache = tempfile::tempdir().unwrap();
    let cache_dir = cache.path().join("ogx-cache");
    let mut opts = options(dir.path());
    opts.cache_dir = Some(cache_dir.clone());

    let first = PluginRuntime::start(opts.clone()).unwrap();
    let Some(CacheOutcome::Miss { file, .. }) = first.catalog().entries[0].cache.clone() else {
        panic!(
            "first start compiles: {:?}",
            first.catalog().entries[0].cache
        )
    };
    assert!(file.is_file() && file.starts_with(&cache_dir) && file.extension().unwrap() == "cwasm");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache_dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let second = PluginRuntime::start(opts.clone()).unwrap();
    assert_eq!(
        second.catalog().entries[0].cache,
        Some(CacheOutcome::Hit { file: file.clone() })
    );
    let provider = second
        .provider("echo", "test::echo", &serde_json::json!({}))
        .unwrap();
    assert_eq!(
        provider.list_models(ctx("r")).await.unwrap()[0].id,
        "echo-model"
    );

    // A corrupt cache file is recompiled, not fatal. (Replaced by rename: the loaded
    // runtimes above still have the old file mapped, and truncating a mapped file in place
    // would crash them, which is why the cache itself only ever renames.)
    let corrupt = cache_dir.join("corrupt.tmp");
    std::fs::write(&corrupt, b"garbage").unwrap();
    std::fs::rename(&corrupt, &file).unwrap();
    let third = PluginRuntime::start(opts).unwrap();
    assert!(
        matches!(
            third.catalog().entries[0].cache,
            Some(CacheOutcome::Replaced { .. })
        ),
        "{:?}",
        third.catalog().entries[0].cache
    );
    assert!(third.catalog().entries[0].outcome.is_ok());
}
