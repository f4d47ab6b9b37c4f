//! Finding plugins: the search path, staged validation with errors that name the file and
//! the fix, and the index by provider type.
//!
//! Every `*.wasm` file directly inside a search-path directory is a candidate (missing
//! directories are skipped silently; subdirectories are not searched). Each file goes through
//! the stages below and stops at the first failure, which is kept in the catalog for
//! `ogx plugins list`; a broken plugin never stops the others from loading.
//!
//! 1. Read the file.
//! 2. It must be a component (not a core module, not garbage).
//! 3. Compile it (through the cache).
//! 4. It must export `ogx:provider/provider` of a version this host serves
//!    ([`InterfaceVersion::SERVED`]); that export chooses the bindings the plugin is called
//!    through. Another version is refused naming it and the versions served.
//! 5. Every import must be one ogx gives plugins, checked by name against an allow-list, so
//!    `wasi:sockets` or `wasi:http` fail here naming the import (the linker does not even
//!    contain them); `ogx:provider` imports must be of the plugin's own version.
//! 6. Link (`instantiate_pre`) and type-check the exports against that version's world.
//! 7. Call `describe` in a throw-away instance.
//!
//! Finally two plugins claiming one provider type both fail with an error naming both files.

use super::bindings::InterfaceVersion;
use super::cache::CacheOutcome;
use sha2::Digest;
use std::path::{Path, PathBuf};

/// The export every plugin has, followed by `@<version>`.
pub const PROVIDER_EXPORT: &str = "ogx:provider/provider";

/// Environment variable with extra plugin directories, colon-separated.
pub const PLUGINS_DIR_ENV: &str = "OGX_PLUGINS_DIR";

/// Imports a plugin may have, by interface name without version (`ogx:provider/*` must also
/// be of the plugin's own interface version; `wasi:*` any 0.2.x that the linker provides).
pub const ALLOWED_OGX_IMPORTS: [&str; 5] = ["outbound-http", "config", "logging", "kv", "types"];
/// WASI packages a plugin may import (filesystem has no preopens, so it sees no files).
pub const ALLOWED_WASI_PACKAGES: [&str; 5] = ["cli", "clocks", "random", "io", "filesystem"];

/// Every `.wasm` file found on the search path, loaded or not.
pub struct PluginCatalog {
    pub entries: Vec<PluginEntry>,
}

impl PluginCatalog {
    /// The loaded entry serving `provider_type`, if exactly one plugin claims it.
    pub fn plugin_for(&self, provider_type: &str) -> Option<&PluginEntry> {
        self.entries.iter().find(|e| {
            e.outcome
                .as_ref()
                .is_ok_and(|d| d.provider_types.iter().any(|t| t == provider_type))
        })
    }
}

/// One `.wasm` file and what became of it.
#[derive(Clone)]
pub struct PluginEntry {
    pub path: PathBuf,
    /// The provider types it serves, or why it could not be loaded.
    pub outcome: Result<super::Descriptor, PluginLoadError>,
    /// Whether its compiled code came from the cache; `None` if it failed before compiling.
    pub cache: Option<CacheOutcome>,
}

