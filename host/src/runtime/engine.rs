//! The wasmtime engine shared by all plugins: pooling allocator, epoch interruption with a
//! ticker, and the linker with the host imports.
//!
//! Engine: component model on, CM-async off (the WIT is P2-style; calls are cheaper), epoch
//! interruption, copy-on-write memory images, cranelift `Speed`, and the pooling allocator
//! sized from [`RuntimeLimits`]. If the pooling reservation fails (small address space,
//! `ulimit -v`), the engine falls back to on-demand allocation and logs why: slower
//! instantiation, same limits.
//!
//! Linker: the four `ogx:provider` imports, and from WASI only `cli`, `clocks`, `random`, `io`
//! and `filesystem` (with no preopens). `wasi:sockets` and `wasi:http` are deliberately not
//! linked, so a plugin that imports them fails at load (see `discovery`), not at run time.
//!
//! The epoch ticker is one OS thread (`ogx-epoch-ticker`) holding a weak engine reference;
//! it stops by itself once the engine is gone.

use super::bindings::{Plugin, PluginPre};
use super::cache::ComponentCache;
use super::discovery::{self, Candidate, PluginCatalog, PluginEntry, PluginLoadError};
use super::instance::{HostState, Instance, InstanceFor, LoadedPlugin, ProviderHandles, Sandbox};
use super::limits::EPOCH_TICK_MS;
use super::{Descriptor, Provider, RuntimeLimits};
use crate::config::network::{NetworkSettings, TlsVerify};
use crate::imports::aws::{AwsEnv, AwsIdentity, AwsSigner, endpoint_override_hosts};
use crate::imports::config::EnvView;
use crate::imports::http::{ClientOptions, EgressPolicy, OutboundClient};
use crate::imports::kv::KvStore;
use crate::imports::logging::PluginLogger;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{HasData, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

/// Core instances one plugin component may need (its module plus the WASI adapter's shims).
pub const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Linear memories one plugin component may need (its own plus the WASI adapter's).
pub const MEMORIES_PER_COMPONENT: u32 = 2;
/// Tables one plugin component may need.
pub const TABLES_PER_COMPONENT: u32 = 8;
/// Table memory of a finished instance kept resident and reset in place (tables are small;
/// see `limits::DEFAULT_KEEP_RESIDENT_KB` for why resetting in place pays).
pub const TABLE_KEEP_RESIDENT_MAX_BYTES: usize = 64 * 1024;
/// Slot decommits the pooling allocator gathers into one batch of `madvise` calls, so the
/// pages that are still returned cost one TLB shoot-down per batch, not one per instance.
pub const DECOMMIT_BATCH_SIZE: usize = 16;
/// Plugins loaded at once at start-up, each on its own thread (compilation of one plugin is
/// itself parallel; this bounds the threads and the memory of many plugins compiling at once).
pub const MAX_PARALLEL_PLUGIN_LOADS: usize = 8;
/// Time allowed for `describe` at load time.
pub const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Looks up an environment variable (the process environment by default; tests inject
/// their own).
#[derive(Clone)]
pub struct EnvLookup(Arc<EnvFn>);

type EnvFn = dyn Fn(&str) -> Option<String> + Send + Sync;

impl EnvLookup {
    /// The process environment.
    pub fn process() -> Self {
        EnvLookup(Arc::new(|name| std::env::var(name).ok()))
    }
    /// A fixed set of variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let map: HashMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        EnvLookup(Arc::new(move |name| map.get(name).cloned()))
    }
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl std::fmt::Debug for EnvLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvLookup(..)")
    }
}

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
    /// What plugins see through the `config` import (only the names they declare).
    pub env: EnvLookup,
}

impl RuntimeOptions {
    /// Defaults around `search_path`: the default cache directory, default limits, the
    /// process environment, no kv file.
    pub fn new(search_path: Vec<PathBuf>) -> Self {
        let env = EnvLookup::process();
        RuntimeOptions {
            search_path,
            cache_dir: super::cache::default_cache_dir(|n| env.get(n)),
            limits: RuntimeLimits::default(),
            kv: None,
            env,
        }
    }
}

