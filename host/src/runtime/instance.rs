//! One plugin instance serving one call: a semaphore permit (a pooling-allocator slot), a
//! fresh `Store<HostState>` with a memory limit (the provider's from `plugins.policy`, else
//! the runtime's) and a CPU budget, instantiation from the
//! plugin's pre-instantiated `PluginPre`, `init`, then the operation, each a typed method
//! (the version a plugin was built against is `bindings`' concern).
//!
//! Per-request data (the request id, the caller's `provider-data`) lives only in this store
//! and dies with it. Nothing here applies the wall-clock timeout: callers wrap the whole
//! life of an [`Instance`] in `tokio::time::timeout` and drop it when that fires, which is
//! the only safe way to abandon a guest call.
//!
//! Failure mapping: a WIT `provider-error` becomes [`ProviderError`]; any wasmtime error (a
//! trap, a memory-limit trap, the CPU budget, an import's host failure) becomes
//! [`CallError::Trap`], logged here at error level with its backtrace.

use super::bindings::latest::exports::ogx::provider::provider as wit;
use super::bindings::latest::ogx::provider::types as wit_types;
use super::bindings::{Bindings, BodyOperation, ChunkStreamOperation, PluginPre};
use super::host_imports::LogSink;
use super::{CallContext, CallError, ProviderError, RuntimeLimits};
use crate::imports::config::EnvView;
use crate::imports::http::{OutboundClient, UpstreamClock};
use crate::imports::kv::KvNamespace;
use crate::imports::logging::{OutputStream, PluginLogger};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{ResourceAny, ResourceTable};
use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// What every call needs from the runtime: the engine, the limits and the slot semaphore.
pub(crate) struct Sandbox {
    pub engine: Engine,
    pub limits: RuntimeLimits,
    pub slots: Arc<Semaphore>,
}

/// A plugin that passed every load stage, ready to be instantiated.
pub(crate) struct LoadedPlugin {
    pub path: std::path::PathBuf,
    /// The file name, used in errors and logs.
    pub name: String,
    pub pre: PluginPre,
}

/// The host side of one configured provider, shared by all its calls.
pub(crate) struct ProviderHandles {
    pub http: OutboundClient,
    pub env: EnvView,
    pub kv: KvNamespace,
    pub limits: ProviderLimits,
}

/// The operator's limits for one provider (`plugins.policy`); `None` keeps the runtime's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProviderLimits {
    /// Linear memory per instance, at most the runtime's.
    pub memory_bytes: Option<usize>,
    /// Wall-clock limit of one call.
    pub call_timeout: Option<Duration>,
}

/// Facts about the request the store serves.
pub(crate) struct RequestState {
    pub deadline: Instant,
    /// Where the outbound exchanges add their upstream time.
    pub upstream_clock: Option<Arc<UpstreamClock>>,
    /// The trace context the outbound exchanges carry (a child of the plugin-call span).
    pub trace: Option<crate::telemetry::trace::Propagation>,
}

