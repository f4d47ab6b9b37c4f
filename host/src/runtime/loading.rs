//! Loading the plugins: every candidate file found by `discovery` goes through the load stages
//! (compile through the cache, choose the interface version by what the component exports,
//! check its imports, link, `describe`), several at a time; then the index by provider type,
//! and binding a config entry to the plugin serving its type.
//!
//! A plugin that fails a stage is kept in the catalog with its error (for `ogx plugins list`)
//! and never stops the others; only a broken engine fails [`PluginRuntime::start`].

use super::bindings::PluginPre;
use super::bindings::latest::exports::ogx::provider::provider::NativeOperations;
use super::cache::ComponentCache;
use super::discovery::{self, Candidate, PluginCatalog, PluginEntry, PluginLoadError};
use super::engine;
use super::instance::{HostState, Instance, InstanceFor, LoadedPlugin, Sandbox};
use super::provider_setup;
use super::{Descriptor, Provider, RuntimeLimits};
use crate::config::network::NetworkSettings;
use crate::config::plugin_policy::PluginPolicy;
use crate::environment::Environment;
use crate::imports::kv::KvStore;
use crate::imports::logging::PluginLogger;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use wasmtime::component::Linker;

/// Plugins loaded at once at start-up, each on its own thread (compilation of one plugin is
/// itself parallel; this bounds the threads and the memory of many plugins compiling at once).
pub const MAX_PARALLEL_PLUGIN_LOADS: usize = 8;
/// Time allowed for `describe` at load time.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how the runtime looks for and caches plugins.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Directories searched in order (build it with `discovery::search_path`).
    pub search_path: Vec<PathBuf>,
    /// Where compiled plugins are cached; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    pub limits: RuntimeLimits,
    /// The store behind the `kv` import (the `metadata` backend's plugin table); `None` keeps
    /// plugin keys in memory.
    pub kv: Option<Arc<KvStore>>,
    /// The environment the providers' imports read: what plugins see through the `config`
    /// import (only the names they declare), the AWS credential chain's settings, endpoint
    /// overrides and CA bundles.
    pub env: Environment,
    /// The operator's sandbox policy (`plugins.policy`), applied to each provider bound.
    pub policy: PluginPolicy,
}

impl RuntimeOptions {
    /// Defaults around `search_path`: the default cache directory, default limits, the
    /// process environment, no kv file.
    pub fn new(search_path: Vec<PathBuf>) -> Self {
        let env = Environment::process();
        RuntimeOptions {
            search_path,
            cache_dir: super::cache::default_cache_dir(env.lookup()),
            limits: RuntimeLimits::default(),
            kv: None,
            env,
            policy: PluginPolicy::default(),
        }
    }
}

/// The engine, its linker and the plugins found.
pub struct PluginRuntime {
    pub(super) sandbox: Arc<Sandbox>,
    pub(super) linker: Linker<HostState>,
    pub(super) cache: Arc<ComponentCache>,
    pub(super) search_path: Vec<PathBuf>,
    pub(super) catalog: PluginCatalog,
    /// Loaded plugins, by provider type.
    pub(super) plugins: HashMap<String, Arc<LoadedPlugin>>,
    /// The sha256 and load time of every file in the catalog (of the version loaded).
    pub(super) files: HashMap<PathBuf, PluginFile>,
    pub(super) kv: Arc<KvStore>,
    pub(super) env: Environment,
    pub(super) policy: PluginPolicy,
}

/// A plugin file's content hash and when that content was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginFile {
    /// The sha256 of the bytes loaded.
    pub digest: [u8; 32],
    pub loaded_at: SystemTime,
}

impl PluginRuntime {
    /// Builds the engine and loads every plugin on the search path. Plugins that fail to load
    /// are kept in the catalog with their error; only a broken engine is an `Err`.
    pub fn start(options: RuntimeOptions) -> anyhow::Result<Self> {
        let files = discovery::candidate_files(&options.search_path);
        Self::start_with(options, files)
    }

    /// Builds the engine and loads the one plugin file `path` through the same stages,
    /// ignoring the search path (`ogx plugins validate` and `ogx plugins call`).
    pub fn load_file(options: RuntimeOptions, path: PathBuf) -> anyhow::Result<Self> {
        Self::start_with(options, vec![Candidate::read(path)])
    }

    fn start_with(options: RuntimeOptions, files: Vec<Candidate>) -> anyhow::Result<Self> {
        let (sandbox, linker) = engine::start(&options.limits)?;
        let kv =
            match &options.kv {
                Some(kv) => Arc::clone(kv),
                None => Arc::new(KvStore::open(None).map_err(|e| {
                    anyhow::anyhow!("could not open the plugin key-value store: {e}")
                })?),
            };
        let cache = Arc::new(ComponentCache::new(options.cache_dir.clone()));
        let facts = file_facts(&files, SystemTime::now());
        let loaded = load_in_parallel(&sandbox, &linker, &cache, files)?;
        let (catalog, plugins) = index(loaded);
        Ok(PluginRuntime {
            sandbox,
            linker,
            cache,
            search_path: options.search_path,
            catalog,
            plugins,
            files: facts,
            kv,
            env: options.env,
            policy: options.policy,
        })
    }

