//! A configured provider: one `providers.inference` entry of the run config bound to the
//! plugin that serves its `provider_type`. Every call creates a fresh instance, runs `init`
//! with the entry's settings, then the operation, under the runtime's limits.
//!
//! Wall clock: each call, from waiting for an instance slot to the operation's result, runs
//! under `tokio::time::timeout(min(ctx.timeout, call_timeout))` (`call_timeout` being the
//! provider's `plugins.policy` value, else the runtime's); when it fires the future,
//! and with it the store, is dropped and the caller gets `CallError::Timeout`.
//!
//! Streams: the store and the guest's stream resource (`chat-stream` or `messages-stream`)
//! live in a spawned task that pulls one item at a time into a bounded channel (so a slow
//! client slows the plugin down). Each `next()` has its own idle timeout and CPU budget. When
//! the receiver is dropped (the client went away) the task drops the guest resource, then the
//! store, and ends. An error or trap is sent as the last item.

use super::bindings::latest::exports::ogx::provider::provider::ProviderSettings;
use super::bindings::latest::ogx::provider::types::{HealthState, ModelInfo, ModelType};
use super::bindings::{BodyOperation, ChunkStreamOperation};
use super::instance::{Instance, InstanceFor, LoadedPlugin, ProviderHandles, Sandbox};
use super::{CallContext, CallError, Descriptor, Health, ListedModel, MessagesEvent};
use crate::imports::logging::PluginLogger;
use crate::telemetry::metrics;
use crate::telemetry::trace::{Kind, Propagation, Span};
use futures::Stream;
use futures::future::BoxFuture;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use wasmtime::component::ResourceAny;

/// The chunks of a streamed answer, each an OpenAI chunk object as JSON. The instance lives
/// as long as the stream; dropping the stream drops the instance and the upstream request.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<String, CallError>> + Send + 'static>>;

/// The events of a native Anthropic Messages stream; dropped as a [`ChunkStream`] is.
pub type EventStream =
    Pin<Box<dyn Stream<Item = Result<MessagesEvent, CallError>> + Send + 'static>>;

/// Chunks buffered between a stream's plugin task and the client.
pub const STREAM_CHANNEL_CAPACITY: usize = 16;

/// A provider entry of the config, ready to serve calls.
pub struct Provider {
    sandbox: Arc<Sandbox>,
    plugin: Arc<LoadedPlugin>,
    descriptor: Descriptor,
    id: String,
    provider_type: String,
    /// The entry's `config:` block, and the same serialized once for `init`.
    config: serde_json::Value,
    config_json: String,
    handles: Arc<ProviderHandles>,
    /// Native operations the descriptor lists but the plugin answered `unsupported` for,
    /// per upstream model (a plugin serving several types may speak Messages for some only;
    /// one upstream may speak it for some models only, as Bedrock does for Claude).
    declined: DeclinedNative,
}

/// See [`Provider::decline_native`]: upstream model ids added, never removed, at most
/// [`MAX_DECLINED_MODELS`] per operation (past that, a declining model is asked again,
/// which costs a plugin call, never a wrong answer).
#[derive(Default)]
struct DeclinedNative {
    messages: Mutex<HashSet<String>>,
    count_tokens: Mutex<HashSet<String>>,
}

/// Models remembered as declined per native operation and provider.
const MAX_DECLINED_MODELS: usize = 1024;

impl DeclinedNative {
    fn of(&self, operation: NativeOperation) -> &Mutex<HashSet<String>> {
        match operation {
            NativeOperation::Messages => &self.messages,
            NativeOperation::CountTokens => &self.count_tokens,
        }
    }
}

/// A native operation a plugin may list in its descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeOperation {
    /// `messages` and `messages-stream`.
    Messages,
    /// `count-tokens`.
    CountTokens,
}

