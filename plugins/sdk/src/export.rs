//! The glue between the WIT `provider` export and a [`Provider`]: what
//! [`crate::export_provider!`] wires up. Not part of the public API.
//!
//! `init` keeps the provider in a per-instance slot; the host makes a fresh instance for every
//! API request, so the slot never serves two requests. An operation called before `init` is a
//! host bug and answers `internal`.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use serde_json::Value;

use crate::__bindings::exports::ogx::provider::provider as wit;
use crate::__bindings::ogx::provider::types as wit_types;
use crate::{
    ChunkStream, Context, EventStream, Health, ModelTarget, ModelType, Provider, ProviderError,
    Settings,
};

struct Initialised {
    provider: Box<dyn Any>,
    provider_id: String,
    provider_type: String,
}

thread_local! {
    static INSTANCE: RefCell<Option<Initialised>> = const { RefCell::new(None) };
}

/// The type the export macro registers: `Export<MyProvider>` implements the WIT `Guest` trait.
#[doc(hidden)]
pub struct Export<P>(PhantomData<P>);

/// The resource behind `chat-stream`: a [`ChunkStream`] pulled by the host.
#[doc(hidden)]
pub struct StreamResource(RefCell<ChunkStream>);

impl wit::GuestChatStream for StreamResource {
    fn next(&self) -> Result<Option<String>, wit_types::ProviderError> {
        match self.0.borrow_mut().next() {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(chunk)),
            Some(Err(err)) => Err(err.into()),
        }
    }
}

/// The resource behind `event-stream` (what `messages-stream` returns): an [`EventStream`]
/// pulled by the host.
#[doc(hidden)]
pub struct EventResource(RefCell<EventStream>);

impl wit::GuestEventStream for EventResource {
    fn next(&self) -> Result<Option<wit::MessagesEvent>, wit_types::ProviderError> {
        match self.0.borrow_mut().next() {
            None => Ok(None),
            Some(Ok(event)) => Ok(Some(wit::MessagesEvent {
                event_type: event.event_type,
                data: event.data.to_string(),
            })),
            Some(Err(err)) => Err(err.into()),
        }
    }
}

impl From<ProviderError> for wit_types::ProviderError {
    fn from(err: ProviderError) -> Self {
        use wit_types::ProviderError as W;
        match err {
            ProviderError::InvalidRequest(m) => W::InvalidRequest(m),
            ProviderError::Unauthenticated(m) => W::Unauthenticated(m),
            ProviderError::PermissionDenied(m) => W::PermissionDenied(m),
            ProviderError::NotFound(m) => W::NotFound(m),
            ProviderError::RateLimited(message) => W::RateLimited(wit_types::RateLimit {
                message,
                retry_after_seconds: None,
            }),
            ProviderError::RetryAfter { message, seconds } => {
                W::RateLimited(wit_types::RateLimit {
                    message,
                    retry_after_seconds: Some(seconds),
                })
            }
            ProviderError::Upstream { status, message } => W::Upstream(wit_types::UpstreamError {
                status,
                message,
                headers: Vec::new(),
            }),
            ProviderError::UpstreamWithHeaders {
                status,
                message,
                headers,
            } => W::Upstream(wit_types::UpstreamError {
                status,
                message,
                headers,
            }),
            ProviderError::BadGateway(m) => W::BadGateway(m),
            ProviderError::Timeout(m) => W::Timeout(m),
            ProviderError::Unsupported(m) => W::Unsupported(m),
            ProviderError::Internal(m) => W::Internal(m),
        }
    }
}

/// Deserializes a provider's `config:` block; a failure names the provider and the field.
pub(crate) fn parse_config<C: serde::de::DeserializeOwned>(
    provider_id: &str,
    provider_type: &str,
    config_json: &str,
) -> Result<C, ProviderError> {
    let config_json = match config_json.trim() {
        "" | "null" => "{}",
        json => json,
    };
    let mut de = serde_json::Deserializer::from_str(config_json);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        // The position in a one-line JSON document helps nobody reading a YAML config.
        let inner = match inner.rfind(" at line ") {
            Some(at) => &inner[..at],
            None => &inner,
        };
        let field = if path == "." {
            String::new()
        } else {
            format!("field `{path}`: ")
        };
        ProviderError::InvalidRequest(format!(
            "Invalid config for provider '{provider_id}' ({provider_type}): {field}{inner}"
        ))
    })
}