    /// The directories searched for plugins, in order.
    pub fn search_path(&self) -> &[PathBuf] {
        &self.search_path
    }

    /// The content hash and load time of a file of the catalog.
    pub fn file(&self, path: &std::path::Path) -> Option<&PluginFile> {
        self.files.get(path)
    }

    /// Whether `provider` runs the plugin this runtime binds its type to (false once its
    /// plugin file was replaced or removed).
    pub fn runs(&self, provider: &Provider) -> bool {
        self.plugins
            .get(provider.provider_type())
            .is_some_and(|plugin| provider.runs(plugin))
    }

    /// The plugins found, loaded or not, for `ogx plugins list` and start-up output.
    pub fn catalog(&self) -> &PluginCatalog {
        &self.catalog
    }

    /// The limits in force.
    pub fn limits(&self) -> &RuntimeLimits {
        &self.sandbox.limits
    }

    /// Binds a config entry to the plugin serving its type, with the default network
    /// settings. The error says which file, which provider id and what to do.
    pub fn provider(
        &self,
        provider_id: &str,
        provider_type: &str,
        config: &serde_json::Value,
    ) -> Result<Arc<Provider>, PluginLoadError> {
        self.provider_with_network(
            provider_id,
            provider_type,
            config,
            &NetworkSettings::default(),
        )
    }

    /// [`Self::provider`], its outbound client set up by the entry's `network:` block.
    pub fn provider_with_network(
        &self,
        provider_id: &str,
        provider_type: &str,
        config: &serde_json::Value,
        network: &NetworkSettings,
    ) -> Result<Arc<Provider>, PluginLoadError> {
        let (Some(plugin), Some(entry)) = (
            self.plugins.get(provider_type),
            self.catalog.plugin_for(provider_type),
        ) else {
            return Err(discovery::unserved_type(
                &self.catalog,
                provider_id,
                provider_type,
            ));
        };
        let Ok(descriptor) = &entry.outcome else {
            return Err(discovery::unserved_type(
                &self.catalog,
                provider_id,
                provider_type,
            ));
        };
        let handles = provider_setup::handles(
            descriptor,
            provider_setup::EntrySettings {
                provider_id,
                config,
                network,
                policy: &self.policy.for_provider(provider_id),
            },
            &self.env,
            &self.kv,
            &self.sandbox.limits,
        )
        .map_err(|reason| PluginLoadError::Setup {
            provider_id: provider_id.into(),
            path: plugin.path.clone(),
            reason,
        })?;
        Ok(Arc::new(Provider::new(
            self.sandbox.clone(),
            plugin.clone(),
            descriptor.clone(),
            provider_id,
            provider_type,
            config.clone(),
            handles,
        )))
    }
}

/// The content hash of each readable candidate, loaded `now`.
pub(super) fn file_facts(
    candidates: &[Candidate],
    now: SystemTime,
) -> HashMap<PathBuf, PluginFile> {
    candidates
        .iter()
        .filter_map(|c| {
            let (_, digest) = c.contents.as_ref().ok()?;
            Some((
                c.path.clone(),
                PluginFile {
                    digest: *digest,
                    loaded_at: now,
                },
            ))
        })
        .collect()
}

/// The catalog of loaded files (two files claiming one type both fail) and the plugins by
/// provider type.
pub(super) fn index(
    loaded: Vec<(PluginEntry, Option<Arc<LoadedPlugin>>)>,
) -> (PluginCatalog, HashMap<String, Arc<LoadedPlugin>>) {
    let (mut entries, pres): (Vec<PluginEntry>, Vec<Option<Arc<LoadedPlugin>>>) =
        loaded.into_iter().unzip();
    discovery::reject_duplicate_types(&mut entries);
    let mut plugins = HashMap::new();
    for (entry, pre) in entries.iter().zip(pres) {
        if let (Ok(descriptor), Some(pre)) = (&entry.outcome, pre) {
            for t in &descriptor.provider_types {
                plugins.insert(t.clone(), pre.clone());
            }
        }
    }
    for entry in &entries {
        match &entry.outcome {
            Ok(d) => {
                tracing::debug!(plugin = %entry.path.display(), types = ?d.provider_types, "plugin loaded")
            }
            Err(e) => tracing::debug!("plugin not loaded: {e}"),
        }
    }
    (PluginCatalog { entries }, plugins)
}

