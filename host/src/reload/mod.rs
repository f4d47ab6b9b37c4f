//! Live changes without dropping a request: the serving state is swapped whole, atomically,
//! while requests in flight finish on the state they started with.
//!
//! **The swap.** What requests see is one [`axum::Router`] built over one [`AppState`] (the
//! registry with its providers, the stores, the Messages config). [`Live`] keeps it behind an
//! [`ArcSwap`]: each request costs one atomic load and one reference count (see `service`);
//! a change builds a complete new router off to the side and stores it in one step. A request
//! (a stream included) holds the providers and plugins it started with until it ends, so
//! nothing in flight is cut or changed under it.
//!
//! **What a change builds** ([`apply`] for a config, [`apply_plugins`] for the plugin files):
//! the providers bound again ([`bind_providers`]: an unchanged provider on an unchanged plugin
//! is carried over with its connections; a new or changed one runs `init`), the models removed
//! or changed by the config unregistered and the config's models registered again, then a new
//! registry with its background listing. The stores (`storage`, SQLite files and PostgreSQL
//! pools, the history's writers) are carried over, never reopened; `storage`, `server`,
//! `plugins` and the Responses API's `providers.responses` take effect only at a restart: a
//! change there is kept out of the running config, logged, and listed in the report.
//!
//! **Failure.** Anything a start-up would refuse (a config that does not load or validate, a
//! provider whose type has no plugin or whose `init` fails, a conflicting model) refuses the
//! change with the same message; the running state keeps serving untouched. One known gap: a
//! model the new config removed or changed is unregistered from the `metadata` store before the
//! new registry opens, so a change refused at that last step leaves the running server serving
//! the model while the store no longer lists it (a restart with the old config registers it
//! again).
//!
//! Changes are applied one at a time (SIGHUP, `POST /v1/admin/reload`, the plugin watcher and
//! any caller of [`apply`] wait for each other). [`watch`] starts the SIGHUP handler and the plugin-directory watcher.

mod plugins_view;
mod providers;
mod service;
pub mod watch;

pub use providers::{PLUGIN_API, bind_providers};

use crate::config::LoadedConfig;
use crate::registry::Registry;
use crate::runtime::{PluginChange, PluginRuntime};
use crate::server::{AppState, Reloader, router};
use crate::storage::registry_store::RegistryStore;
use arc_swap::ArcSwap;
use axum::Router;
use plugins_view::Board;
use std::sync::Arc;
use std::time::Duration;

/// What the server runs now, and what the next change is built from.
pub struct Serving {
    /// The config in force (restart-only sections as they were at start-up).
    pub loaded: LoadedConfig,
    pub runtime: Arc<PluginRuntime>,
    pub state: AppState,
    /// The model registry's store, shared by every registry built.
    pub registry_store: RegistryStore,
}

/// Reads the config again from where the server read it at start-up.
pub type ConfigSource = Box<dyn Fn() -> anyhow::Result<LoadedConfig> + Send + Sync>;

/// The serving state that requests use, and the lock that serializes changes to it.
pub struct Live {
    router: Arc<ArcSwap<Router>>,
    /// Whether the API router serves `GET /metrics` (fixed at start-up).
    metrics_route: bool,
    serving: tokio::sync::Mutex<Serving>,
    board: Arc<Board>,
    source: ConfigSource,
    /// `POST /v1/admin/reload`'s way back to this (a weak reference: the routers it is put in
    /// are owned by this).
    reloader: Reloader,
}

/// Why a change was refused; the running state keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config could not be read, did not validate, or could not be served.
    #[error("config refused, the running config stays: {0:#}")]
    Config(anyhow::Error),
    /// The plugin files as they are now cannot serve the running config.
    #[error("plugin change refused, the running plugins stay: {0:#}")]
    Plugins(anyhow::Error),
}

/// What a change did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// Provider ids bound afresh (new, changed, or on a new plugin).
    pub providers_bound: Vec<String>,
    /// Provider ids carried over untouched.
    pub providers_kept: Vec<String>,
    /// Provider ids no longer served.
    pub providers_removed: Vec<String>,
    /// Model identifiers registered by the new config and not by the old one (or changed).
    pub models_registered: Vec<String>,
    /// Model identifiers the old config registered and the new one removed (or changed).
    pub models_unregistered: Vec<String>,
    /// Plugin files changed (`added`, `replaced`, `removed`, `refused` with the path).
    pub plugins: Vec<String>,
    /// Config sections that changed but take effect only at a restart.
    pub restart_required: Vec<&'static str>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |items: &[String]| {
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.join(", ")
            }
        };
        write!(
            f,
            "providers bound: {}; kept: {}; removed: {}; models registered: {}; unregistered: {}",
            list(&self.providers_bound),
            list(&self.providers_kept),
            list(&self.providers_removed),
            list(&self.models_registered),
            list(&self.models_unregistered),
        )?;
        if !self.plugins.is_empty() {
            write!(f, "; plugins: {}", self.plugins.join(", "))?;
        }
        Ok(())
    }
}

