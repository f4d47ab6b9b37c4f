//! `ogx run`: load the config, load the plugins, bind every provider to its plugin, check each
//! provider's config with its plugin, then serve. Prints what it loaded, each provider's status
//! and where it listens. Any provider that cannot be served stops start-up with a message that
//! names the config file, the provider id and the fix.
//!
//! The stores (`storage.stores`: the registry, the prompts, the plugins' kv data and the
//! chat-completion history) are opened on their backends before the plugins load; a database
//! that cannot be opened or reached stops start-up naming the config key. On SIGINT or SIGTERM
//! the server stops accepting, lets requests in flight (streams included) finish, then drains
//! the history's write queue before exiting, and says how many completions could not be
//! written, if any. While it serves, SIGHUP reloads the config and the plugin directories are
//! watched (see `reload`).

use super::RunArgs;
use crate::auth::config as auth_config;
use crate::auth::middleware::ServerSecurity;
use crate::config::distributions::ConfigSource;
use crate::config::gateway_keys::BOOTSTRAP_ADMIN_KEY_ENV;
use crate::config::storage::{InferenceStoreRef, PROMPTS_TABLE, StoreRef};
use crate::config::{self, LoadedConfig};
use crate::environment::Environment;
use crate::gateway_keys::GatewayKeys;
use crate::quota::QuotaGuard;
use crate::registry::Registry;
use crate::reload::{self, bind_providers};
use crate::runtime::Provider;
use crate::server::cors::Cors;
use crate::server::listen::{self, TlsFiles};
use crate::server::{AppState, metrics_router};
use crate::serving_threads;
use crate::storage::backends::StorageBackends;
use crate::storage::inference_store::{self, InferenceStore, SqlTable, TableError};
use crate::storage::kv::KvStore;
use crate::storage::prompts::PromptStore;
use crate::storage::prompts_table::PromptTable;
use crate::storage::registry_store::RegistryStore;
use crate::storage::responses_store::{ResponsesStore, SqlResponseTable};
use crate::storage::sql::SqlDatabase;
use anyhow::{Context, bail};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    // Before any outbound client is built: each has a pool per serving thread.
    let env = Environment::process();
    let serving_threads = serving_threads::configure(env.lookup())?;
    let loaded = load_config(&args, &env)?;
    let telemetry = telemetry_settings(&loaded, &env)?;
    let traces =
        crate::telemetry::export::TraceSettings::from_env(&loaded.config.server.tracing, &env)
            .map_err(|error| anyhow::anyhow!(error))?;
    let watch_interval = reload::watch::plugins_watch_interval(&env.lookup())?;
    if args.enable_ui {
        tracing::warn!("--enable-ui is ignored: ogx has no web UI");
    }
    if args.dry_run {
        return dry_run(&args, &loaded).await;
    }
    println!(
        "ogx {} — config {} (distro {})",
        env!("CARGO_PKG_VERSION"),
        loaded.path.display(),
        loaded.config.distro_name
    );
    for warning in &loaded.warnings {
        tracing::warn!("{}: {warning}", loaded.path.display());
    }

    let mut backends = StorageBackends::new(&loaded.config.storage);
    let stores = open_host_stores(&loaded, &mut backends).await?;
    let inference_store = open_inference_store(&loaded, &mut backends)
        .await?
        .map(Arc::new);
    let responses = open_responses_store(&loaded, &mut backends)
        .await?
        .map(Arc::new);

    let security = server_security(&loaded)?;
    let (cors, quota) = cors_and_quota(&loaded, &mut backends).await?;
    let gateway_keys = open_gateway_keys(&loaded, &mut backends, &env).await?;

    let runtime =
        super::plugins::start_runtime(&args.plugins_dirs, Some(&loaded), Some(stores.plugin_kv))
            .await?;
    super::plugins::print_catalog(&runtime);

    let (providers, infos) = bind_providers(&runtime, &loaded, &[]).await?;
    println!(
        "Stack Configuration:\n{}",
        indent(&config::redact::to_yaml_string(&redacted_document(
            &loaded, &providers
        )))
    );

    let registry = Arc::new(
        Registry::open(providers, &loaded.config.models, stores.registry.clone())
            .await
            .map_err(|error| anyhow::anyhow!("{}: {error}", loaded.path.display()))?,
    );
    let routing = Arc::new(crate::routing::Routing::new(
        registry.providers(),
        &loaded.config.routing,
    ));
    registry.serve_routed(routing.listed_models());
    print_models(&registry);
    registry.spawn_listing(refresh_interval(&loaded));

    let address = listen_address(&args, &loaded)?;
    let listener = match listen::bind(address).await {
        // Without an explicit host, fall back to IPv4 on machines without IPv6.
        Err(_) if address.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) => {
            listen::bind(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                address.port(),
            ))
            .await?
        }
        bound => bound?,
    };
    let tls = tls_files(&loaded);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let threads = match tls {
        None => format!("{serving_threads} serving thread(s)"),
        Some(_) => "the shared runtime".to_owned(),
    };
    println!(
        "Listening on {scheme}://{} ({threads})",
        listener.local_addr().unwrap_or(address)
    );
    let state = AppState {
        registry,
        providers: Arc::new(infos),
        prompts: Arc::new(stores.prompts),
        inference_store: inference_store.clone(),
        responses,
        messages: loaded.config.messages.clone(),
        security: Arc::new(security),
        cors,
        quota,
        gateway_keys,
        routing,
        plugins: None,
        reloader: None,
    };
    if let Some(port) = telemetry.metrics_port {
        let address = SocketAddr::new(address.ip(), port);
        let metrics_listener = listen::bind(address).await?;
        println!("Metrics on http://{address}/metrics");
        let metrics = axum::serve(metrics_listener, metrics_router(state.clone()))
            .with_graceful_shutdown(listen::shutdown_signal());
        tokio::spawn(async move {
            if let Err(error) = metrics.await {
                tracing::error!("the metrics port stopped: {error}");
            }
        });
    }
    let serving = reload::Serving {
        loaded,
        runtime: Arc::new(runtime),
        state,
        registry_store: stores.registry,
    };
    let live = reload::Live::new(
        serving,
        telemetry.metrics_on_api_port(),
        Box::new(move || load_config(&args, &env)),
    );
    reload::watch::reload_on_sighup(&live)?;
    if let Some(interval) = watch_interval {
        reload::watch::watch_plugins(&live, interval);
    }
    let trace_export = traces
        .map(crate::telemetry::export::start)
        .transpose()
        .map_err(|error| anyhow::anyhow!(error))?;
    let served = listen::serve(listener, live.service(), tls).await;
    if let Some(export) = trace_export {
        // The last requests' spans were queued when their answers finished.
        export.shutdown().await;
    }
    let Some(inference_store) = inference_store else {
        return served;
    };
    println!("Shutting down: writing the queued chat completions…");
    let report = inference_store.shutdown().await;
    println!(
        "Chat-completion history: {} completion(s) written since start-up",
        report.written
    );
    if report.lost > 0 {
        eprintln!(
            "Chat-completion history: {} accepted completion(s) could not be written before exit (the log lists their ids): the database refused them",
            report.lost
        );
    }
    served
}

