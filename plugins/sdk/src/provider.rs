//! The [`Provider`] trait a plugin implements, and the plain types it speaks.
//!
//! The host calls a fresh instance for every API request: [`Provider::init`] first, then
//! exactly one operation. Every operation has a default, so a plugin implements only what its
//! upstream offers; the defaults answer 501 `unsupported` (health: `not-implemented`, model
//! list: empty).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Context, ProviderError};

/// What a plugin is; read once when the host loads the plugin, before any `init`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Descriptor {
    /// Plugin name for people, e.g. `openai-compatible`.
    pub name: String,
    /// Plugin version (semver); `env!("CARGO_PKG_VERSION")` is the usual choice.
    pub version: String,
    /// The `provider_type`s the plugin serves, e.g. `remote::vllm`. Two plugins may not claim
    /// the same type.
    pub provider_types: Vec<String>,
    /// Hosts the plugin may send requests to: `host`, `*.domain` or `*`, optionally with
    /// `:port`; a `scheme://` prefix limits the scheme. Empty: no outbound HTTP at all.
    pub outbound_hosts: Vec<String>,
    /// Environment variables the plugin may read with [`crate::config::env`]; any other name
    /// reads as unset.
    pub env_vars: Vec<String>,
    /// Config keys whose values are secrets, shown as `********`. Keys containing `api_key`,
    /// `token`, `secret` or `password` are always secret.
    pub secret_config_keys: Vec<String>,
}

/// Who is being initialised, with the entry's `config:` block already deserialized.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings<C> {
    /// The `provider_id` of the config entry, e.g. `vllm-local`.
    pub provider_id: String,
    /// The `provider_type` of the config entry, one of [`Descriptor::provider_types`].
    pub provider_type: String,
    /// The entry's `config:` block, after `${env...}` substitution.
    pub config: C,
}

/// What kind of model a [`Model`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    /// A chat / completion model.
    Llm,
    /// An embedding model.
    Embedding,
    /// A reranker.
    Rerank,
}

/// One model an upstream offers.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The id the upstream knows the model by; the host shows it as `<provider_id>/<id>`.
    pub id: String,
    /// What the model does.
    pub model_type: ModelType,
    /// Extra metadata (e.g. `{"embedding_dimension": 768}`), merged into `custom_metadata` on
    /// `/v1/models`; `None` for none.
    pub metadata: Option<Map<String, Value>>,
}

impl Model {
    /// A chat model without metadata.
    pub fn llm(id: impl Into<String>) -> Self {
        Model {
            id: id.into(),
            model_type: ModelType::Llm,
            metadata: None,
        }
    }
}

/// Whether the upstream is reachable, as shown on `/v1/providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// The upstream answered.
    Ok,
    /// The upstream could not be reached or refused the check; the text says why.
    Error(String),
    /// The provider has no health check (the default).
    NotImplemented,
}

/// A streamed answer: OpenAI chunk objects, one per item, pulled by the host one at a time.
/// An `Err` item ends the stream and reaches the client as an SSE error event; dropping the
/// stream (the client left) drops whatever the iterator holds, e.g. the upstream connection.
pub struct ChunkStream(Box<dyn Iterator<Item = Result<String, ProviderError>>>);

impl ChunkStream {
    /// A stream of chunk objects.
    pub fn from_json<I>(chunks: I) -> Self
    where
        I: IntoIterator<Item = Result<Value, ProviderError>>,
        I::IntoIter: 'static,
    {
        ChunkStream(Box::new(
            chunks.into_iter().map(|chunk| chunk.map(|v| v.to_string())),
        ))
    }

    /// A stream of chunks that are already serialized JSON objects (e.g. SSE `data:` payloads
    /// passed through without parsing them).
    pub fn from_text<I>(chunks: I) -> Self
    where
        I: IntoIterator<Item = Result<String, ProviderError>>,
        I::IntoIter: 'static,
    {
        ChunkStream(Box::new(chunks.into_iter()))
    }
}