/// Why a plugin could not be loaded or bound to a provider. `Display` names the file (and
/// the provider id where there is one) and says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginLoadError {
    #[error("{0}")]
    Message(String),
    #[error("{}: cannot read the file ({reason}); check that it exists and that ogx may read it", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{} is not a WebAssembly file: remove it from the plugins directory, or replace it with a plugin built with `cargo build --target wasm32-wasip2`", path.display())]
    NotWasm { path: PathBuf },
    #[error("{} is a core WebAssembly module, not a component: build it with `cargo build --target wasm32-wasip2` (or `cargo component build`)", path.display())]
    CoreModule { path: PathBuf },
    #[error("{} could not be compiled ({reason}); rebuild it with `cargo build --target wasm32-wasip2`", path.display())]
    Compile { path: PathBuf, reason: String },
    #[error("{} is built against ogx:provider@{found}; this ogx serves ogx:provider@{served} plugins: {fix}", path.display(), served = InterfaceVersion::served_list(), fix = version_fix(found))]
    WrongVersion { path: PathBuf, found: String },
    #[error("{} does not export {PROVIDER_EXPORT}@{latest} ({reason}): build it with ogx-provider-sdk {sdk} and register the provider with its export macro", path.display(), latest = InterfaceVersion::LATEST, sdk = sdk_version())]
    MissingExport { path: PathBuf, reason: String },
    #[error("{} imports `{import}`, which ogx does not give plugins. Allowed imports: ogx:provider/{{outbound-http,config,logging,kv}} of the plugin's interface version ({version}), wasi:{{cli,clocks,random,io,filesystem(empty)}}: remove the dependency that needs it (use ogx:provider/outbound-http for HTTP)", path.display())]
    ForbiddenImport {
        path: PathBuf,
        import: String,
        version: InterfaceVersion,
    },
    #[error("{} cannot be linked ({reason}): rebuild it with ogx-provider-sdk {sdk}", path.display(), sdk = sdk_version())]
    Link { path: PathBuf, reason: String },
    #[error("{}: `describe` failed ({reason}); this is a bug in the plugin: `describe` must return its descriptor without calling imports", path.display())]
    Describe { path: PathBuf, reason: String },
    #[error("{} describes no provider types: list at least one in its descriptor", path.display())]
    NoProviderTypes { path: PathBuf },
    #[error("{} and {} both serve provider type `{provider_type}`, so neither does: remove one of them from the plugins directories", path.display(), other.display())]
    DuplicateType {
        path: PathBuf,
        other: PathBuf,
        provider_type: String,
    },
    #[error(
        "provider `{provider_id}`: no plugin serves provider type `{provider_type}` ({found}); put its .wasm file into a plugins directory (`ogx plugins list` shows what was found)"
    )]
    UnknownProviderType {
        provider_id: String,
        provider_type: String,
        found: String,
    },
    #[error("provider `{provider_id}` (type `{provider_type}`): {source}")]
    PluginFailed {
        provider_id: String,
        provider_type: String,
        source: Box<PluginLoadError>,
    },
    #[error("provider `{provider_id}` ({}): {reason}", path.display())]
    Setup {
        provider_id: String,
        path: PathBuf,
        reason: String,
    },
}

/// The load stages in order, as `ogx plugins validate` names them.
pub const LOAD_STAGES: [&str; 8] = [
    "read",
    "component",
    "compile",
    "interface version",
    "imports",
    "exports",
    "describe",
    "init",
];

impl PluginLoadError {
    /// The load stage (one of [`LOAD_STAGES`]) that failed.
    pub fn stage(&self) -> &'static str {
        use PluginLoadError::*;
        match self {
            Unreadable { .. } => "read",
            NotWasm { .. } | CoreModule { .. } => "component",
            Compile { .. } => "compile",
            WrongVersion { .. } => "interface version",
            ForbiddenImport { .. } => "imports",
            Link { .. } | MissingExport { .. } => "exports",
            Describe { .. } | NoProviderTypes { .. } | DuplicateType { .. } => "describe",
            Setup { .. } | Message(_) | UnknownProviderType { .. } => "init",
            PluginFailed { source, .. } => source.stage(),
        }
    }

    /// The plugin file the error is about, if any.
    pub fn path(&self) -> Option<&Path> {
        use PluginLoadError::*;
        match self {
            Unreadable { path, .. }
            | NotWasm { path }
            | CoreModule { path }
            | Compile { path, .. }
            | WrongVersion { path, .. }
            | MissingExport { path, .. }
            | ForbiddenImport { path, .. }
            | Link { path, .. }
            | Describe { path, .. }
            | NoProviderTypes { path }
            | DuplicateType { path, .. }
            | Setup { path, .. } => Some(path),
            PluginFailed { source, .. } => source.path(),
            Message(_) | UnknownProviderType { .. } => None,
        }
    }
}