/// The config `ogx run` names: a file or a shipped distribution
/// ([`config::distributions::resolve`]).
fn load_config(args: &RunArgs, env: &Environment) -> anyhow::Result<LoadedConfig> {
    let lookup = env.lookup();
    if let Some(spec) = &args.providers {
        bail!(
            "--providers {spec:?}: ogx does not build a stack from a provider list; write a run config with those providers (or start from a shipped one, e.g. `ogx run starter --dry-run` prints it) and pass its path"
        );
    }
    let Some(arg) = &args.config else {
        bail!(
            "no run config given: pass the path of a run config or the name of a distribution shipped with ogx, e.g. `ogx run starter` ({})",
            config::distributions::shipped_names().join(", ")
        );
    };
    let source = config::distributions::resolve(arg, &lookup, &|p: &Path| p.is_file())
        .map_err(|e| anyhow::anyhow!(e))?;
    match source {
        ConfigSource::File(path) => config::load(&path, &lookup),
        ConfigSource::Shipped { path, text } => config::parse(text, &path, &lookup),
    }
    .map_err(anyhow::Error::new)
}

/// `--dry-run`: the plugins and every provider's config are checked, the config is printed
/// with secrets hidden, and nothing is opened or served.
async fn dry_run(args: &RunArgs, loaded: &LoadedConfig) -> anyhow::Result<()> {
    for warning in &loaded.warnings {
        tracing::warn!("{}: {warning}", loaded.path.display());
    }
    server_security(loaded)?;
    let runtime = super::plugins::start_runtime(&args.plugins_dirs, Some(loaded), None).await?;
    let (providers, _) = bind_providers(&runtime, loaded, &[]).await?;
    println!(
        "{}",
        config::redact::to_yaml_string(&redacted_document(loaded, &providers))
    );
    println!(
        "Config {} is valid ({} served inference provider(s)); --dry-run: not serving.",
        loaded.path.display(),
        providers.len()
    );
    Ok(())
}