impl Live {
    /// The live state around what start-up built; `source` reads the config again for
    /// [`Live::reload_config`].
    pub fn new(mut serving: Serving, metrics_route: bool, source: ConfigSource) -> Arc<Self> {
        let board = Arc::new(Board::new(
            Arc::clone(&serving.runtime),
            serving.state.registry.providers().to_vec(),
        ));
        serving.state.plugins = Some(board.view());
        Arc::new_cyclic(|live| {
            let reloader = reloader(live.clone());
            serving.state.reloader = Some(reloader.clone());
            let router = Arc::new(ArcSwap::from_pointee(router(
                serving.state.clone(),
                metrics_route,
            )));
            Live {
                router,
                metrics_route,
                serving: tokio::sync::Mutex::new(serving),
                board,
                source,
                reloader,
            }
        })
    }

    /// The router to serve: it hands each request to the state live when the request
    /// arrives.
    pub fn service(&self) -> Router {
        service::router(Arc::clone(&self.router))
    }

    /// Reads the config again and applies it; the outcome is logged.
    pub async fn reload_config(&self) -> Result<ReloadReport, ReloadError> {
        tracing::info!("reloading the config");
        let outcome = match (self.source)() {
            Ok(loaded) => apply(self, loaded).await,
            Err(error) => Err(ReloadError::Config(error)),
        };
        log_outcome("config reload", &outcome);
        outcome
    }

    /// The plugin search path (fixed at start-up).
    pub async fn plugin_search_path(&self) -> Vec<std::path::PathBuf> {
        self.serving.lock().await.runtime.search_path().to_vec()
    }

    /// Swaps in `next`: new requests use it from now on.
    fn swap(&self, serving: &mut Serving, mut next: Serving) {
        next.state.plugins = Some(self.board.view());
        next.state.reloader = Some(self.reloader.clone());
        self.board.serve(
            Arc::clone(&next.runtime),
            next.state.registry.providers().to_vec(),
        );
        self.router
            .store(Arc::new(router(next.state.clone(), self.metrics_route)));
        *serving = next;
    }
}

/// [`Live::reload_config`] for the admin route: the report as JSON, or the refusal's message.
fn reloader(live: std::sync::Weak<Live>) -> Reloader {
    Reloader(Arc::new(move || {
        let live = live.clone();
        Box::pin(async move {
            let live = live
                .upgrade()
                .ok_or_else(|| "the server is shutting down".to_owned())?;
            match live.reload_config().await {
                Ok(report) => serde_json::to_value(report).map_err(|e| e.to_string()),
                Err(refused) => Err(refused.to_string()),
            }
        })
    }))
}

fn log_outcome(what: &str, outcome: &Result<ReloadReport, ReloadError>) {
    match outcome {
        Ok(report) => {
            tracing::info!("{what} applied: {report}");
            for section in &report.restart_required {
                tracing::warn!(
                    "{what}: `{section}` changed; it takes effect at the next restart (the running value stays)"
                );
            }
        }
        Err(error) => tracing::error!("{what}: {error}"),
    }
}

/// Applies `loaded` (a config read and validated as at start-up) to the running server: see
/// the module documentation. On `Err` nothing changed.
pub async fn apply(live: &Live, loaded: LoadedConfig) -> Result<ReloadReport, ReloadError> {
    let mut serving = live.serving.lock().await;
    let runtime = Arc::clone(&serving.runtime);
    let (next, report) = rebuild(&serving, loaded, runtime)
        .await
        .map_err(ReloadError::Config)?;
    live.swap(&mut serving, next);
    Ok(report)
}