/// The engine, its linker and the plugins found.
pub struct PluginRuntime {
    sandbox: Arc<Sandbox>,
    catalog: PluginCatalog,
    /// Loaded plugins, by provider type.
    plugins: HashMap<String, Arc<LoadedPlugin>>,
    kv: Arc<KvStore>,
    env: EnvLookup,
}

impl PluginRuntime {
    /// Builds the engine and loads every plugin on the search path. Plugins that fail to load
    /// are kept in the catalog with their error; only a broken engine is an `Err`.
    pub fn start(options: RuntimeOptions) -> anyhow::Result<Self> {
        let engine = build_engine(&options.limits)?;
        start_epoch_ticker(&engine);
        let linker = build_linker(&engine)
            .map_err(|e| anyhow::anyhow!("could not link the host imports: {e}"))?;
        let sandbox = Arc::new(Sandbox {
            engine,
            limits: options.limits.clone(),
            slots: Arc::new(tokio::sync::Semaphore::new(
                options.limits.max_instances as usize,
            )),
        });
        let kv =
            match &options.kv {
                Some(kv) => Arc::clone(kv),
                None => Arc::new(KvStore::open(None).map_err(|e| {
                    anyhow::anyhow!("could not open the plugin key-value store: {e}")
                })?),
            };
        let cache = ComponentCache::new(options.cache_dir.clone());
        let files = discovery::candidate_files(&options.search_path);
        let loaded = load_in_parallel(&sandbox, &linker, &cache, files)?;
        let mut entries = Vec::new();
        let mut pres = Vec::new();
        for (entry, pre) in loaded {
            entries.push(entry);
            pres.push(pre);
        }
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
        Ok(PluginRuntime {
            sandbox,
            catalog: PluginCatalog { entries },
            plugins,
            kv,
            env: options.env,
        })
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
        let setup_error = |reason: String| PluginLoadError::Setup {
            provider_id: provider_id.into(),
            path: plugin.path.clone(),
            reason,
        };
        let mut outbound_hosts = descriptor.outbound_hosts.clone();
        outbound_hosts.extend(endpoint_override_hosts(
            &descriptor.env_vars,
            &AwsEnv::process(),
        ));
        let policy =
            EgressPolicy::new(&outbound_hosts, false).map_err(|e| setup_error(e.to_string()))?;
        let lookup = self.env.clone();
        // The provider's AWS settings (static keys, role, profile) stay in the host; the
        // plugin only asks for `aws-sigv4` signing.
        let identity = AwsIdentity::from_provider_config(config, AwsEnv::process())
            .map_err(|e| setup_error(e.to_string()))?;
        let mut options = ClientOptions {
            extra_ca_files: ClientOptions::ca_files_from_env(&|name| lookup.get(name)),
            signer: Some(Arc::new(AwsSigner::new(identity))),
            default_headers: network.headers.clone(),
            ..ClientOptions::default()
        };
        if let Some(connect) = network.connect_timeout {
            options.connect_timeout = connect;
        }
        if let Some(total) = network.total_timeout {
            options.default_timeout = total;
        }
        match &network.verify {
            TlsVerify::System => {}
            TlsVerify::Off => options.accept_invalid_certs = true,
            TlsVerify::CaFile(file) => options.extra_ca_files.push(file.clone()),
        }
        let http = OutboundClient::new(policy, options).map_err(|e| setup_error(e.to_string()))?;
        let handles = ProviderHandles {
            http,
            env: EnvView::new(
                descriptor.env_vars.iter(),
                Arc::new(move |name: &str| lookup.get(name)),
            ),
            kv: self.kv.namespace(provider_id),
        };
        Ok(Arc::new(Provider::new(
            self.sandbox.clone(),
            plugin.clone(),
            descriptor.clone(),
            provider_id,
            provider_type,
            config.clone(),
            Arc::new(handles),
        )))
    }
}