/// `server.auth` and `server.tenancy`, typed and ready; a key that cannot be used stops
/// start-up naming it.
fn server_security(loaded: &LoadedConfig) -> anyhow::Result<ServerSecurity> {
    let server = &loaded.config.server;
    let invalid = |invalid| anyhow::Error::new(config::ConfigError::invalid(&loaded.path, invalid));
    let mut warnings = Vec::new();
    let auth = auth_config::parse_auth(server.auth.as_ref(), server.insecure, &mut warnings)
        .map_err(invalid)?;
    let tenancy = auth_config::parse_tenancy(server.tenancy.as_ref(), &auth).map_err(invalid)?;
    for warning in warnings {
        tracing::warn!("{}: {warning}", loaded.path.display());
    }
    if let Some(provider) = &auth.provider {
        println!(
            "Authentication: {} (server.auth.provider_config)",
            provider.type_name()
        );
    }
    ServerSecurity::new(auth, tenancy).map_err(|error| {
        anyhow::anyhow!(
            "{}: server.auth.provider_config: {error}",
            loaded.path.display()
        )
    })
}

/// `server.cors` and `server.quota` (its counters opened on their kv backend).
async fn cors_and_quota(
    loaded: &LoadedConfig,
    backends: &mut StorageBackends<'_>,
) -> anyhow::Result<(Option<Arc<Cors>>, Option<Arc<QuotaGuard>>)> {
    let file = loaded.path.display();
    let server = &loaded.config.server;
    let cors = server
        .cors
        .as_ref()
        .map(|c| Cors::new(c).map(Arc::new))
        .transpose()
        .map_err(|error| anyhow::anyhow!("{file}: {error}"))?;
    let Some(quota) = &server.quota else {
        return Ok((cors, None));
    };
    let kv = backends
        .kv(&quota.kvstore.backend)
        .await
        .map_err(|error| anyhow::anyhow!("{file}: server.quota.kvstore: {error}"))?;
    let (db, table) = (kv.db, kv.host_table);
    let store = tokio::task::spawn_blocking(move || KvStore::on(db, &table))
        .await?
        .map_err(|error| anyhow::anyhow!("{file}: server.quota.kvstore: {error}"))?;
    let counters = Arc::new(store).namespace(quota.kvstore.namespace.clone());
    println!(
        "Quota: {} requests per day per principal, {} per client address (server.quota)",
        quota.authenticated_max_requests, quota.anonymous_max_requests
    );
    Ok((cors, Some(Arc::new(QuotaGuard::new(quota, counters)))))
}