/// The search path in order: each `--plugins-dir`, then `$OGX_PLUGINS_DIR` (colon-separated),
/// `<config dir>/plugins`, `~/.ogx/plugins`, and `plugins/` next to the running executable
/// (where the set-up installs the built-in plugins). Duplicates are dropped.
pub fn search_path(
    plugins_dirs: &[PathBuf],
    config_dir: Option<&Path>,
    env: impl Fn(&str) -> Option<String>,
) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = plugins_dirs.to_vec();
    if let Some(list) = env(PLUGINS_DIR_ENV) {
        dirs.extend(list.split(':').filter(|d| !d.is_empty()).map(PathBuf::from));
    }
    if let Some(config_dir) = config_dir {
        dirs.push(config_dir.join("plugins"));
    }
    if let Some(home) = env("HOME").filter(|h| !h.is_empty()) {
        dirs.push(Path::new(&home).join(".ogx").join("plugins"));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        dirs.push(exe_dir.join("plugins"));
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// A `*.wasm` file found on the search path, read once: discovery hashes it to drop copies,
/// and loading and the compiled-plugin cache reuse the bytes and the digest.
#[derive(Debug)]
pub struct Candidate {
    pub path: PathBuf,
    /// The file's bytes and their sha256, or why it could not be read (loading reports it).
    pub contents: Result<(Vec<u8>, [u8; 32]), String>,
}

impl Candidate {
    /// Reads one file (`ogx plugins validate` names it directly); an unreadable file keeps
    /// its error for the load stages to report.
    pub fn read(path: PathBuf) -> Candidate {
        let contents = std::fs::read(&path)
            .map(|bytes| {
                let digest: [u8; 32] = sha2::Sha256::digest(&bytes).into();
                (bytes, digest)
            })
            .map_err(|e| e.to_string());
        Candidate { path, contents }
    }
}

/// The `*.wasm` files directly inside each directory, in search-path order (sorted by name
/// within a directory). Missing or unreadable directories are skipped. A file whose bytes are
/// identical to one found earlier (the same plugin copied into two directories, or one
/// directory reached by two paths) is the same plugin: only the first is kept.
pub fn candidate_files(search_path: &[PathBuf]) -> Vec<Candidate> {
    let mut files = Vec::new();
    let mut first_with_content: std::collections::HashMap<[u8; 32], PathBuf> =
        std::collections::HashMap::new();
    for dir in search_path {
        for path in wasm_files_in(dir) {
            // Unreadable files stay in the list, so loading reports why.
            let candidate = Candidate::read(path);
            if let Ok((_, digest)) = &candidate.contents {
                if let Some(first) = first_with_content.get(digest) {
                    tracing::debug!(
                        "{} is identical to {}: loaded once",
                        candidate.path.display(),
                        first.display()
                    );
                    continue;
                }
                first_with_content.insert(*digest, candidate.path.clone());
            }
            files.push(candidate);
        }
    }
    files
}

/// The `*.wasm` files directly inside `dir`, sorted by name; none when it cannot be read.
pub fn wasm_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm") && !p.is_dir())
        .collect();
    found.sort();
    found
}

/// Stage 2: a component, a core module, or neither.
pub(crate) fn check_binary_kind(path: &Path, bytes: &[u8]) -> Result<(), PluginLoadError> {
    if wasmparser::Parser::is_component(bytes) {
        Ok(())
    } else if wasmparser::Parser::is_core_wasm(bytes) {
        Err(PluginLoadError::CoreModule {
            path: path.to_owned(),
        })
    } else {
        Err(PluginLoadError::NotWasm {
            path: path.to_owned(),
        })
    }
}

/// The SDK line that builds against the newest interface, e.g. `0.2`.
fn sdk_version() -> &'static str {
    let latest = InterfaceVersion::LATEST.as_str();
    latest
        .rsplit_once('.')
        .map_or(latest, |(major_minor, _)| major_minor)
}

/// What to do about a plugin built against an interface version this host does not serve.
fn version_fix(found: &str) -> String {
    let parts = |v: &str| -> Vec<u64> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    if parts(found) > parts(InterfaceVersion::LATEST.as_str()) {
        format!(
            "it needs a newer ogx (upgrade ogx), or rebuild it with ogx-provider-sdk {}",
            sdk_version()
        )
    } else {
        format!("rebuild it with ogx-provider-sdk {}", sdk_version())
    }
}