/// Loads the plugin files as they are now (compiling new and changed ones off the async
/// threads) and, when a file was added, replaced or removed, rebinds the running config on
/// them. `Ok(None)`: nothing to swap (no change, or only refusals, which are logged and shown
/// by `/v1/inspect/plugins`).
pub async fn apply_plugins(live: &Live) -> Result<Option<ReloadReport>, ReloadError> {
    let mut serving = live.serving.lock().await;
    let current = Arc::clone(&serving.runtime);
    let (runtime, changes) = tokio::task::spawn_blocking(move || current.rescan())
        .await
        .map_err(|e| ReloadError::Plugins(e.into()))?
        .map_err(ReloadError::Plugins)?;
    live.board.record(&changes);
    let swapped: Vec<&PluginChange> = changes
        .iter()
        .filter(|c| !matches!(c, PluginChange::Refused { .. }))
        .collect();
    if swapped.is_empty() {
        return Ok(None);
    }
    let loaded = serving.loaded.clone();
    match rebuild(&serving, loaded, Arc::new(runtime)).await {
        Ok((next, mut report)) => {
            report.plugins = changes.iter().map(plugins_view::describe).collect();
            live.swap(&mut serving, next);
            Ok(Some(report))
        }
        Err(error) => {
            live.board.refuse(&swapped, &format!("{error:#}"));
            Err(ReloadError::Plugins(error))
        }
    }
}

/// The serving state for `loaded` on `runtime`, built beside `serving` (which keeps serving).
async fn rebuild(
    serving: &Serving,
    mut loaded: LoadedConfig,
    runtime: Arc<PluginRuntime>,
) -> anyhow::Result<(Serving, ReloadReport)> {
    let file = loaded.path.display().to_string();
    let mut report = ReloadReport {
        restart_required: keep_restart_only(&serving.loaded, &mut loaded),
        ..ReloadReport::default()
    };
    for warning in &loaded.warnings {
        tracing::warn!("{file}: {warning}");
    }
    let running = serving.state.registry.providers();
    let (providers, infos) = bind_providers(&runtime, &loaded, running).await?;
    for provider in &providers {
        let list = if running.iter().any(|p| Arc::ptr_eq(p, provider)) {
            &mut report.providers_kept
        } else {
            &mut report.providers_bound
        };
        list.push(provider.id().to_owned());
    }
    report.providers_removed = running
        .iter()
        .filter(|p| !providers.iter().any(|n| n.id() == p.id()))
        .map(|p| p.id().to_owned())
        .collect();
    let (old, new) = (&serving.loaded.config.models, &loaded.config.models);
    report.models_unregistered = old
        .iter()
        .filter(|m| !new.contains(m))
        .map(|m| m.identifier())
        .collect();
    report.models_registered = new
        .iter()
        .filter(|m| !old.contains(m))
        .map(|m| m.identifier())
        .collect();
    Registry::forget(&serving.registry_store, &report.models_unregistered)
        .await
        .map_err(|error| anyhow::anyhow!("{file}: {error}"))?;
    let registry = Registry::open(
        providers,
        &loaded.config.models,
        serving.registry_store.clone(),
    )
    .await
    .map_err(|error| anyhow::anyhow!("{file}: {error}"))?;
    let registry = Arc::new(registry);
    // Routing is rebuilt with the registry: its state (breakers, latency, counters) starts
    // afresh for the new providers.
    let routing = Arc::new(crate::routing::Routing::new(
        registry.providers(),
        &loaded.config.routing,
    ));
    registry.serve_routed(routing.listed_models());
    registry.spawn_listing(Duration::from_secs(
        loaded.config.server.registry_refresh_interval_seconds,
    ));
    let state = AppState {
        registry,
        providers: Arc::new(infos),
        messages: loaded.config.messages.clone(),
        routing,
        ..serving.state.clone()
    };
    let next = Serving {
        loaded,
        runtime,
        state,
        registry_store: serving.registry_store.clone(),
    };
    Ok((next, report))
}

/// Puts the running values of the sections that take effect only at a restart into `next`,
/// and names those that differed.
fn keep_restart_only(running: &LoadedConfig, next: &mut LoadedConfig) -> Vec<&'static str> {
    let (old, new) = (&running.config, &mut next.config);
    let mut changed = Vec::new();
    if old.storage != new.storage {
        changed.push("storage");
        new.storage = old.storage.clone();
    }
    if old.server != new.server {
        changed.push("server");
        new.server = old.server.clone();
    }
    if old.plugins != new.plugins {
        changed.push("plugins");
        new.plugins = old.plugins.clone();
    }
    if old.responses != new.responses {
        changed.push("providers.responses");
        new.responses = old.responses.clone();
    }
    changed
}

#[cfg(test)]
mod tests;