/// Opens `storage.stores.inference` on its backend and starts its writers; `None` when the
/// config says `enabled: false`.
async fn open_inference_store(
    loaded: &LoadedConfig,
    backends: &mut StorageBackends<'_>,
) -> anyhow::Result<Option<InferenceStore>> {
    let file = loaded.path.display();
    let storage = &loaded.config.storage;
    let Some(store) = &storage.stores.inference else {
        bail!(
            "{file}: storage.stores.inference must be configured when the inference API is served. Add `inference: {{backend: sql_default, table_name: inference_store}}` under storage.stores."
        );
    };
    if !store.enabled {
        println!(
            "Chat-completion history: off (storage.stores.inference.enabled: false); nothing is recorded and its routes answer 501"
        );
        return Ok(None);
    }
    let name = &store.backend;
    let table = open_table(
        loaded,
        backends,
        "storage.stores.inference",
        store,
        SqlTable::on,
    )
    .await?;
    let queue = usize::try_from(store.max_write_queue_size).unwrap_or(usize::MAX);
    let writers = usize::try_from(store.num_writers).unwrap_or(usize::MAX);
    let linger = history_write_linger(&Environment::process().lookup())?;
    println!(
        "Chat-completion history: table {} on backend {name} ({} writer(s))",
        store.table_name,
        InferenceStore::writer_count(&table, writers)
    );
    Ok(Some(InferenceStore::start(
        Arc::new(table),
        queue,
        writers,
        linger,
    )))
}

/// Opens the table of the store configured at `key` (`store`) on its SQL backend with `open`
/// (on a blocking thread); errors name the config file, the key, the table and the backend.
async fn open_table<T: Send + 'static>(
    loaded: &LoadedConfig,
    backends: &mut StorageBackends<'_>,
    key: &str,
    store: &InferenceStoreRef,
    open: fn(Arc<SqlDatabase>, &str) -> Result<T, TableError>,
) -> anyhow::Result<T> {
    let file = loaded.path.display();
    let name = &store.backend;
    let db = backends
        .sql(name)
        .await
        .map_err(|e| anyhow::anyhow!("{file}: {key}: {e}"))?;
    let table_name = store.table_name.clone();
    tokio::task::spawn_blocking(move || open(db, &table_name))
        .await?
        .map_err(|error| match error {
            TableError::BadName(_) => anyhow::anyhow!("{file}: {key}.table_name: {error}"),
            other => anyhow::anyhow!(
                "{file}: {key} (table {} on backend {name}): {other}",
                store.table_name
            ),
        })
}

/// Overrides [`inference_store::DEFAULT_WRITE_LINGER`], in milliseconds (0: commit at once).
pub const HISTORY_WRITE_LINGER_ENV: &str = "OGX_HISTORY_WRITE_LINGER_MS";

/// The history writers' linger: the default, or `$OGX_HISTORY_WRITE_LINGER_MS` (looked up with
/// `lookup`).
fn history_write_linger(lookup: config::env::Lookup<'_>) -> anyhow::Result<Duration> {
    let millis = config::env::whole_number(
        lookup,
        HISTORY_WRITE_LINGER_ENV,
        "unset it or give milliseconds, e.g. 10 (0 commits each completion at once)",
    )?;
    Ok(millis.map_or(inference_store::DEFAULT_WRITE_LINGER, Duration::from_millis))
}

/// Opens the Responses API's store, when `providers.responses` enables the API, on its
/// `persistence.responses` backend.
async fn open_responses_store(
    loaded: &LoadedConfig,
    backends: &mut StorageBackends<'_>,
) -> anyhow::Result<Option<ResponsesStore>> {
    let Some(responses) = &loaded.config.responses else {
        return Ok(None);
    };
    let key = "providers.responses[0].config.persistence.responses";
    let store = &responses.store;
    let table = open_table(loaded, backends, key, store, SqlResponseTable::on).await?;
    println!(
        "Responses API: provider {} ({}), table {} on backend {}",
        responses.provider_id,
        crate::config::responses::BUILTIN_PROVIDER_TYPE,
        store.table_name,
        store.backend,
    );
    Ok(Some(ResponsesStore::new(Arc::new(table))))
}

