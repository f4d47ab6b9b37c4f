//! What triggers a change while the server runs: `SIGHUP` reloads the config
//! ([`Live::reload_config`]), and a watcher of the plugin directories swaps plugin files
//! ([`super::apply_plugins`]).
//!
//! **The watcher polls**: every [`PLUGINS_WATCH_INTERVAL_ENV`] milliseconds (default
//! [`DEFAULT_PLUGINS_WATCH_INTERVAL`]; 0 switches it off) it lists the `*.wasm` files of the
//! search path with their size and modification time: a few `stat` calls, no dependency, and it
//! works on every file system (inotify misses changes on network and some container
//! file systems). A change is applied once the listing has stayed the same for one more
//! interval, so a file still being written is not loaded half-way; writing the new file
//! beside the directory and renaming it into place is atomic and safe with any timing. A file
//! that is still caught half-written fails to load, is refused (the old version keeps
//! serving), and is loaded once it is complete.
//!
//! Failures are logged (and shown by `/v1/inspect/plugins`); the server keeps serving.

use super::Live;
use crate::config::env::{self, Lookup};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Overrides how often the plugin directories are checked, in milliseconds (0: never).
pub const PLUGINS_WATCH_INTERVAL_ENV: &str = "OGX_PLUGINS_WATCH_INTERVAL_MS";
/// How often the plugin directories are checked by default.
pub const DEFAULT_PLUGINS_WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// The watcher's interval: the default, or `$OGX_PLUGINS_WATCH_INTERVAL_MS`; `None` when 0.
pub fn plugins_watch_interval(lookup: Lookup<'_>) -> anyhow::Result<Option<Duration>> {
    let millis = env::whole_number(
        lookup,
        PLUGINS_WATCH_INTERVAL_ENV,
        "unset it or give milliseconds, e.g. 1000 (0 stops watching the plugin directories)",
    )?;
    Ok(match millis {
        None => Some(DEFAULT_PLUGINS_WATCH_INTERVAL),
        Some(0) => None,
        Some(ms) => Some(Duration::from_millis(ms)),
    })
}

/// Reloads the config at every `SIGHUP` for as long as the process runs.
pub fn reload_on_sighup(live: &Arc<Live>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup())
        .map_err(|e| anyhow::anyhow!("cannot handle SIGHUP (config reload): {e}"))?;
    let live = Arc::clone(live);
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            // The outcome is logged by reload_config.
            let _ = live.reload_config().await;
        }
    });
    Ok(())
}

/// Watches the plugin directories every `interval` (see the module documentation).
pub fn watch_plugins(live: &Arc<Live>, interval: Duration) {
    let live = Arc::clone(live);
    tokio::spawn(async move {
        let dirs = live.plugin_search_path().await;
        let mut applied = listing(&dirs);
        let mut seen = applied.clone();
        loop {
            tokio::time::sleep(interval).await;
            let now = listing(&dirs);
            if now != applied && now == seen {
                match super::apply_plugins(&live).await {
                    Ok(Some(report)) => tracing::info!("plugin change applied: {report}"),
                    Ok(None) => {}
                    Err(error) => tracing::error!("{error}"),
                }
                applied = now.clone();
            }
            seen = now;
        }
    });
}

/// One `*.wasm` file as the watcher compares it.
type Stamp = (PathBuf, u64, Option<SystemTime>);

/// The `*.wasm` files of `dirs` with their size and modification time.
fn listing(dirs: &[PathBuf]) -> Vec<Stamp> {
    dirs.iter()
        .flat_map(|dir| crate::runtime::discovery::wasm_files_in(dir))
        .map(|path| stamp(&path))
        .collect()
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok();
    (
        path.to_path_buf(),
        meta.as_ref().map_or(0, |m| m.len()),
        meta.and_then(|m| m.modified().ok()),
    )
}