/// Loads every candidate, up to [`MAX_PARALLEL_PLUGIN_LOADS`] at a time, each on its own
/// scoped thread with a current-thread tokio runtime (so start-up works both inside and
/// outside a tokio runtime): compiling or deserializing one plugin and calling its `describe`
/// does not wait for the others. Results keep the order of `files`.
fn load_in_parallel(
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
    discovery::check_exports(path, ty.exports(engine).map(|(n, _)| n))?;
    discovery::check_imports(path, ty.imports(engine).map(|(n, _)| n))?;
    let instance_pre = linker
        .instantiate_pre(&component)
        .map_err(|e| PluginLoadError::Link {
            path: owned(),
            reason: format!("{e:#}"),
        })?;
    let pre = PluginPre::new(instance_pre).map_err(|e| PluginLoadError::MissingExport {
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
    })
}

/// The engine configuration shared by the pooling and on-demand variants.
fn base_config() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .concurrency_support(false)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .cranelift_opt_level(OptLevel::Speed);
    config
}

/// The engine: pooling if the reservation succeeds, on-demand otherwise.
fn build_engine(limits: &RuntimeLimits) -> anyhow::Result<Engine> {
    let n = limits.max_instances;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(n)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memory_size(limits.memory_bytes)
        .linear_memory_keep_resident(limits.keep_resident_bytes)
        .table_keep_resident(
            limits
                .keep_resident_bytes
                .min(TABLE_KEEP_RESIDENT_MAX_BYTES),
        )
        .pagemap_scan(wasmtime::Enabled::Auto)
        .decommit_batch_size(DECOMMIT_BATCH_SIZE);
    let mut pooled = base_config();
    pooled.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&pooled) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            tracing::warn!(
                "the pooling allocator could not reserve memory for {n} instances ({e}); \
                 falling back to on-demand allocation (slower instantiation). \
                 Lower plugins.limits.max_instances or raise the address-space limit to fix it"
            );
            Engine::new(&base_config())
                .map_err(|e| anyhow::anyhow!("could not create the WebAssembly engine: {e}"))
        }
    }
}

/// Starts the thread that advances the engine's epoch every `EPOCH_TICK_MS`.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("ogx-epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(Duration::from_millis(EPOCH_TICK_MS));
            }
        });
    if let Err(e) = spawned {
        tracing::error!("could not start the epoch ticker; CPU budgets will not be enforced: {e}");
    }
}

/// `HasData` for the `wasi:io` bindings, which work on the resource table alone.
struct WasiIo;

impl HasData for WasiIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// The linker: the `ogx:provider` imports and the allowed subset of WASI p2.
pub(crate) fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random};
    use wasmtime_wasi::{
        WasiView, cli::WasiCli, clocks::WasiClocks, filesystem::WasiFilesystem, random::WasiRandom,
    };
    type T = HostState;
    let mut linker: Linker<T> = Linker::new(engine);
    let l = &mut linker;
    io::error::add_to_linker::<T, WasiIo>(l, |t| t.ctx().table)?;
    io::poll::add_to_linker::<T, WasiIo>(l, |t| t.ctx().table)?;
    io::streams::add_to_linker::<T, WasiIo>(l, |t| t.ctx().table)?;
    clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, |t| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(t)
    })?;
    clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, |t| {
        wasmtime_wasi::clocks::WasiClocksView::clocks(t)
    })?;
    filesystem::types::add_to_linker::<T, WasiFilesystem>(l, |t| {
        wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(t)
    })?;
    filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, |t| {
        wasmtime_wasi::filesystem::WasiFilesystemView::filesystem(t)
    })?;
    random::random::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.ctx().ctx.random())?;
    cli::exit::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::environment::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::stdin::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::stdout::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::stderr::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_input::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_output::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, cli_view)?;
    cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, cli_view)?;
    fn cli_view(t: &mut T) -> wasmtime_wasi::cli::WasiCliCtxView<'_> {
        wasmtime_wasi::cli::WasiCliView::cli(t)
    }
    Plugin::add_to_linker::<T, HasSelf<T>>(l, |t| t)?;
    Ok(linker)
}