/// The host's own stores, and the plugins' kv store, on their `storage.stores` backends.
struct HostStores {
    registry: RegistryStore,
    prompts: PromptStore,
    plugin_kv: Arc<KvStore>,
}

/// Opens `storage.stores.metadata` (the model registry, and the plugins' kv data in its
/// backend's plugin table) and `storage.stores.prompts`. Two stores on one backend share its
/// table, each under its own namespace.
async fn open_host_stores(
    loaded: &LoadedConfig,
    backends: &mut StorageBackends<'_>,
) -> anyhow::Result<HostStores> {
    let file = loaded.path.display();
    let storage = &loaded.config.storage;
    let metadata = storage.stores.metadata.as_ref().with_context(|| {
        format!("{file}: storage.stores.metadata must be configured with a kv_* backend")
    })?;
    let prompts = storage.stores.prompts.as_ref().with_context(|| {
        format!("{file}: storage.stores.prompts must be configured: the Prompts API keeps its prompts there. Add `prompts: {{backend: sql_default, table_name: prompts}}` under storage.stores.")
    })?;
    let mut open = async |store: &str, backend: &str, table: Option<&'static str>| {
        let kv = backends
            .kv(backend)
            .await
            .map_err(|e| anyhow::anyhow!("{file}: storage.stores.{store}: {e}"))?;
        let table = table.map_or(kv.host_table, str::to_string);
        let db = kv.db;
        tokio::task::spawn_blocking(move || KvStore::on(db, &table))
            .await?
            .map(Arc::new)
            .map_err(|e| anyhow::anyhow!("{file}: storage.stores.{store} (backend {backend}): {e}"))
    };
    let metadata_store = open("metadata", &metadata.backend, None).await?;
    let plugin_kv = open(
        "metadata",
        &metadata.backend,
        Some(crate::storage::kv::PLUGIN_TABLE),
    )
    .await?;
    let prompts = match prompts {
        StoreRef::Kv(kv) => {
            let store = if kv.backend == metadata.backend {
                Arc::clone(&metadata_store)
            } else {
                open("prompts", &kv.backend, None).await?
            };
            PromptStore::new(store.namespace(kv.namespace.clone()))
        }
        StoreRef::Sql(sql) => {
            let db = backends
                .sql(&sql.backend)
                .await
                .map_err(|e| anyhow::anyhow!("{file}: storage.stores.prompts: {e}"))?;
            let table = tokio::task::spawn_blocking(move || PromptTable::on(db, PROMPTS_TABLE))
                .await?
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{file}: storage.stores.prompts (table {PROMPTS_TABLE} on backend {}): {e}",
                        sql.backend
                    )
                })?;
            PromptStore::in_table(table)
        }
    };
    Ok(HostStores {
        registry: RegistryStore::new(metadata_store.namespace(metadata.namespace.clone())),
        prompts,
        plugin_kv,
    })
}

/// The config document as printed at start-up: secrets, including the config keys the
/// plugins declare secret, replaced by `********`.
fn redacted_document(loaded: &LoadedConfig, providers: &[Arc<Provider>]) -> serde_json::Value {
    let secret_keys: Vec<String> = providers
        .iter()
        .flat_map(|provider| provider.descriptor().secret_config_keys.iter().cloned())
        .collect();
    config::redact::redact_with(&loaded.document, &secret_keys)
}

fn print_models(registry: &Registry) {
    let models = registry.models();
    println!(
        "Models ({} registered; providers' own lists are added as they answer):",
        models.len()
    );
    for model in models {
        println!(
            "  {} → {} (upstream id {}, {})",
            model.identifier, model.provider_id, model.provider_resource_id, model.model_type
        );
    }
}

fn refresh_interval(loaded: &LoadedConfig) -> Duration {
    Duration::from_secs(loaded.config.server.registry_refresh_interval_seconds)
}