impl Provider {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        sandbox: Arc<Sandbox>,
        plugin: Arc<LoadedPlugin>,
        descriptor: Descriptor,
        id: &str,
        provider_type: &str,
        config: serde_json::Value,
        handles: Arc<ProviderHandles>,
    ) -> Self {
        let config_json = config.to_string();
        Provider {
            sandbox,
            plugin,
            descriptor,
            id: id.into(),
            provider_type: provider_type.into(),
            config,
            config_json,
            handles,
            declined: DeclinedNative::default(),
        }
    }

    /// Whether this provider runs `plugin` (the same loaded file, not a newer copy).
    pub(crate) fn runs(&self, plugin: &Arc<LoadedPlugin>) -> bool {
        Arc::ptr_eq(&self.plugin, plugin)
    }

    /// The `provider_id` of the config entry.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The `provider_type` of the config entry.
    pub fn provider_type(&self) -> &str {
        &self.provider_type
    }
    /// The plugin's self-description.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }
    /// Whether to call the plugin's native `operation` for the upstream model `model`: its
    /// descriptor lists it and it has not answered `unsupported` for this provider and model
    /// ([`Provider::decline_native`]).
    pub fn serves_native(&self, operation: NativeOperation, model: &str) -> bool {
        let listed = match operation {
            NativeOperation::Messages => self.descriptor.native_messages,
            NativeOperation::CountTokens => self.descriptor.native_count_tokens,
        };
        listed
            && !self
                .declined
                .of(operation)
                .lock()
                .is_ok_and(|declined| declined.contains(model))
    }

    /// Notes that the plugin answered `unsupported` to native `operation` for this provider
    /// and upstream `model`: the host serves that model another way from now on.
    pub fn decline_native(&self, operation: NativeOperation, model: &str) {
        let Ok(mut declined) = self.declined.of(operation).lock() else {
            return;
        };
        if declined.len() < MAX_DECLINED_MODELS && declined.insert(model.to_string()) {
            tracing::info!(
                provider = %self.id,
                model,
                "provider type {} has no native {operation:?} operation for this model: translating instead",
                self.provider_type
            );
        }
    }

    /// Path of the plugin's `.wasm` file.
    pub fn plugin_path(&self) -> &std::path::Path {
        &self.plugin.path
    }
    /// The entry's `config:` block (secrets included: never print it unredacted).
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// Instance slots free right now, across the runtime (for tests and metrics).
    pub fn free_instance_slots(&self) -> usize {
        self.sandbox.slots.available_permits()
    }

    fn call_limit(&self, ctx: &CallContext) -> Duration {
        let max = self
            .handles
            .limits
            .call_timeout
            .unwrap_or(self.sandbox.limits.call_timeout);
        ctx.timeout.map_or(max, |t| t.min(max))
    }

    /// The plugin-call span of a call made with `ctx` (a child of the request's server span;
    /// `None` when tracing is off) and what the call's exchanges carry.
    fn plugin_span(&self, ctx: &CallContext) -> (Option<Span>, Option<Propagation>) {
        let Some(Propagation::Traced { parent, resend }) = &ctx.trace else {
            return (None, ctx.trace.clone());
        };
        let mut span = Span::child_of(parent, "ogx.plugin.call", Kind::Internal);
        if span.is_recording() {
            span.set("ogx.provider.id", self.id.as_str());
            span.set("ogx.provider.type", self.provider_type.as_str());
            span.set("ogx.plugin.name", self.plugin.name.as_str());
            span.set("ogx.attempt", i64::from(*resend) + 1);
        }
        let propagation = ctx.trace.as_ref().map(|p| p.under(&span));
        (Some(span), propagation)
    }

    /// A fresh instance with `init` done; its exchanges carry `trace`.
    async fn ready_instance(
        &self,
        ctx: &CallContext,
        deadline: Instant,
        trace: Option<Propagation>,
    ) -> Result<Instance, CallError> {
        let who = InstanceFor {
            handles: Some(self.handles.clone()),
            logger: Arc::new(PluginLogger::new(
                &self.id,
                &ctx.request_id,
                &self.plugin.name,
            )),
            deadline,
            upstream_clock: ctx.upstream_clock.clone(),
            trace,
        };
        let started = Instant::now();
        let mut instance = Instance::create(&self.sandbox, &self.plugin, who).await?;
        let settings = ProviderSettings {
            provider_id: self.id.clone(),
            provider_type: self.provider_type.clone(),
            config_json: self.config_json.clone(),
        };
        instance.init(&settings).await?;
        metrics::plugin_instantiated(&self.id, started.elapsed());
        Ok(instance)
    }

    /// Runs `op` on a fresh instance under the call's wall-clock limit, then retires the
    /// instance.
    async fn call<T: Send>(&self, ctx: &CallContext, op: TypedCall<T>) -> Result<T, CallError> {
        let limit = self.call_limit(ctx);
        let deadline = Instant::now() + limit;
        let (mut span, trace) = self.plugin_span(ctx);
        let call = async {
            let mut instance = self.ready_instance(ctx, deadline, trace).await?;
            let started = Instant::now();
            let output = op(&mut instance, ctx).await;
            metrics::plugin_called(&self.id, output.is_ok(), started.elapsed());
            retire(instance);
            output
        };
        let output = tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(CallError::Timeout(limit)));
        if let (Some(span), Err(error)) = (&mut span, &output) {
            span.fail(error_kind(error));
        }
        output
    }

    /// Runs `init` once, to fail at start-up on a config the plugin rejects.
    pub async fn check_config(&self) -> Result<(), CallError> {
        let ctx = CallContext {
            request_id: "startup".into(),
            ..CallContext::default()
        };
        let limit = self.call_limit(&ctx);
        let check = async {
            self.ready_instance(&ctx, Instant::now() + limit, None)
                .await
                .map(drop)
        };
        tokio::time::timeout(limit, check)
            .await
            .unwrap_or(Err(CallError::Timeout(limit)))
    }

    pub async fn list_models(&self, ctx: CallContext) -> Result<Vec<ListedModel>, CallError> {
        let models = self
            .call(&ctx, Box::new(|i, ctx| Box::pin(i.list_models(ctx))))
            .await?;
        models.into_iter().map(|m| self.listed_model(m)).collect()
    }

    fn listed_model(&self, m: ModelInfo) -> Result<ListedModel, CallError> {
        let metadata = match m.metadata_json.as_deref() {
            None => serde_json::Map::new(),
            Some(json) => match serde_json::from_str::<serde_json::Value>(json) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => {
                    return Err(CallError::Provider(super::ProviderError::Internal(
                        format!(
                            "plugin {} returned metadata for model `{}` that is not a JSON object",
                            self.plugin.name, m.id
                        ),
                    )));
                }
            },
        };
        let model_type = match m.model_type {
            ModelType::Llm => "llm",
            ModelType::Embedding => "embedding",
            ModelType::Rerank => "rerank",
        };
        Ok(ListedModel {
            id: m.id,
            model_type: model_type.into(),
            metadata,
        })
    }

    async fn body_call(
        &self,
        ctx: CallContext,
        op: BodyOperation,
        body: String,
    ) -> Result<String, CallError> {
        let run: TypedCall<String> =
            Box::new(move |i, ctx| Box::pin(async move { i.call_body(op, ctx, &body).await }));
        self.call(&ctx, run).await
    }

    pub async fn chat_completion(
        &self,
        ctx: CallContext,
        body: String,
    ) -> Result<String, CallError> {
        self.body_call(ctx, BodyOperation::ChatCompletion, body)
            .await
    }

    pub async fn chat_completion_stream(
        &self,
        ctx: CallContext,
        body: String,
    ) -> Result<ChunkStream, CallError> {
        self.chunk_stream(ctx, ChunkStreamOperation::ChatCompletion, body)
            .await
    }

    pub async fn completion(&self, ctx: CallContext, body: String) -> Result<String, CallError> {
        self.body_call(ctx, BodyOperation::Completion, body).await
    }

    pub async fn completion_stream(
        &self,
        ctx: CallContext,
        body: String,
    ) -> Result<ChunkStream, CallError> {
        self.chunk_stream(ctx, ChunkStreamOperation::Completion, body)
            .await
    }

    pub async fn embeddings(&self, ctx: CallContext, body: String) -> Result<String, CallError> {
        self.body_call(ctx, BodyOperation::Embeddings, body).await
    }

    /// `POST /v1/messages` natively: an Anthropic `message` object as JSON. Only for a plugin
    /// whose descriptor says `native_messages`; any other answers `unsupported`.
    pub async fn messages(&self, ctx: CallContext, body: String) -> Result<String, CallError> {
        self.body_call(ctx, BodyOperation::Messages, body).await
    }

    /// `POST /v1/messages` with `"stream": true`, natively (see [`Provider::messages`]).
    pub async fn messages_stream(
        &self,
        ctx: CallContext,
        body: String,
    ) -> Result<EventStream, CallError> {
        let open: TypedCall<ResourceAny> = Box::new(move |i, ctx| {
            Box::pin(async move { i.open_messages_stream(ctx, &body).await })
        });
        self.open_stream(&ctx, open, |i, stream| {
            Box::pin(i.next_messages_event(stream))
        })
        .await
    }

    /// `POST /v1/messages/count_tokens` natively: `{"input_tokens": N}`. Only for a plugin
    /// whose descriptor says `native_count_tokens`; any other answers `unsupported`.
    pub async fn count_tokens(&self, ctx: CallContext, body: String) -> Result<String, CallError> {
        self.body_call(ctx, BodyOperation::CountTokens, body).await
    }

    pub async fn health(&self, ctx: CallContext) -> Result<Health, CallError> {
        let h = self
            .call(&ctx, Box::new(|i, ctx| Box::pin(i.health(ctx))))
            .await?;
        let status = match h.state {
            HealthState::Ok => "OK",
            HealthState::Error => "Error",
            HealthState::NotImplemented => "Not Implemented",
        };
        Ok(Health {
            status,
            message: h.message,
        })
    }

    async fn chunk_stream(
        &self,
        ctx: CallContext,
        op: ChunkStreamOperation,
        body: String,
    ) -> Result<ChunkStream, CallError> {
        let open: TypedCall<ResourceAny> = Box::new(move |i, ctx| {
            Box::pin(async move { i.open_chunk_stream(op, ctx, &body).await })
        });
        self.open_stream(&ctx, open, |i, stream| Box::pin(i.next_chunk(stream)))
            .await
    }

    /// Opens a stream with `open` (errors before the first item are returned directly) and
    /// hands the instance to a task that pulls the items with `next`.
    async fn open_stream<T: Send + 'static>(
        &self,
        ctx: &CallContext,
        open: TypedCall<ResourceAny>,
        next: NextItem<T>,
    ) -> Result<Pin<Box<dyn Stream<Item = Result<T, CallError>> + Send + 'static>>, CallError> {
        let limit = self.call_limit(ctx);
        // The stream as a whole is not bounded by the call timeout, only each step; the
        // deadline the plugin sees (and caps its HTTP timeouts with) is the call timeout.
        let deadline = Instant::now() + limit;
        let (mut span, trace) = self.plugin_span(ctx);
        let opening = async {
            let mut instance = self.ready_instance(ctx, deadline, trace).await?;
            let started = Instant::now();
            let stream = open(&mut instance, ctx).await;
            metrics::plugin_called(&self.id, stream.is_ok(), started.elapsed());
            Ok((instance, stream?))
        };
        let opened = tokio::time::timeout(limit, opening)
            .await
            .unwrap_or(Err(CallError::Timeout(limit)));
        let (instance, stream) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                if let Some(span) = &mut span {
                    span.fail(error_kind(&error));
                }
                return Err(error);
            }
        };
        let (tx, rx) = mpsc::channel(STREAM_CHANNEL_CAPACITY);
        let idle = self.sandbox.limits.stream_idle_timeout;
        // The plugin-call span lasts as long as the stream's task.
        tokio::spawn(pump_stream(instance, stream, next, tx, idle, span));
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }
}

