//! Loading the plugin files again while the server runs: [`PluginRuntime::rescan`] builds a
//! new runtime on the same engine from the files as they are now, and says what changed.
//!
//! A file whose content (sha256) is unchanged keeps its loaded plugin: nothing is compiled or
//! described again. A new or changed file goes through every load stage of `discovery`, as at
//! start-up (its compiled code comes from the cache when the same bytes were compiled before).
//! A changed file that fails a stage is **refused**: the previous version of that file stays
//! in the new runtime and keeps serving, and the refusal carries the load error. A removed
//! file's plugin is gone from the new runtime; whoever binds providers on it finds out.
//!
//! Compiling happens on the caller's thread (plus the loader's own threads): call it off the
//! async threads (`spawn_blocking`). The runtime it was called on is not modified; providers
//! bound to it keep running their plugins until they are dropped.

use super::discovery::{self, PluginEntry};
use super::instance::LoadedPlugin;
use super::loading::{self, PluginRuntime};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

/// One difference between the plugin files loaded and the files on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginChange {
    /// A file that now serves its provider types (new, or loadable again).
    Added(PathBuf),
    /// A file whose new content replaced the version loaded before.
    Replaced(PathBuf),
    /// A loaded file that is no longer on the search path.
    Removed(PathBuf),
    /// A new or changed file that failed to load: `error` says why (naming the file and the
    /// fix); `kept` when the version loaded before keeps serving.
    Refused {
        path: PathBuf,
        error: String,
        kept: bool,
    },
}

type Loaded = (PluginEntry, Option<Arc<LoadedPlugin>>);

impl PluginRuntime {
    /// A runtime on the same engine, store and environment with the plugin files as they are
    /// now, and what changed (see the module documentation). Only a broken loader (a panicked
    /// loading thread) is an `Err`.
    pub fn rescan(&self) -> anyhow::Result<(PluginRuntime, Vec<PluginChange>)> {
        let now = SystemTime::now();
        let candidates = discovery::candidate_files(&self.search_path);
        let previous: HashMap<&PathBuf, Loaded> = self
            .catalog
            .entries
            .iter()
            .map(|entry| (&entry.path, (entry.clone(), self.loaded_plugin(entry))))
            .collect();
        let on_disk: Vec<PathBuf> = candidates.iter().map(|c| c.path.clone()).collect();
        let mut slots: Vec<Option<Loaded>> = vec![None; candidates.len()];
        let mut to_load = Vec::new();
        let mut to_load_at = Vec::new();
        for (index, candidate) in candidates.into_iter().enumerate() {
            let same_bytes = match (&candidate.contents, self.files.get(&candidate.path)) {
                (Ok((_, digest)), Some(file)) => *digest == file.digest,
                _ => false,
            };
            match previous.get(&candidate.path) {
                Some(loaded @ (_, Some(_))) if same_bytes => slots[index] = Some(loaded.clone()),
                _ => {
                    to_load_at.push(index);
                    to_load.push(candidate);
                }
            }
        }
        let mut files = loading::file_facts(&to_load, now);
        let fresh = loading::load_in_parallel(&self.sandbox, &self.linker, &self.cache, to_load)?;
        let mut changes = Vec::new();
        for (index, (entry, pre)) in to_load_at.into_iter().zip(fresh) {
            let path = entry.path.clone();
            let before = previous.get(&path);
            let changed =
                files.get(&path).map(|f| f.digest) != self.files.get(&path).map(|f| f.digest);
            slots[index] = Some(match (&entry.outcome, before) {
                (Err(error), Some(kept @ (_, Some(_)))) => {
                    changes.push(PluginChange::Refused {
                        path: path.clone(),
                        error: error.to_string(),
                        kept: true,
                    });
                    files.remove(&path);
                    kept.clone()
                }
                (Err(error), _) => {
                    if changed {
                        changes.push(PluginChange::Refused {
                            path,
                            error: error.to_string(),
                            kept: false,
                        });
                    }
                    (entry, pre)
                }
                (Ok(_), Some((_, Some(_)))) => {
                    changes.push(PluginChange::Replaced(path));
                    (entry, pre)
                }
                (Ok(_), _) => {
                    changes.push(PluginChange::Added(path));
                    (entry, pre)
                }
            });
        }
        for (path, (_, plugin)) in &previous {
            if plugin.is_some() && !on_disk.contains(path) {
                changes.push(PluginChange::Removed((*path).clone()));
            }
        }
        // Files carried over keep their hash and load time.
        for path in &on_disk {
            if let (false, Some(file)) = (files.contains_key(path), self.files.get(path)) {
                files.insert(path.clone(), *file);
            }
        }
        let (catalog, plugins) = loading::index(slots.into_iter().flatten().collect());
        let runtime = PluginRuntime {
            sandbox: Arc::clone(&self.sandbox),
            linker: self.linker.clone(),
            cache: Arc::clone(&self.cache),
            search_path: self.search_path.clone(),
            catalog,
            plugins,
            files,
            kv: Arc::clone(&self.kv),
            env: self.env.clone(),
            policy: self.policy.clone(),
        };
        Ok((runtime, changes))
    }

    /// The loaded plugin of a catalog entry that loaded.
    fn loaded_plugin(&self, entry: &PluginEntry) -> Option<Arc<LoadedPlugin>> {
        let descriptor = entry.outcome.as_ref().ok()?;
        let plugin = self.plugins.get(descriptor.provider_types.first()?)?;
        (plugin.path == entry.path).then(|| Arc::clone(plugin))
    }
}
