//! The OpenAI-compatible provider family for ogx: `remote::openai`, `remote::vllm`,
//! `remote::ollama`, `remote::llama-cpp-server`, `remote::passthrough`, `remote::groq`,
//! `remote::fireworks`, `remote::cerebras`, `remote::llama-openai-compat` and
//! `remote::runpod`.
//!
//! These upstreams all speak the OpenAI HTTP API, so one plugin serves them: it forwards the
//! client's body (with `model` already replaced by the host) to `{base_url}/chat/completions`,
//! `/completions` or `/embeddings` and returns the upstream's answer as is. What differs per
//! type (defaults, key names, refused operations) is in [`family`]; the config keys are in
//! [`config`]; per-request URL and credentials in [`target`]; stream events in [`sse`].
//!
//! The pure modules are tested natively:
//! `cargo test --target x86_64-unknown-linux-gnu -p ogx-plugin-openai --lib` (in `plugins/`).

pub mod config;
pub mod family;
pub mod sse;
pub mod target;

use ogx_provider_sdk::http::{Framing, Request};
use ogx_provider_sdk::{
    ChunkStream, Context, Descriptor, Health, Model, ModelType, Provider, ProviderError, Settings,
    Value, config as host_config,
};

use crate::config::{Config, Resolved};
use crate::family::{CEREBRAS_BASE_URL_ENV, Family};
use crate::target::Target;

/// One provider entry of the family, ready to serve requests.
pub struct OpenAiCompatible {
    config: Resolved,
}

impl OpenAiCompatible {
    fn target(&self, ctx: &Context) -> Result<Target, ProviderError> {
        target::resolve(&self.config, ctx)
    }

    /// The request body as sent upstream: top-level nulls dropped (OGX sends only the
    /// parameters that are set), the model checked against `allowed_models`.
    fn prepare(&self, mut request: Value) -> Result<Value, ProviderError> {
        let Value::Object(body) = &mut request else {
            return Err(ProviderError::InvalidRequest(
                "the request body must be a JSON object".into(),
            ));
        };
        body.retain(|_, v| !v.is_null());
        let model = body.get("model").and_then(Value::as_str).ok_or_else(|| {
            ProviderError::InvalidRequest("the request has no `model` string".into())
        })?;
        target::check_allowed_model(&self.config, model)?;
        Ok(request)
    }

    /// Adds the target's extra headers and credential to `request`.
    fn authorize(target: &Target, mut request: Request) -> Request {
        for (name, value) in &target.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        match &target.bearer {
            Some(token) => request.bearer(token.as_str()),
            None => request,
        }
    }

    fn post(target: &Target, path: &str, body: &Value) -> Request {
        Self::authorize(target, Request::post(target.url(path)).json(body))
    }

    /// The 501 of the types whose OGX adapter refuses `/v1/completions`.
    fn check_completions_served(&self, ctx: &Context) -> Result<(), ProviderError> {
        if self.config.family.refuses_completions() {
            return Err(ProviderError::unsupported(
                ctx.provider_type(),
                "/v1/completions",
            ));
        }
        Ok(())
    }

    fn call(&self, ctx: &Context, path: &str, request: Value) -> Result<Value, ProviderError> {
        let target = self.target(ctx)?;
        let body = self.prepare(request)?;
        Self::post(&target, path, &body)
            .send()?
            .error_for_status()?
            .json()
    }

    fn stream(
        &self,
        ctx: &Context,
        path: &str,
        request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        let target = self.target(ctx)?;
        let body = self.prepare(request)?;
        let response = Self::post(&target, path, &body)
            .header("accept", "text/event-stream")
            .send_streaming(Framing::Sse)?
            .error_for_status()?;
        let mut frames = response.body;
        let mut finished = false;
        Ok(ChunkStream::from_text(std::iter::from_fn(move || {
            if finished {
                return None;
            }
            loop {
                let frame = match frames.next()? {
                    Ok(frame) => frame,
                    Err(err) => {
                        finished = true;
                        return Some(Err(err.into()));
                    }
                };
                match sse::classify(frame.event.as_deref(), &frame.data_str()) {
                    sse::Event::Chunk(chunk) if chunk.is_empty() => continue,
                    sse::Event::Chunk(chunk) => return Some(Ok(chunk)),
                    sse::Event::Done => {
                        finished = true;
                        return None;
                    }
                    sse::Event::Failed(err) => {
                        finished = true;
                        return Some(Err(err));
                    }
                }
            }
        })))
    }

    fn model_from_id(&self, id: String, entry: &Value) -> Model {
        let family = self.config.family;
        if family == Family::Passthrough {
            // The downstream is another OGX-like server: trust its `custom_metadata`.
            let metadata = entry
                .get("custom_metadata")
                .and_then(Value::as_object)
                .cloned();
            let model_type = match metadata
                .as_ref()
                .and_then(|m| m.get("model_type"))
                .and_then(Value::as_str)
            {
                Some("embedding") => ModelType::Embedding,
                Some("rerank") => ModelType::Rerank,
                _ => ModelType::Llm,
            };
            return Model {
                id,
                model_type,
                metadata,
            };
        }
        if let Some(metadata) = family.embedding_metadata(&id) {
            return Model {
                id,
                model_type: ModelType::Embedding,
                metadata: Some(metadata),
            };
        }
        if family == Family::Vllm {
            // vLLM's /models has no task field; OGX classifies by name.
            let lower = id.to_lowercase();
            if lower.contains("embed") {
                return Model {
                    id,
                    model_type: ModelType::Embedding,
                    metadata: Some(Default::default()),
                };
            }
            if lower.contains("rerank") {
                return Model {
                    id,
                    model_type: ModelType::Rerank,
                    metadata: None,
                };
            }
        }
        Model::llm(id)
    }

