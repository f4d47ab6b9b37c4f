//! What `/v1/inspect/plugins` (and `ogx plugins list --server`) shows: every plugin file of
//! the live runtime with its provider types, the providers it serves, its content hash, when
//! that content was loaded, why it failed if it did, and the last refusal of a new version.
//!
//! It shows file paths, plugin names, versions, hashes and load errors; never a config value,
//! so never a secret. The board is read under a short lock, never held across a load: a
//! request to the route does not wait for a plugin to compile.

use crate::runtime::{PluginChange, PluginRuntime, Provider};
use crate::server::PluginsView;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The live runtime and providers, and the refusals seen since start-up.
pub(super) struct Board {
    inner: Mutex<Inner>,
}

struct Inner {
    runtime: Arc<PluginRuntime>,
    providers: Vec<Arc<Provider>>,
    /// The last refusal of each file: when, and the error.
    refusals: HashMap<PathBuf, (SystemTime, String)>,
}

impl Board {
    pub(super) fn new(runtime: Arc<PluginRuntime>, providers: Vec<Arc<Provider>>) -> Self {
        Board {
            inner: Mutex::new(Inner {
                runtime,
                providers,
                refusals: HashMap::new(),
            }),
        }
    }

    /// The route's view of this board.
    pub(super) fn view(self: &Arc<Self>) -> PluginsView {
        let board = Arc::clone(self);
        PluginsView(Arc::new(move || board.to_json()))
    }

    /// The runtime and providers serving from now on.
    pub(super) fn serve(&self, runtime: Arc<PluginRuntime>, providers: Vec<Arc<Provider>>) {
        let mut inner = self.inner.lock().expect("plugin board lock");
        inner.runtime = runtime;
        inner.providers = providers;
    }

    /// Logs a rescan's changes and keeps its refusals (a file loaded again clears its own).
    pub(super) fn record(&self, changes: &[PluginChange]) {
        let mut inner = self.inner.lock().expect("plugin board lock");
        for change in changes {
            match change {
                PluginChange::Refused { path, error, kept } => {
                    let what = if *kept {
                        "the version loaded before keeps serving"
                    } else {
                        "not loaded"
                    };
                    tracing::error!("plugin {} refused ({what}): {error}", path.display());
                    inner
                        .refusals
                        .insert(path.clone(), (SystemTime::now(), error.clone()));
                }
                PluginChange::Added(path) | PluginChange::Replaced(path) => {
                    tracing::info!("plugin {}", describe(change));
                    inner.refusals.remove(path);
                }
                PluginChange::Removed(_) => tracing::info!("plugin {}", describe(change)),
            }
        }
    }

    /// Records that `changes` could not be swapped in, with the reason.
    pub(super) fn refuse(&self, changes: &[&PluginChange], reason: &str) {
        let mut inner = self.inner.lock().expect("plugin board lock");
        for change in changes {
            if let PluginChange::Added(path)
            | PluginChange::Replaced(path)
            | PluginChange::Removed(path) = change
            {
                inner
                    .refusals
                    .insert(path.clone(), (SystemTime::now(), reason.to_owned()));
            }
        }
    }

    fn to_json(&self) -> Value {
        let inner = self.inner.lock().expect("plugin board lock");
        let data: Vec<Value> = inner
            .runtime
            .catalog()
            .entries
            .iter()
            .map(|entry| {
                let file = inner.runtime.file(&entry.path);
                let mut item = json!({
                    "path": entry.path.display().to_string(),
                    "sha256": file.map(|f| hex::encode(f.digest)),
                    "loaded_at": file.map(|f| unix_seconds(f.loaded_at)),
                    "last_refusal": inner.refusals.get(&entry.path).map(|(at, error)| {
                        json!({"at": unix_seconds(*at), "error": error})
                    }),
                });
                match &entry.outcome {
                    Ok(d) => {
                        let providers: Vec<&str> = inner
                            .providers
                            .iter()
                            .filter(|p| p.plugin_path() == entry.path)
                            .map(|p| p.id())
                            .collect();
                        item["status"] = json!("loaded");
                        item["name"] = json!(d.name);
                        item["version"] = json!(d.version);
                        item["interface"] = json!(d.interface.as_str());
                        item["provider_types"] = json!(d.provider_types);
                        item["providers"] = json!(providers);
                    }
                    Err(error) => {
                        item["status"] = json!("failed");
                        item["error"] = json!(error.to_string());
                    }
                }
                item
            })
            .collect();
        // A new file refused while nothing else changed is not in the live catalog.
        let orphans: Vec<Value> = inner
            .refusals
            .iter()
            .filter(|(path, _)| {
                !inner
                    .runtime
                    .catalog()
                    .entries
                    .iter()
                    .any(|e| &e.path == *path)
            })
            .map(|(path, (at, error))| {
                json!({
                    "path": path.display().to_string(),
                    "status": "refused",
                    "last_refusal": {"at": unix_seconds(*at), "error": error},
                })
            })
            .collect();
        json!({
            "search_path": inner.runtime.search_path().iter().map(|d| d.display().to_string()).collect::<Vec<_>>(),
            "data": data.into_iter().chain(orphans).collect::<Vec<_>>(),
        })
    }
}

/// A change as one phrase, e.g. `replaced: /plugins/openai.wasm`.
pub(super) fn describe(change: &PluginChange) -> String {
    match change {
        PluginChange::Added(path) => format!("added: {}", path.display()),
        PluginChange::Replaced(path) => format!("replaced: {}", path.display()),
        PluginChange::Removed(path) => format!("removed: {}", path.display()),
        PluginChange::Refused { path, .. } => format!("refused: {}", path.display()),
    }
}

/// Seconds since the epoch.
fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
