//! The plugin interface versions this host serves, one bindings module per version as Zed's
//! extension host does (`since_v0_1`, `since_v0_2`), and the one place that dispatches a call
//! to the version a plugin was built against.
//!
//! The version is chosen at load by the `ogx:provider/provider@X` interface the component
//! exports (see `discovery`). Every call goes through [`Bindings`], which speaks the newest
//! version's types ([`latest`]) to the rest of the runtime and converts to and from an older
//! version's in that version's module. An operation an older version does not have answers
//! `unsupported`, as a plugin that does not implement it would.
//!
//! Each method returns `wasmtime::Result<..>`: the outer error is a trap (or a host invariant
//! violation), the inner one the plugin's typed `provider-error`.

pub mod since_v0_1;
pub mod since_v0_2;

/// The newest interface version: the types the rest of the runtime speaks.
pub use since_v0_2 as latest;

use super::instance::HostState;
use latest::exports::ogx::provider::provider::{Descriptor, MessagesEvent, ProviderSettings};
use latest::ogx::provider::types::{HealthStatus, ModelInfo, ProviderError, RequestContext};
use wasmtime::Store;
use wasmtime::component::{InstancePre, ResourceAny};

/// A version of the `ogx:provider` interface that this host serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum InterfaceVersion {
    V0_1_0,
    V0_2_0,
}

impl InterfaceVersion {
    /// Every version served, oldest first.
    pub const SERVED: [InterfaceVersion; 2] = [InterfaceVersion::V0_1_0, InterfaceVersion::V0_2_0];
    /// The version the SDK builds against.
    pub const LATEST: InterfaceVersion = InterfaceVersion::V0_2_0;

    /// The version as WIT spells it, e.g. `0.2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceVersion::V0_1_0 => "0.1.0",
            InterfaceVersion::V0_2_0 => "0.2.0",
        }
    }

    /// The served version spelled `version`, if any.
    pub fn parse(version: &str) -> Option<Self> {
        Self::SERVED.into_iter().find(|v| v.as_str() == version)
    }

    /// The versions served, for messages: `0.1.0 and 0.2.0`.
    pub fn served_list() -> String {
        let all: Vec<&str> = Self::SERVED.iter().map(|v| v.as_str()).collect();
        match all.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

impl std::fmt::Display for InterfaceVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

type Outcome<T> = wasmtime::Result<Result<T, ProviderError>>;

/// A plugin component linked and type-checked for its version, ready to instantiate.
pub(crate) enum PluginPre {
    V0_1(since_v0_1::PluginPre<HostState>),
    V0_2(since_v0_2::PluginPre<HostState>),
}

impl PluginPre {
    /// Type-checks the component's exports against `version`'s world.
    pub fn new(version: InterfaceVersion, pre: InstancePre<HostState>) -> wasmtime::Result<Self> {
        Ok(match version {
            InterfaceVersion::V0_1_0 => PluginPre::V0_1(since_v0_1::PluginPre::new(pre)?),
            InterfaceVersion::V0_2_0 => PluginPre::V0_2(since_v0_2::PluginPre::new(pre)?),
        })
    }

    /// The version the plugin was built against.
    pub fn version(&self) -> InterfaceVersion {
        match self {
            PluginPre::V0_1(_) => InterfaceVersion::V0_1_0,
            PluginPre::V0_2(_) => InterfaceVersion::V0_2_0,
        }
    }

    pub async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            PluginPre::V0_1(pre) => Bindings::V0_1(pre.instantiate_async(store).await?),
            PluginPre::V0_2(pre) => Bindings::V0_2(pre.instantiate_async(store).await?),
        })
    }
}

/// The exports of one instantiated plugin, in its version.
pub(crate) enum Bindings {
    V0_1(since_v0_1::Plugin),
    V0_2(since_v0_2::Plugin),
}

/// The operations that take a JSON body and answer one; the same signature in every version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyOperation {
    ChatCompletion,
    Completion,
    Embeddings,
    Messages,
    CountTokens,
}

/// The operations that take a JSON body and answer a `chat-stream`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkStreamOperation {
    ChatCompletion,
    Completion,
}

impl BodyOperation {
    /// The WIT name, for logs and trap messages.
    pub fn name(self) -> &'static str {
        match self {
            BodyOperation::ChatCompletion => "chat-completion",
            BodyOperation::Completion => "completion",
            BodyOperation::Embeddings => "embeddings",
            BodyOperation::Messages => "messages",
            BodyOperation::CountTokens => "count-tokens",
        }
    }
}

impl ChunkStreamOperation {
    /// The WIT name, for logs and trap messages.
    pub fn name(self) -> &'static str {
        match self {
            ChunkStreamOperation::ChatCompletion => "chat-completion-stream",
            ChunkStreamOperation::Completion => "completion-stream",
        }
    }
}

/// What an older version answers for an operation it does not have.
fn not_in_version(version: InterfaceVersion, operation: &str) -> ProviderError {
    ProviderError::Unsupported(format!(
        "this provider's plugin is built against ogx:provider@{version}, which has no `{operation}` operation"
    ))
}

/// A plugin's body as text: the host's API answers are strings.
fn utf8(body: Vec<u8>, operation: &str) -> Result<String, ProviderError> {
    String::from_utf8(body).map_err(|_| {
        ProviderError::Internal(format!(
            "the plugin's `{operation}` answer is not UTF-8 JSON"
        ))
    })
}

impl Bindings {
    pub async fn describe(&self, store: &mut Store<HostState>) -> wasmtime::Result<Descriptor> {
        match self {
            Bindings::V0_1(p) => Ok(p.ogx_provider_provider().call_describe(store).await?.into()),
            Bindings::V0_2(p) => p.ogx_provider_provider().call_describe(store).await,
        }
    }