/// Loads every candidate, up to [`MAX_PARALLEL_PLUGIN_LOADS`] at a time, each on its own
/// scoped thread with a current-thread tokio runtime (so start-up works both inside and
/// outside a tokio runtime): compiling or deserializing one plugin and calling its `describe`
/// does not wait for the others. Results keep the order of `files`.
pub(super) fn load_in_parallel(
    sandbox: &Sandbox,
    linker: &Linker<HostState>,
    cache: &ComponentCache,
    files: Vec<Candidate>,
) -> anyhow::Result<Vec<(PluginEntry, Option<Arc<LoadedPlugin>>)>> {
    let mut loaded = Vec::with_capacity(files.len());
    let mut files = files.into_iter().peekable();
    while files.peek().is_some() {
        let batch: Vec<Candidate> = files.by_ref().take(MAX_PARALLEL_PLUGIN_LOADS).collect();
        std::thread::scope(|s| -> anyhow::Result<()> {
            let loading: Vec<_> = batch
                .into_iter()
                .map(|candidate| {
                    s.spawn(move || -> anyhow::Result<_> {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()?;
                        Ok(rt.block_on(load_plugin(sandbox, linker, cache, candidate)))
                    })
                })
                .collect();
            for thread in loading {
                let result = thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("plugin loading panicked"))?;
                loaded.push(result?);
            }
            Ok(())
        })?;
    }
    Ok(loaded)
}

/// Stages 1–7 of `discovery` for one file.
async fn load_plugin(
    sandbox: &Sandbox,
    linker: &Linker<HostState>,
    cache: &ComponentCache,
    candidate: Candidate,
) -> (PluginEntry, Option<Arc<LoadedPlugin>>) {
    let mut cache_outcome = None;
    let result = load_stages(sandbox, linker, cache, &candidate, &mut cache_outcome).await;
    let (outcome, pre) = match result {
        Ok((d, p)) => (Ok(d), Some(p)),
        Err(e) => (Err(e), None),
    };
    (
        PluginEntry {
            path: candidate.path,
            outcome,
            cache: cache_outcome,
        },
        pre,
    )
}

async fn load_stages(
    sandbox: &Sandbox,
    linker: &Linker<HostState>,
    cache: &ComponentCache,
    candidate: &Candidate,
    cache_outcome: &mut Option<super::cache::CacheOutcome>,
) -> Result<(Descriptor, Arc<LoadedPlugin>), PluginLoadError> {
    let engine = &sandbox.engine;
    let path = candidate.path.as_path();
    let owned = || path.to_path_buf();
    let (bytes, digest) =
        candidate
            .contents
            .as_ref()
            .map_err(|reason| PluginLoadError::Unreadable {
                path: owned(),
                reason: reason.clone(),
            })?;
    discovery::check_binary_kind(path, bytes)?;
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (component, outcome) = cache
        .load_or_compile(engine, bytes, digest, &name)
        .map_err(|e| PluginLoadError::Compile {
            path: owned(),
            reason: format!("{e:#}"),
        })?;
    *cache_outcome = Some(outcome);
    let ty = component.component_type();
    let version = discovery::interface_version(path, ty.exports(engine).map(|(n, _)| n))?;
    discovery::check_imports(path, version, ty.imports(engine).map(|(n, _)| n))?;
    let instance_pre = linker
        .instantiate_pre(&component)
        .map_err(|e| PluginLoadError::Link {
            path: owned(),
            reason: format!("{e:#}"),
        })?;
    let pre =
        PluginPre::new(version, instance_pre).map_err(|e| PluginLoadError::MissingExport {
            path: owned(),
            reason: format!("{e:#}"),
        })?;
    let plugin = Arc::new(LoadedPlugin {
        path: owned(),
        name: name.clone(),
        pre,
    });
    let descriptor =
        describe(sandbox, &plugin)
            .await
            .map_err(|reason| PluginLoadError::Describe {
                path: owned(),
                reason,
            })?;
    if descriptor.provider_types.is_empty() {
        return Err(PluginLoadError::NoProviderTypes { path: owned() });
    }
    Ok((descriptor, plugin))
}

/// Calls `describe` in a throw-away instance that has no provider handles.
async fn describe(sandbox: &Sandbox, plugin: &LoadedPlugin) -> Result<Descriptor, String> {
    let logger = Arc::new(PluginLogger::new("-", "load", &plugin.name));
    let call = async {
        let who = InstanceFor {
            handles: None,
            logger,
            deadline: Instant::now() + DESCRIBE_TIMEOUT,
            upstream_clock: None,
            trace: None,
        };
        let mut instance = Instance::create(sandbox, plugin, who).await?;
        instance.describe().await
    };
    let d = match tokio::time::timeout(DESCRIBE_TIMEOUT, call).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err(format!("it did not return within {DESCRIBE_TIMEOUT:?}")),
    };
    Ok(Descriptor {
        name: d.name,
        version: d.version,
        provider_types: d.provider_types,
        outbound_hosts: d.outbound_hosts,
        env_vars: d.env_vars,
        secret_config_keys: d.secret_config_keys,
        interface: plugin.pre.version(),
        native_messages: d.native_operations.contains(NativeOperations::MESSAGES),
        native_count_tokens: d.native_operations.contains(NativeOperations::COUNT_TOKENS),
    })
}