/// The gateway keys' store, when the config has a `gateway_keys:` section; the bootstrap admin
/// key is `$OGX_GATEWAY_ADMIN_KEY`.
async fn open_gateway_keys(
    loaded: &LoadedConfig,
    backends: &mut StorageBackends<'_>,
    env: &Environment,
) -> anyhow::Result<Option<Arc<GatewayKeys>>> {
    let Some(config) = loaded.config.gateway_keys.clone() else {
        return Ok(None);
    };
    let store = backends
        .gateway_store(&config.backend)
        .await
        .map_err(|error| {
            anyhow::anyhow!("{}: gateway_keys.store: {error}", loaded.path.display())
        })?;
    let bootstrap = env.get(BOOTSTRAP_ADMIN_KEY_ENV);
    println!(
        "Gateway keys: stored on backend '{}'{}{}",
        config.backend,
        if config.required {
            ", required on every request"
        } else {
            ""
        },
        if bootstrap.is_some() {
            ", bootstrap admin key set"
        } else {
            ""
        }
    );
    let keys = GatewayKeys::new(config, store, bootstrap);
    keys.seed_declared_keys()
        .await
        .map_err(|error| anyhow::anyhow!("{}: {error}", loaded.path.display()))?;
    Ok(Some(Arc::new(keys)))
}

/// `--port`, else `$OGX_PORT`, else `server.port`, else 8321; `--host`, else `server.host`,
/// else every interface.
fn listen_address(args: &RunArgs, loaded: &LoadedConfig) -> anyhow::Result<SocketAddr> {
    let port = match (args.port, Environment::process().get("OGX_PORT")) {
        (Some(port), _) => port,
        (None, Some(text)) => text
            .parse()
            .map_err(|_| anyhow::anyhow!("OGX_PORT={text:?} is not a port number (1-65535)"))?,
        (None, None) => loaded.config.server.port,
    };
    let host = args
        .host
        .clone()
        .or_else(|| loaded.config.server.host.clone());
    let ip = match host.as_deref() {
        None | Some("") | Some("::") => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        Some("0.0.0.0") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(text) => text
            .parse()
            .map_err(|_| anyhow::anyhow!("--host / server.host {text:?} is not an IP address"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

fn tls_files(loaded: &LoadedConfig) -> Option<TlsFiles> {
    let server = &loaded.config.server;
    Some(TlsFiles {
        certfile: server.tls_certfile.clone()?,
        keyfile: server.tls_keyfile.clone()?,
        cafile: server.tls_cafile.clone(),
    })
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

/// Metrics and where they are served (`server.metrics`, `OGX_METRICS`, `OGX_METRICS_PORT`);
/// turns them on for the process when asked.
fn telemetry_settings(
    loaded: &LoadedConfig,
    env: &Environment,
) -> anyhow::Result<crate::telemetry::Settings> {
    let settings = crate::telemetry::Settings::from_env(&loaded.config.server.metrics, env)
        .map_err(|error| anyhow::anyhow!(error))?;
    if settings.metrics {
        crate::telemetry::metrics::install();
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_linger_comes_from_the_environment_or_the_default() {
        let linger = |value: Option<&'static str>| {
            history_write_linger(&move |name| {
                assert_eq!(name, HISTORY_WRITE_LINGER_ENV);
                value.map(str::to_owned)
            })
        };
        assert_eq!(linger(None).unwrap(), inference_store::DEFAULT_WRITE_LINGER);
        assert_eq!(
            linger(Some(" ")).unwrap(),
            inference_store::DEFAULT_WRITE_LINGER
        );
        assert_eq!(linger(Some("0")).unwrap(), Duration::ZERO);
        assert_eq!(linger(Some("25")).unwrap(), Duration::from_millis(25));
        let error = linger(Some("10ms")).unwrap_err().to_string();
        assert!(
            error.contains("OGX_HISTORY_WRITE_LINGER_MS=\"10ms\""),
            "{error}"
        );
    }
}