impl RequestState {
    pub fn time_left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// The data of one store.
pub struct HostState {
    /// `None` while `describe` runs at load time: no provider exists yet.
    pub(crate) handles: Option<Arc<ProviderHandles>>,
    pub(crate) logger: Arc<PluginLogger>,
    pub(crate) request: RequestState,
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    limits: StoreLimits,
    cpu_ticks_used: u64,
    cpu_budget_ticks: u64,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// An instantiated plugin and its store.
pub(crate) struct Instance {
    store: Store<HostState>,
    plugin: Bindings,
    plugin_name: String,
    _slot: OwnedSemaphorePermit,
}

/// Who the instance serves; `None` handles for `describe`.
pub(crate) struct InstanceFor {
    pub handles: Option<Arc<ProviderHandles>>,
    pub logger: Arc<PluginLogger>,
    pub deadline: Instant,
    pub upstream_clock: Option<Arc<UpstreamClock>>,
    pub trace: Option<crate::telemetry::trace::Propagation>,
}

impl Instance {
    /// Waits for a slot, creates the store and instantiates the plugin (no `init` yet).
    pub async fn create(
        sandbox: &Sandbox,
        plugin: &LoadedPlugin,
        who: InstanceFor,
    ) -> Result<Self, CallError> {
        let slot =
            sandbox.slots.clone().acquire_owned().await.map_err(|_| {
                CallError::Unavailable("the plugin runtime is shutting down".into())
            })?;
        let sink = |stream| LogSink {
            logger: who.logger.clone(),
            stream,
        };
        // No args, no env, no preopens, no sockets: only stdout/stderr, wired to the log.
        let wasi = WasiCtxBuilder::new()
            .stdout(sink(OutputStream::Stdout))
            .stderr(sink(OutputStream::Stderr))
            .build();
        let memory_bytes = who
            .handles
            .as_ref()
            .and_then(|h| h.limits.memory_bytes)
            .unwrap_or(sandbox.limits.memory_bytes);
        let state = HostState {
            handles: who.handles,
            logger: who.logger.clone(),
            request: RequestState {
                deadline: who.deadline,
                upstream_clock: who.upstream_clock,
                trace: who.trace,
            },
            table: ResourceTable::new(),
            wasi,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .trap_on_grow_failure(true)
                .build(),
            cpu_ticks_used: 0,
            cpu_budget_ticks: sandbox.limits.cpu_budget_ticks,
        };
        let mut store = Store::new(&sandbox.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut cx| {
            let state = cx.data_mut();
            state.cpu_ticks_used += 1;
            if state.cpu_ticks_used >= state.cpu_budget_ticks {
                let ms = state.cpu_budget_ticks * super::limits::EPOCH_TICK_MS;
                return Err(wasmtime::format_err!(
                    "the call used up its CPU budget (about {ms} ms of guest time)"
                ));
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let plugin_name = plugin.name.clone();
        let instance = plugin.pre.instantiate(&mut store).await;
        let plugin_bindings = instance.map_err(|e| trap(&plugin_name, "instantiate", e))?;
        Ok(Instance {
            store,
            plugin: plugin_bindings,
            plugin_name,
            _slot: slot,
        })
    }

    fn trap(&self, op: &str, e: wasmtime::Error) -> CallError {
        trap(&self.plugin_name, op, e)
    }

    /// Starts a fresh CPU budget (each `next()` of a stream gets its own).
    pub fn reset_cpu_budget(&mut self) {
        self.store.data_mut().cpu_ticks_used = 0;
    }

    /// The `request-context` passed to the plugin.
    pub fn request_context(&self, ctx: &CallContext) -> wit_types::RequestContext {
        let left = self.store.data().request.time_left();
        wit_types::RequestContext {
            request_id: ctx.request_id.clone(),
            provider_data: ctx.provider_data.clone(),
            deadline_ms: u64::try_from(left.as_millis()).unwrap_or(u64::MAX),
            model: ctx.model.as_ref().map(|m| wit_types::ModelTarget {
                id: m.id.clone(),
                provider_model_id: m.provider_model_id.clone(),
                metadata_json: m.metadata_json(),
            }),
        }
    }

    /// Answers a guest call's two layers of failure: a trap, or the plugin's typed error.
    fn settle<T>(
        &self,
        op: &str,
        result: wasmtime::Result<Result<T, wit_types::ProviderError>>,
    ) -> Result<T, CallError> {
        Ok(result
            .map_err(|e| self.trap(op, e))?
            .map_err(provider_error)?)
    }

    pub async fn describe(&mut self) -> Result<wit::Descriptor, CallError> {
        let result = self.plugin.describe(&mut self.store).await;
        result.map_err(|e| self.trap("describe", e))
    }

    pub async fn init(&mut self, settings: &wit::ProviderSettings) -> Result<(), CallError> {
        let result = self.plugin.init(&mut self.store, settings).await;
        self.settle("init", result)
    }

    pub async fn list_models(
        &mut self,
        ctx: &CallContext,
    ) -> Result<Vec<wit_types::ModelInfo>, CallError> {
        let rc = self.request_context(ctx);
        let result = self.plugin.list_models(&mut self.store, &rc).await;
        self.settle("list-models", result)
    }

    pub async fn health(
        &mut self,
        ctx: &CallContext,
    ) -> Result<wit_types::HealthStatus, CallError> {
        let rc = self.request_context(ctx);
        let result = self.plugin.health(&mut self.store, &rc).await;
        result.map_err(|e| self.trap("health", e))
    }

    /// Runs an operation that answers a JSON body.
    pub async fn call_body(
        &mut self,
        op: BodyOperation,
        ctx: &CallContext,
        body: &str,
    ) -> Result<String, CallError> {
        let rc = self.request_context(ctx);
        let result = self.plugin.call_body(&mut self.store, op, &rc, body).await;
        self.settle(op.name(), result)
    }

    /// Opens a `chat-stream`; pull it with [`Instance::next_chunk`].
    pub async fn open_chunk_stream(
        &mut self,
        op: ChunkStreamOperation,
        ctx: &CallContext,
        body: &str,
    ) -> Result<ResourceAny, CallError> {
        let rc = self.request_context(ctx);
        let result = self
            .plugin
            .open_chunk_stream(&mut self.store, op, &rc, body)
            .await;
        self.settle(op.name(), result)
    }

    /// The next chunk of a stream opened by [`Instance::open_chunk_stream`].
    pub async fn next_chunk(&mut self, stream: ResourceAny) -> Result<Option<String>, CallError> {
        self.reset_cpu_budget();
        let result = self.plugin.next_chunk(&mut self.store, stream).await;
        self.settle("chat-stream.next", result)
    }

    /// Opens a native `messages-stream`; pull it with [`Instance::next_messages_event`].
    pub async fn open_messages_stream(
        &mut self,
        ctx: &CallContext,
        body: &str,
    ) -> Result<ResourceAny, CallError> {
        let rc = self.request_context(ctx);
        let result = self
            .plugin
            .open_messages_stream(&mut self.store, &rc, body)
            .await;
        self.settle("messages-stream", result)
    }

    /// The next event of a stream opened by [`Instance::open_messages_stream`].
    pub async fn next_messages_event(
        &mut self,
        stream: ResourceAny,
    ) -> Result<Option<super::MessagesEvent>, CallError> {
        self.reset_cpu_budget();
        let result = self
            .plugin
            .next_messages_event(&mut self.store, stream)
            .await;
        Ok(self
            .settle("messages-stream.next", result)?
            .map(|e| super::MessagesEvent {
                event_type: e.event_type,
                data: e.data,
            }))
    }

    /// Drops the guest's stream resource (which drops its upstream body).
    pub async fn close_stream(&mut self, stream: ResourceAny) {
        if let Err(e) = stream.resource_drop_async(&mut self.store).await {
            tracing::debug!(plugin = %self.plugin_name, "dropping a stream failed: {e}");
        }
    }
}

/// Turns a wasmtime error into `CallError::Trap`, logging the whole detail (with the guest
/// backtrace) at error level. The client only ever sees a generic 500.
pub(crate) fn trap(plugin: &str, op: &str, e: wasmtime::Error) -> CallError {
    tracing::error!(plugin, op, "provider plugin trapped: {e:?}");
    let mut detail = format!("{op}: {e}");
    for cause in e.chain().skip(1) {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
    }
    CallError::Trap {
        plugin: plugin.to_owned(),
        detail,
    }
}

/// The WIT `provider-error` (newest version) in host types.
pub(crate) fn provider_error(e: wit_types::ProviderError) -> ProviderError {
    use wit_types::ProviderError as W;
    match e {
        W::InvalidRequest(m) => ProviderError::InvalidRequest(m),
        W::Unauthenticated(m) => ProviderError::Unauthenticated(m),
        W::PermissionDenied(m) => ProviderError::PermissionDenied(m),
        W::NotFound(m) => ProviderError::NotFound(m),
        W::RateLimited(r) => ProviderError::RateLimited(super::RateLimit {
            message: r.message,
            retry_after: r.retry_after_seconds.map(|s| Duration::from_secs(s.into())),
        }),
        W::Upstream(u) => ProviderError::Upstream {
            status: u.status,
            message: u.message,
            headers: u.headers,
        },
        W::BadGateway(m) => ProviderError::BadGateway(m),
        W::Timeout(m) => ProviderError::Timeout(m),
        W::Unsupported(m) => ProviderError::Unsupported(m),
        W::Internal(m) => ProviderError::Internal(m),
    }
}
