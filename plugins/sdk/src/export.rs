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
use crate::{ChunkStream, Context, Health, ModelType, Provider, ProviderError, Settings};

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

impl From<ProviderError> for wit_types::ProviderError {
    fn from(err: ProviderError) -> Self {
        use wit_types::ProviderError as W;
        match err {
            ProviderError::InvalidRequest(m) => W::InvalidRequest(m),
            ProviderError::Unauthenticated(m) => W::Unauthenticated(m),
            ProviderError::PermissionDenied(m) => W::PermissionDenied(m),
            ProviderError::NotFound(m) => W::NotFound(m),
            ProviderError::RateLimited(m) => W::RateLimited(m),
            ProviderError::Upstream { status, message } => {
                W::Upstream(wit_types::UpstreamError { status, message })
            }
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
        let inner = err.into_inner();
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
        let ctx = Context::from_host(
            ctx.request_id,
            ctx.provider_data,
            ctx.deadline_ms,
            &state.provider_id,
            &state.provider_type,
        );
        call(provider, &ctx)
    })
}

fn parse_request(request_json: &str) -> Result<Value, ProviderError> {
    serde_json::from_str(request_json).map_err(|err| {
        ProviderError::InvalidRequest(format!("the request body is not valid JSON: {err}"))
    })
}

fn json_call<P: Provider>(
    ctx: wit_types::RequestContext,
    request_json: String,
    call: impl FnOnce(&P, &Context, Value) -> Result<Value, ProviderError>,
) -> Result<String, wit_types::ProviderError> {
    let request = parse_request(&request_json)?;
    Ok(with_provider::<P, _>(ctx, |p, ctx| call(p, ctx, request))?.to_string())
}

fn stream_call<P: Provider>(
    ctx: wit_types::RequestContext,
    request_json: String,
    call: impl FnOnce(&P, &Context, Value) -> Result<ChunkStream, ProviderError>,
) -> Result<wit::ChatStream, wit_types::ProviderError> {
    let request = parse_request(&request_json)?;
    let stream = with_provider::<P, _>(ctx, |p, ctx| call(p, ctx, request))?;
    Ok(wit::ChatStream::new(StreamResource(RefCell::new(stream))))
}

impl<P: Provider> wit::Guest for Export<P> {
    type ChatStream = StreamResource;

    fn describe() -> wit::Descriptor {
        let d = P::describe();
        wit::Descriptor {
            name: d.name,
            version: d.version,
            provider_types: d.provider_types,
            outbound_hosts: d.outbound_hosts,
            env_vars: d.env_vars,
            secret_config_keys: d.secret_config_keys,
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
        request_json: String,
    ) -> Result<String, wit_types::ProviderError> {
        json_call::<P>(ctx, request_json, |p, ctx, req| p.chat_completion(ctx, req))
    }

    fn chat_completion_stream(
        ctx: wit_types::RequestContext,
        request_json: String,
    ) -> Result<wit::ChatStream, wit_types::ProviderError> {
        stream_call::<P>(ctx, request_json, |p, ctx, req| {
            p.chat_completion_stream(ctx, req)
        })
    }

    fn completion(
        ctx: wit_types::RequestContext,
        request_json: String,
    ) -> Result<String, wit_types::ProviderError> {
        json_call::<P>(ctx, request_json, |p, ctx, req| p.completion(ctx, req))
    }

    fn completion_stream(
        ctx: wit_types::RequestContext,
        request_json: String,
    ) -> Result<wit::ChatStream, wit_types::ProviderError> {
        stream_call::<P>(ctx, request_json, |p, ctx, req| {
            p.completion_stream(ctx, req)
        })
    }

    fn embeddings(
        ctx: wit_types::RequestContext,
        request_json: String,
    ) -> Result<String, wit_types::ProviderError> {
        json_call::<P>(ctx, request_json, |p, ctx, req| p.embeddings(ctx, req))
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
            assert!(message.starts_with(want), "{message}");
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