    pub async fn init(
        &self,
        store: &mut Store<HostState>,
        settings: &ProviderSettings,
    ) -> Outcome<()> {
        match self {
            Bindings::V0_1(p) => Ok(p
                .ogx_provider_provider()
                .call_init(store, &settings.into())
                .await?
                .map_err(Into::into)),
            Bindings::V0_2(p) => p.ogx_provider_provider().call_init(store, settings).await,
        }
    }

    pub async fn list_models(
        &self,
        store: &mut Store<HostState>,
        ctx: &RequestContext,
    ) -> Outcome<Vec<ModelInfo>> {
        match self {
            Bindings::V0_1(p) => Ok(p
                .ogx_provider_provider()
                .call_list_models(store, &ctx.into())
                .await?
                .map(|models| models.into_iter().map(Into::into).collect())
                .map_err(Into::into)),
            Bindings::V0_2(p) => p.ogx_provider_provider().call_list_models(store, ctx).await,
        }
    }

    pub async fn health(
        &self,
        store: &mut Store<HostState>,
        ctx: &RequestContext,
    ) -> wasmtime::Result<HealthStatus> {
        match self {
            Bindings::V0_1(p) => Ok(p
                .ogx_provider_provider()
                .call_health(store, &ctx.into())
                .await?
                .into()),
            Bindings::V0_2(p) => p.ogx_provider_provider().call_health(store, ctx).await,
        }
    }

    /// Runs a body operation; `body` is JSON.
    pub async fn call_body(
        &self,
        store: &mut Store<HostState>,
        op: BodyOperation,
        ctx: &RequestContext,
        body: &str,
    ) -> Outcome<String> {
        use BodyOperation as Op;
        match self {
            Bindings::V0_1(p) => {
                let e = p.ogx_provider_provider();
                let ctx = ctx.into();
                let result = match op {
                    Op::ChatCompletion => e.call_chat_completion(store, &ctx, body).await?,
                    Op::Completion => e.call_completion(store, &ctx, body).await?,
                    Op::Embeddings => e.call_embeddings(store, &ctx, body).await?,
                    Op::Messages | Op::CountTokens => {
                        return Ok(Err(not_in_version(InterfaceVersion::V0_1_0, op.name())));
                    }
                };
                Ok(result.map_err(Into::into))
            }
            Bindings::V0_2(p) => {
                let e = p.ogx_provider_provider();
                let body = body.as_bytes();
                let result = match op {
                    Op::ChatCompletion => e.call_chat_completion(store, ctx, body).await?,
                    Op::Completion => e.call_completion(store, ctx, body).await?,
                    Op::Embeddings => e.call_embeddings(store, ctx, body).await?,
                    Op::Messages => e.call_messages(store, ctx, body).await?,
                    Op::CountTokens => e.call_count_tokens(store, ctx, body).await?,
                };
                Ok(result.and_then(|answer| utf8(answer, op.name())))
            }
        }
    }

    /// Opens a `chat-stream`.
    pub async fn open_chunk_stream(
        &self,
        store: &mut Store<HostState>,
        op: ChunkStreamOperation,
        ctx: &RequestContext,
        body: &str,
    ) -> Outcome<ResourceAny> {
        use ChunkStreamOperation as Op;
        match self {
            Bindings::V0_1(p) => {
                let e = p.ogx_provider_provider();
                let ctx = ctx.into();
                let result = match op {
                    Op::ChatCompletion => e.call_chat_completion_stream(store, &ctx, body).await?,
                    Op::Completion => e.call_completion_stream(store, &ctx, body).await?,
                };
                Ok(result.map_err(Into::into))
            }
            Bindings::V0_2(p) => {
                let e = p.ogx_provider_provider();
                let body = body.as_bytes();
                match op {
                    Op::ChatCompletion => e.call_chat_completion_stream(store, ctx, body).await,
                    Op::Completion => e.call_completion_stream(store, ctx, body).await,
                }
            }
        }
    }

    /// The next chunk of a `chat-stream` opened by [`Bindings::open_chunk_stream`].
    pub async fn next_chunk(
        &self,
        store: &mut Store<HostState>,
        stream: ResourceAny,
    ) -> Outcome<Option<String>> {
        match self {
            Bindings::V0_1(p) => Ok(p
                .ogx_provider_provider()
                .chat_stream()
                .call_next(store, stream)
                .await?
                .map_err(Into::into)),
            Bindings::V0_2(p) => {
                p.ogx_provider_provider()
                    .chat_stream()
                    .call_next(store, stream)
                    .await
            }
        }
    }

    /// Opens a native `messages-stream` (an `event-stream` resource).
    pub async fn open_messages_stream(
        &self,
        store: &mut Store<HostState>,
        ctx: &RequestContext,
        body: &str,
    ) -> Outcome<ResourceAny> {
        match self {
            Bindings::V0_1(_) => Ok(Err(not_in_version(
                InterfaceVersion::V0_1_0,
                "messages-stream",
            ))),
            Bindings::V0_2(p) => {
                p.ogx_provider_provider()
                    .call_messages_stream(store, ctx, body.as_bytes())
                    .await
            }
        }
    }

    /// The next event of a stream opened by [`Bindings::open_messages_stream`].
    pub async fn next_messages_event(
        &self,
        store: &mut Store<HostState>,
        stream: ResourceAny,
    ) -> Outcome<Option<MessagesEvent>> {
        match self {
            Bindings::V0_1(_) => Ok(Err(not_in_version(
                InterfaceVersion::V0_1_0,
                "messages-stream.next",
            ))),
            Bindings::V0_2(p) => {
                p.ogx_provider_provider()
                    .event_stream()
                    .call_next(store, stream)
                    .await
            }
        }
    }
}