fn with_provider<P: Provider, R>(
    ctx: wit_types::RequestContext,
    call: impl FnOnce(&P, &Context) -> Result<R, ProviderError>,
) -> Result<R, ProviderError> {
    INSTANCE.with_borrow(|slot| {
        let Some(state) = slot.as_ref() else {
            return Err(ProviderError::Internal(
                "the host called the plugin before init".into(),
            ));
        };
        let provider = state
            .provider
            .downcast_ref::<P>()
            .ok_or_else(|| ProviderError::Internal("plugin state has the wrong type".into()))?;
        let model = ctx.model.map(|m| ModelTarget {
            id: m.id,
            provider_model_id: m.provider_model_id,
            metadata: m
                .metadata_json
                .and_then(|json| Context::json_object(&json))
                .unwrap_or_default(),
        });
        let mut context = Context::from_host(
            ctx.request_id,
            ctx.provider_data,
            ctx.deadline_ms,
            &state.provider_id,
            &state.provider_type,
        );
        if let Some(model) = model {
            context = context.with_model(model);
        }
        call(provider, &context)
    })
}

/// The request body as JSON, with `model` set to the upstream id the host resolved (the host
/// may pass the client's body as it arrived).
fn parse_request(body: &[u8], ctx: &Context) -> Result<Value, ProviderError> {
    let mut request: Value = serde_json::from_slice(body).map_err(|err| {
        ProviderError::InvalidRequest(format!("the request body is not valid JSON: {err}"))
    })?;
    if let (Some(model), Value::Object(fields)) = (ctx.model(), &mut request) {
        fields.insert(
            "model".into(),
            Value::String(model.provider_model_id.clone()),
        );
    }
    Ok(request)
}

fn body_call<P: Provider>(
    ctx: wit_types::RequestContext,
    body: Vec<u8>,
    call: impl FnOnce(&P, &Context, Value) -> Result<Value, ProviderError>,
) -> Result<Vec<u8>, wit_types::ProviderError> {
    let answer = with_provider::<P, _>(ctx, |p, ctx| call(p, ctx, parse_request(&body, ctx)?))?;
    Ok(serde_json::to_vec(&answer).map_err(|err| {
        ProviderError::Internal(format!("the answer cannot be serialized: {err}"))
    })?)
}

fn stream_call<P: Provider>(
    ctx: wit_types::RequestContext,
    body: Vec<u8>,
    call: impl FnOnce(&P, &Context, Value) -> Result<ChunkStream, ProviderError>,
) -> Result<wit::ChatStream, wit_types::ProviderError> {
    let stream = with_provider::<P, _>(ctx, |p, ctx| call(p, ctx, parse_request(&body, ctx)?))?;
    Ok(wit::ChatStream::new(StreamResource(RefCell::new(stream))))
}

impl<P: Provider> wit::Guest for Export<P> {
    type ChatStream = StreamResource;
    type EventStream = EventResource;

    fn describe() -> wit::Descriptor {
        let d = P::describe();
        let native = P::native_operations();
        let mut native_operations = wit::NativeOperations::empty();
        if native.messages {
            native_operations = native_operations | wit::NativeOperations::MESSAGES;
        }
        if native.count_tokens {
            native_operations = native_operations | wit::NativeOperations::COUNT_TOKENS;
        }
        wit::Descriptor {
            name: d.name,
            version: d.version,
            provider_types: d.provider_types,
            outbound_hosts: d.outbound_hosts,
            env_vars: d.env_vars,
            secret_config_keys: d.secret_config_keys,
            native_operations,
        }
    }

    fn init(settings: wit::ProviderSettings) -> Result<(), wit_types::ProviderError> {
        let config = parse_config::<P::Config>(
            &settings.provider_id,
            &settings.provider_type,
            &settings.config_json,
        )?;
        let provider = P::init(Settings {
            provider_id: settings.provider_id.clone(),
            provider_type: settings.provider_type.clone(),
            config,
        })?;
        INSTANCE.set(Some(Initialised {
            provider: Box::new(provider),
            provider_id: settings.provider_id,
            provider_type: settings.provider_type,
        }));
        Ok(())
    }