    fn probe(url: String) -> Health {
        match Request::get(url.as_str()).send() {
            Ok(response) if response.is_success() => Health::Ok,
            Ok(response) => Health::Error(format!(
                "Health check failed: {url} answered {}",
                response.status
            )),
            Err(err) => Health::Error(format!("Health check failed: {err}")),
        }
    }
}

impl Provider for OpenAiCompatible {
    type Config = Config;

    fn describe() -> Descriptor {
        Descriptor {
            name: "openai-compatible".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            provider_types: Family::ALL
                .iter()
                .map(|f| f.provider_type().to_string())
                .collect(),
            // The upstream is whatever the operator configures (or, for passthrough, what
            // the caller names); the operator's egress policy still applies.
            outbound_hosts: vec!["*".into()],
            env_vars: vec![CEREBRAS_BASE_URL_ENV.into()],
            secret_config_keys: vec!["api_key".into(), "api_token".into()],
        }
    }

    fn init(settings: Settings<Config>) -> Result<Self, ProviderError> {
        let family = Family::from_provider_type(&settings.provider_type).ok_or_else(|| {
            ProviderError::InvalidRequest(format!(
                "provider '{}': the openai-compatible plugin does not serve provider type '{}'",
                settings.provider_id, settings.provider_type
            ))
        })?;
        let cerebras_base_url = match family {
            Family::Cerebras if settings.config.base_url.is_none() => {
                host_config::env(CEREBRAS_BASE_URL_ENV)
            }
            _ => None,
        };
        let config = config::validate(
            family,
            &settings.provider_id,
            settings.config,
            cerebras_base_url,
        )?;
        Ok(OpenAiCompatible { config })
    }

    fn list_models(&self, ctx: &Context) -> Result<Vec<Model>, ProviderError> {
        let family = self.config.family;
        if family.requires_key() && target::credential(&self.config, ctx).is_none() {
            // OGX skips listing when there is no key to list with.
            return Ok(Vec::new());
        }
        let target = self.target(ctx)?;
        let listing: Value = Self::authorize(&target, Request::get(target.url("models")))
            .send()?
            .error_for_status()?
            .json()?;
        let entries = listing
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                ProviderError::BadGateway(format!(
                    "{} answered a model list without a `data` array",
                    target.url("models")
                ))
            })?;
        Ok(entries
            .iter()
            .filter_map(|entry| {
                let id = entry.get("id")?.as_str()?.to_string();
                match &self.config.allowed_models {
                    Some(allowed) if !allowed.contains(&id) => None,
                    _ => Some(self.model_from_id(id, entry)),
                }
            })
            .collect())
    }

    fn chat_completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let request = self.with_max_tokens(request);
        self.call(ctx, "chat/completions", request)
    }

    fn chat_completion_stream(
        &self,
        ctx: &Context,
        request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        let request = self.with_max_tokens(request);
        self.stream(ctx, "chat/completions", request)
    }

    fn completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        self.check_completions_served(ctx)?;
        self.call(ctx, "completions", request)
    }

    fn completion_stream(
        &self,
        ctx: &Context,
        request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        self.check_completions_served(ctx)?;
        self.stream(ctx, "completions", request)
    }

    fn embeddings(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        if self.config.family.refuses_embeddings() {
            return Err(ProviderError::unsupported(
                ctx.provider_type(),
                "/v1/embeddings",
            ));
        }
        self.call(ctx, "embeddings", request)
    }

    fn health(&self, _ctx: &Context) -> Health {
        let Some(base_url) = self.config.base_url.as_deref() else {
            return Health::NotImplemented;
        };
        match self.config.family {
            // OGX's vLLM adapter probes the unauthenticated `/health` next to `/v1`.
            Family::Vllm => Self::probe(target::join_relative(base_url, "health")),
            // OGX's Ollama adapter asks the native API for running models.
            Family::Ollama => {
                let base = base_url.trim_end_matches('/');
                let host = base.strip_suffix("/v1").unwrap_or(base);
                Self::probe(format!("{host}/api/ps"))
            }
            // The other OGX adapters have no health check.
            _ => Health::NotImplemented,
        }
    }
}

impl OpenAiCompatible {
    /// vLLM: a chat request without `max_tokens` gets the configured default.
    fn with_max_tokens(&self, mut request: Value) -> Value {
        if let (Some(max_tokens), Value::Object(body)) = (self.config.max_tokens, &mut request)
            && body.get("max_tokens").is_none_or(Value::is_null)
        {
            body.insert("max_tokens".into(), max_tokens.into());
        }
        request
    }
}

ogx_provider_sdk::export_provider!(OpenAiCompatible);