/// Stage 4: the interface version the component exports, if this host serves it.
pub(crate) fn interface_version<'a>(
    path: &Path,
    exports: impl Iterator<Item = &'a str>,
) -> Result<InterfaceVersion, PluginLoadError> {
    let mut other_version = None;
    for name in exports {
        let Some(version) = name
            .strip_prefix(PROVIDER_EXPORT)
            .and_then(|rest| rest.strip_prefix('@'))
        else {
            continue;
        };
        match InterfaceVersion::parse(version) {
            Some(served) => return Ok(served),
            None => other_version = Some(version.to_owned()),
        }
    }
    Err(match other_version {
        Some(found) => PluginLoadError::WrongVersion {
            path: path.to_owned(),
            found,
        },
        None => PluginLoadError::MissingExport {
            path: path.to_owned(),
            reason: "no such export".into(),
        },
    })
}

/// Whether ogx gives a plugin built against `plugin_version` the import `name` (e.g.
/// `wasi:cli/environment@0.2.3`).
pub fn import_allowed(name: &str, plugin_version: InterfaceVersion) -> bool {
    let (iface, version) = name.split_once('@').unwrap_or((name, ""));
    if let Some(ogx) = iface.strip_prefix("ogx:provider/") {
        return version == plugin_version.as_str() && ALLOWED_OGX_IMPORTS.contains(&ogx);
    }
    if let Some((package, _)) = iface
        .strip_prefix("wasi:")
        .and_then(|rest| rest.split_once('/'))
    {
        return version.starts_with("0.2.") && ALLOWED_WASI_PACKAGES.contains(&package);
    }
    false
}

/// Stage 5: every import is one ogx gives plugins.
pub(crate) fn check_imports<'a>(
    path: &Path,
    version: InterfaceVersion,
    imports: impl Iterator<Item = &'a str>,
) -> Result<(), PluginLoadError> {
    for name in imports {
        if !import_allowed(name, version) {
            return Err(PluginLoadError::ForbiddenImport {
                path: path.to_owned(),
                import: name.to_owned(),
                version,
            });
        }
    }
    Ok(())
}

/// Marks every loaded entry whose provider type another loaded entry also claims.
pub(crate) fn reject_duplicate_types(entries: &mut [PluginEntry]) {
    let mut errors: Vec<(usize, PluginLoadError)> = Vec::new();
    for (i, a) in entries.iter().enumerate() {
        let Ok(da) = &a.outcome else { continue };
        for (j, b) in entries.iter().enumerate() {
            let Ok(db) = &b.outcome else { continue };
            if i == j || errors.iter().any(|(k, _)| *k == i) {
                continue;
            }
            if let Some(t) = da
                .provider_types
                .iter()
                .find(|t| db.provider_types.contains(t))
            {
                errors.push((
                    i,
                    PluginLoadError::DuplicateType {
                        path: a.path.clone(),
                        other: b.path.clone(),
                        provider_type: t.clone(),
                    },
                ));
            }
        }
    }
    for (i, error) in errors {
        entries[i].outcome = Err(error);
    }
}

/// The error for a config entry whose type no loaded plugin serves.
pub(crate) fn unserved_type(
    catalog: &PluginCatalog,
    provider_id: &str,
    provider_type: &str,
) -> PluginLoadError {
    let duplicate = catalog.entries.iter().find_map(|e| match &e.outcome {
        Err(
            err @ PluginLoadError::DuplicateType {
                provider_type: t, ..
            },
        ) if t == provider_type => Some(err.clone()),
        _ => None,
    });
    if let Some(err) = duplicate {
        return PluginLoadError::PluginFailed {
            provider_id: provider_id.into(),
            provider_type: provider_type.into(),
            source: Box::new(err),
        };
    }
    let mut served: Vec<&str> = catalog
        .entries
        .iter()
        .filter_map(|e| e.outcome.as_ref().ok())
        .flat_map(|d| d.provider_types.iter().map(String::as_str))
        .collect();
    served.sort_unstable();
    let failed = catalog
        .entries
        .iter()
        .filter(|e| e.outcome.is_err())
        .count();
    let mut found = if served.is_empty() {
        "no plugin serves any type".to_owned()
    } else {
        format!("served: {}", served.join(", "))
    };
    if failed > 0 {
        found.push_str(&format!("; {failed} plugin file(s) failed to load"));
    }
    PluginLoadError::UnknownProviderType {
        provider_id: provider_id.into(),
        provider_type: provider_type.into(),
        found,
    }
}