/// One typed call on a ready instance, for the request `ctx`.
type TypedCall<T> = Box<
    dyn for<'a> FnOnce(&'a mut Instance, &'a CallContext) -> BoxFuture<'a, Result<T, CallError>>
        + Send,
>;

/// Pulls the next item of a guest stream resource.
type NextItem<T> =
    for<'a> fn(&'a mut Instance, ResourceAny) -> BoxFuture<'a, Result<Option<T>, CallError>>;

/// Pulls items until the stream ends, fails, or the receiver goes away; then drops the
/// guest resource and the store.
async fn pump_stream<T: Send + 'static>(
    mut instance: Instance,
    stream: ResourceAny,
    next: NextItem<T>,
    tx: mpsc::Sender<Result<T, CallError>>,
    idle: Duration,
    mut span: Option<Span>,
) {
    let mut fail = |error: &CallError| {
        if let Some(span) = &mut span {
            span.fail(error_kind(error));
        }
    };
    loop {
        // Wait for room first: a slow or vanished client stops the pulling.
        let Ok(permit) = tx.reserve().await else {
            break;
        };
        let item = tokio::select! {
            item = tokio::time::timeout(idle, next(&mut instance, stream)) => item,
            // The client went away mid-call: the abandoned guest call leaves the store
            // unusable, so drop it as it is (its table drops any upstream body).
            () = tx.closed() => return,
        };
        match item {
            Ok(Ok(Some(item))) => permit.send(Ok(item)),
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                fail(&e);
                permit.send(Err(e));
                break;
            }
            Err(_) => {
                // The guest call was abandoned mid-way: the store cannot be used again, so
                // skip the resource drop and let the store go.
                fail(&CallError::Timeout(idle));
                permit.send(Err(CallError::Timeout(idle)));
                return;
            }
        }
    }
    instance.close_stream(stream).await;
    // The plugin-call span ends before the stream does (the channel closes with `tx`).
    drop(span);
    drop(tx);
}

/// A span's error status for a failed call: the kind of failure, never its message (which
/// may quote the upstream).
fn error_kind(error: &CallError) -> String {
    use super::ProviderError as P;
    match error {
        CallError::Provider(P::Upstream { status, .. }) => format!("upstream status {status}"),
        CallError::Provider(P::RateLimited(_)) => "rate limited".into(),
        CallError::Provider(P::Timeout(_)) | CallError::Timeout(_) => "timeout".into(),
        CallError::Provider(P::BadGateway(_)) => "bad gateway".into(),
        CallError::Provider(_) => "provider error".into(),
        CallError::Trap { .. } => "plugin trapped".into(),
        CallError::Unavailable(_) => "no instance available".into(),
    }
}

/// Drops a finished instance on a task of its own, which the runtime polls after the caller
/// has sent its answer: returning an instance's memory and table costs several microseconds
/// that need not delay the response. Its slot is free once the task ran.
fn retire(instance: Instance) {
    tokio::spawn(async move { drop(instance) });
}