impl Iterator for ChunkStream {
    type Item = Result<String, ProviderError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// One Anthropic server-sent event of a native Messages stream.
#[derive(Debug, Clone, PartialEq)]
pub struct MessagesEvent {
    /// The SSE `event:` name, e.g. `content_block_delta`.
    pub event_type: String,
    /// The event's object; its `type` field equals `event_type`.
    pub data: Value,
}

/// A streamed native Messages answer: Anthropic events, pulled by the host one at a time,
/// ending after `message_stop`. An `Err` item ends the stream and reaches the client as an
/// `error` event.
pub struct EventStream(Box<dyn Iterator<Item = Result<MessagesEvent, ProviderError>>>);

impl EventStream {
    /// A stream of events.
    pub fn new<I>(events: I) -> Self
    where
        I: IntoIterator<Item = Result<MessagesEvent, ProviderError>>,
        I::IntoIter: 'static,
    {
        EventStream(Box::new(events.into_iter()))
    }
}

impl Iterator for EventStream {
    type Item = Result<MessagesEvent, ProviderError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

/// The optional operations a plugin serves natively ([`Provider::native_operations`]). For
/// one it does not list, the host does not call the plugin: it translates `/v1/messages` to
/// and from `chat_completion`, and estimates token counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NativeOperations {
    /// [`Provider::messages`] and [`Provider::messages_stream`]: the upstream speaks
    /// Anthropic's Messages API.
    pub messages: bool,
    /// [`Provider::count_tokens`]: the upstream counts tokens.
    pub count_tokens: bool,
}

/// A provider plugin. Implement it on a type that holds what `init` prepared, and register
/// the type with [`crate::export_provider!`].
///
/// Request bodies are the client's OpenAI (or, for the Messages operations, Anthropic) JSON
/// with `model` already replaced by the upstream model id ([`Context::model`] says more about
/// the model); unknown fields are kept. Answers are JSON objects of the same API.
pub trait Provider: Sized + 'static {
    /// The shape of the provider's `config:` block. Unknown keys should be ignored (OGX
    /// ignores them), so do not use `#[serde(deny_unknown_fields)]`.
    type Config: DeserializeOwned;

    /// Describes the plugin. Called once at load time; must not call any import.
    fn describe() -> Descriptor;

    /// Validates the config and prepares the instance. A config that fails to deserialize
    /// never gets here: the SDK answers `invalid-request` naming the provider and the field.
    fn init(settings: Settings<Self::Config>) -> Result<Self, ProviderError>;

    /// The models the upstream offers; called at start-up and on refresh. An error is shown
    /// as a warning; the default is an empty list.
    fn list_models(&self, ctx: &Context) -> Result<Vec<Model>, ProviderError> {
        let _ = ctx;
        Ok(Vec::new())
    }

    /// `POST /v1/chat/completions` without streaming; returns a `chat.completion` object.
    fn chat_completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let _ = request;
        unsupported(ctx, "/v1/chat/completions")
    }

    /// `POST /v1/chat/completions` with `"stream": true`; yields `chat.completion.chunk`
    /// objects. An error returned here (before the first chunk) is a normal HTTP error.
    fn chat_completion_stream(
        &self,
        ctx: &Context,
        request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        let _ = request;
        unsupported(ctx, "streaming /v1/chat/completions")
    }

    /// `POST /v1/completions` without streaming; returns a `text_completion` object.
    fn completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let _ = request;
        unsupported(ctx, "/v1/completions")
    }

    /// `POST /v1/completions` with `"stream": true`; yields `text_completion` objects.
    fn completion_stream(
        &self,
        ctx: &Context,
        request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        let _ = request;
        unsupported(ctx, "streaming /v1/completions")
    }

    /// `POST /v1/embeddings`; returns an OpenAI embeddings list.
    fn embeddings(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let _ = request;
        unsupported(ctx, "/v1/embeddings")
    }

    /// Whether the upstream is reachable; the default is [`Health::NotImplemented`].
    fn health(&self, ctx: &Context) -> Health {
        let _ = ctx;
        Health::NotImplemented
    }

    /// The operations below that this plugin serves natively; the default is none. Override
    /// it together with them: the host calls them only when they are listed here.
    fn native_operations() -> NativeOperations {
        NativeOperations::default()
    }

    /// `POST /v1/messages` without streaming, natively: the request is Anthropic's; returns
    /// an Anthropic `message` object.
    fn messages(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let _ = request;
        unsupported(ctx, "/v1/messages")
    }

    /// `POST /v1/messages` with `"stream": true`, natively; yields Anthropic's events. An
    /// error returned here (before the first event) is a normal HTTP error.
    fn messages_stream(&self, ctx: &Context, request: Value) -> Result<EventStream, ProviderError> {
        let _ = request;
        unsupported(ctx, "streaming /v1/messages")
    }

    /// `POST /v1/messages/count_tokens`, natively; returns `{"input_tokens": N}`.
    fn count_tokens(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let _ = request;
        unsupported(ctx, "/v1/messages/count_tokens")
    }
}

/// What an operation a provider does not override answers: `unsupported` (501), naming the
/// provider type and the operation.
fn unsupported<T>(ctx: &Context, operation: &str) -> Result<T, ProviderError> {
    Err(ProviderError::unsupported(ctx.provider_type(), operation))
}