    fn list_models(
        ctx: wit_types::RequestContext,
    ) -> Result<Vec<wit_types::ModelInfo>, wit_types::ProviderError> {
        let models = with_provider::<P, _>(ctx, |p, ctx| p.list_models(ctx))?;
        Ok(models
            .into_iter()
            .map(|m| wit_types::ModelInfo {
                id: m.id,
                model_type: match m.model_type {
                    ModelType::Llm => wit_types::ModelType::Llm,
                    ModelType::Embedding => wit_types::ModelType::Embedding,
                    ModelType::Rerank => wit_types::ModelType::Rerank,
                },
                metadata_json: m.metadata.map(|map| Value::Object(map).to_string()),
            })
            .collect())
    }

    fn chat_completion(
        ctx: wit_types::RequestContext,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, wit_types::ProviderError> {
        body_call::<P>(ctx, body, |p, ctx, req| p.chat_completion(ctx, req))
    }

    fn chat_completion_stream(
        ctx: wit_types::RequestContext,
        body: Vec<u8>,
    ) -> Result<wit::ChatStream, wit_types::ProviderError> {
        stream_call::<P>(ctx, body, |p, ctx, req| p.chat_completion_stream(ctx, req))
    }

    fn completion(
        ctx: wit_types::RequestContext,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, wit_types::ProviderError> {
        body_call::<P>(ctx, body, |p, ctx, req| p.completion(ctx, req))
    }

    fn completion_stream(
        ctx: wit_types::RequestContext,
        body: Vec<u8>,
    ) -> Result<wit::ChatStream, wit_types::ProviderError> {
        stream_call::<P>(ctx, body, |p, ctx, req| p.completion_stream(ctx, req))
    }

    fn embeddings(
        ctx: wit_types::RequestContext,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, wit_types::ProviderError> {
        body_call::<P>(ctx, body, |p, ctx, req| p.embeddings(ctx, req))
    }

    fn messages(
        ctx: wit_types::RequestContext,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, wit_types::ProviderError> {
        body_call::<P>(ctx, body, |p, ctx, req| p.messages(ctx, req))
    }

    fn messages_stream(
        ctx: wit_types::RequestContext,
        body: Vec<u8>,
    ) -> Result<wit::EventStream, wit_types::ProviderError> {
        let stream = with_provider::<P, _>(ctx, |p, ctx| {
            p.messages_stream(ctx, parse_request(&body, ctx)?)
        })?;
        Ok(wit::EventStream::new(EventResource(RefCell::new(stream))))
    }

    fn count_tokens(
        ctx: wit_types::RequestContext,
        body: Vec<u8>,
    ) -> Result<Vec<u8>, wit_types::ProviderError> {
        body_call::<P>(ctx, body, |p, ctx, req| p.count_tokens(ctx, req))
    }

    fn health(ctx: wit_types::RequestContext) -> wit_types::HealthStatus {
        let health = with_provider::<P, _>(ctx, |p, ctx| Ok(p.health(ctx)))
            .unwrap_or_else(|err| Health::Error(err.to_string()));
        let (state, message) = match health {
            Health::Ok => (wit_types::HealthState::Ok, None),
            Health::Error(m) => (wit_types::HealthState::Error, Some(m)),
            Health::NotImplemented => (
                wit_types::HealthState::NotImplemented,
                Some("Provider does not implement health check".to_string()),
            ),
        };
        wit_types::HealthStatus { state, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Config {
        base_url: String,
        #[serde(default)]
        max_tokens: u32,
    }

    #[test]
    fn config_errors_name_the_provider_and_the_field() {
        let cases = [
            (
                r#"{"max_tokens": 1}"#,
                "Invalid config for provider 'vllm0' (remote::vllm): missing field `base_url`",
            ),
            (
                r#"{"base_url": "u", "max_tokens": "many"}"#,
                "Invalid config for provider 'vllm0' (remote::vllm): field `max_tokens`: invalid type: string \"many\", expected u32",
            ),
        ];
        for (json, want) in cases {
            let err = parse_config::<Config>("vllm0", "remote::vllm", json).unwrap_err();
            let ProviderError::InvalidRequest(message) = err else {
                panic!("{err:?}")
            };
            assert_eq!(message, want);
        }
    }

    #[test]
    fn unknown_keys_and_empty_configs_are_accepted() {
        let config: Config =
            parse_config("p", "t", r#"{"base_url": "u", "surprise": true}"#).unwrap();
        assert_eq!(config.base_url, "u");
        #[derive(serde::Deserialize)]
        struct Empty {}
        for json in ["", "null", "{}"] {
            parse_config::<Empty>("p", "t", json).unwrap();
        }
    }
}
