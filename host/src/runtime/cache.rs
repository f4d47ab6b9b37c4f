//! The on-disk cache of compiled plugins, so start-up does not recompile unchanged `.wasm`
//! files (a small component compiles in a few hundred ms; loading it from the cache takes
//! well under a millisecond because the file is mmapped).
//!
//! The key is sha256 over the wasm's sha256 and wasmtime's
//! `Engine::precompile_compatibility_hash()`, so a new wasmtime or different engine settings
//! never load a stale artifact. Files are `<key>.cwasm`, written to a temporary name and
//! renamed, in a directory of mode 0700.
//!
//! Trust: loading a `.cwasm` runs native code without validation (`unsafe
//! Component::deserialize_file`). The cache therefore refuses a directory that other users
//! can write to (it compiles without caching and logs why). A cache file that does not load
//! (truncated, corrupt) is recompiled and replaced; a cache that cannot be written only costs
//! the compile time. The cache never fails a plugin.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "OGX_PLUGIN_CACHE_DIR";

/// How a plugin's compiled code was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from the cache file.
    Hit { file: PathBuf },
    /// Compiled and stored in the cache.
    Miss { file: PathBuf, compile: Duration },
    /// The cache file did not load; compiled again and replaced it.
    Replaced {
        file: PathBuf,
        compile: Duration,
        reason: String,
    },
    /// Compiled without the cache (disabled, or the directory is unusable).
    Uncached { compile: Duration, reason: String },
}

/// The default cache directory: `$OGX_PLUGIN_CACHE_DIR`, else `$XDG_CACHE_HOME/ogx/plugins`,
/// else `~/.cache/ogx/plugins`. `env` looks a variable up.
pub fn default_cache_dir(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty(CACHE_DIR_ENV) {
        return Some(dir);
    }
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return Some(xdg.join("ogx").join("plugins"));
    }
    non_empty("HOME").map(|home| home.join(".cache").join("ogx").join("plugins"))
}

/// Compiled components on disk.
pub struct ComponentCache {
    dir: Option<PathBuf>,
}

/// Feeds `Hash` output into sha256, to turn the compatibility hash into key bytes.
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

impl ComponentCache {
    /// A cache in `dir`; `None` disables caching.
    pub fn new(dir: Option<PathBuf>) -> Self {
        ComponentCache { dir }
    }

    /// The cache key for `engine` of the wasm whose sha256 is `wasm_digest`, as hex.
    pub fn key(engine: &Engine, wasm_digest: &[u8; 32]) -> String {
        let mut hasher = Sha256Hasher(Sha256::new());
        hasher.0.update(wasm_digest);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        hex::encode(hasher.0.finalize())
    }

    /// The compiled component for `wasm` (whose sha256 discovery already computed), from the
    /// cache or freshly compiled. Only a compile error is an `Err`.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        wasm: &[u8],
        wasm_digest: &[u8; 32],
        name: &str,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let dir = match self.usable_dir() {
            Ok(dir) => dir,
            Err(reason) => {
                let started = Instant::now();
                let component = Component::new(engine, wasm)?;
                let compile = started.elapsed();
                tracing::info!(
                    plugin = name,
                    ?compile,
                    "compiled plugin without the cache: {reason}"
                );
                return Ok((component, CacheOutcome::Uncached { compile, reason }));
            }
        };
        let file = dir.join(format!("{}.cwasm", Self::key(engine, wasm_digest)));
        let mut stale = None;
        if file.exists() {
            // SAFETY: the file was written by this cache under a key that includes the
            // engine's compatibility hash, in a directory only this user can write to.
            match unsafe { Component::deserialize_file(engine, &file) } {
                Ok(component) => {
                    tracing::debug!(plugin = name, file = %file.display(), "plugin cache hit");
                    return Ok((component, CacheOutcome::Hit { file }));
                }
                Err(e) => {
                    tracing::warn!(plugin = name, file = %file.display(), "plugin cache file did not load, recompiling: {e}");
                    stale = Some(e.to_string());
                }
            }
        }
        let started = Instant::now();
        let compiled = engine.precompile_component(wasm)?;
        let compile = started.elapsed();
        tracing::info!(plugin = name, ?compile, file = %file.display(), "plugin cache miss: compiled");
        if let Err(e) = write_atomically(&file, &compiled) {
            tracing::warn!(plugin = name, file = %file.display(), "could not write the plugin cache: {e}");
            let component = unsafe_deserialize(engine, &compiled)?;
            let reason = format!("could not write {}: {e}", file.display());
            return Ok((component, CacheOutcome::Uncached { compile, reason }));
        }
        // SAFETY: as above; we just wrote this file from `precompile_component`.
        let component = unsafe { Component::deserialize_file(engine, &file)? };
        let outcome = match stale {
            Some(reason) => CacheOutcome::Replaced {
                file,
                compile,
                reason,
            },
            None => CacheOutcome::Miss { file, compile },
        };
        Ok((component, outcome))
    }

    /// The cache directory, created with mode 0700, or why it cannot be used.
    fn usable_dir(&self) -> Result<&Path, String> {
        let dir = self
            .dir
            .as_deref()
            .ok_or_else(|| "the cache is disabled".to_owned())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let mode = std::fs::metadata(dir)
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
                .permissions()
                .mode();
            if mode & 0o022 != 0 {
                return Err(format!(
                    "{} is writable by other users (mode {:o}); run `chmod 700 {}` to use it",
                    dir.display(),
                    mode & 0o777,
                    dir.display()
                ));
            }
        }
        #[cfg(not(unix))]
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }
}

fn unsafe_deserialize(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `compiled` comes straight from `precompile_component` on this engine.
    unsafe { Component::deserialize(engine, compiled) }
}

/// Writes `bytes` to a temporary file next to `file`, syncs it, and renames it into place.
fn write_atomically(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = file.with_extension(format!(
        "cwasm.tmp.{}.{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp)?;
        out.write_all(bytes)?;
        out.sync_all()?;
        std::fs::rename(&tmp, file)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
