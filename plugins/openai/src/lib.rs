//! The OpenAI-compatible provider family for ogx: every remote inference type of OGX 1.5.0
//! whose upstream speaks the OpenAI HTTP API with a key (see [`family::Family::ALL`]).
//!
//! One plugin serves them: it forwards the client's body (with `model` already replaced by
//! the host) to `{base_url}/chat/completions`, `/completions` or `/embeddings` and returns
//! the upstream's answer as is. What differs per type (defaults, key names, refused
//! operations, listing) is in [`family`]; the config keys are in [`config`]; per-request URL
//! and credentials in [`target`]; the few body changes OGX's adapters make in [`rewrite`];
//! model lists in [`listing`]; stream events in [`sse`].
//!
//! The pure modules are tested natively:
//! `cargo test --target x86_64-unknown-linux-gnu -p ogx-plugin-openai --lib` (in `plugins/`).

pub mod config;
pub mod family;
pub mod listing;
pub mod messages;
pub mod oci;
pub mod rewrite;
pub mod sse;
pub mod target;

use ogx_provider_sdk::http::{Framing, Request};
use ogx_provider_sdk::{
    ChunkStream, Context, Descriptor, EventStream, Health, Map, Model, ModelType, NativeOperations,
    Provider, ProviderError, Settings, Value, config as host_config, log,
};

use crate::config::{Config, Resolved};
use crate::family::{
    ANTHROPIC_VERSION, ENV_VARS, Family, Listing, OCI_ENV_VARS, Operation, Refusal,
};
use crate::rewrite::UsageCoalescer;
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
    fn prepare(&self, request: Value) -> Result<Map<String, Value>, ProviderError> {
        let Value::Object(mut body) = request else {
            return Err(ProviderError::InvalidRequest(
                "the request body must be a JSON object".into(),
            ));
        };
        body.retain(|_, v| !v.is_null());
        let model = body.get("model").and_then(Value::as_str).ok_or_else(|| {
            ProviderError::InvalidRequest("the request has no `model` string".into())
        })?;
        target::check_allowed_model(&self.config, model)?;
        Ok(body)
    }

    /// The chat body as sent upstream: vLLM's default `max_tokens`, then the type's changes.
    fn prepare_chat(&self, request: Value) -> Result<Map<String, Value>, ProviderError> {
        let mut body = self.prepare(request)?;
        if let Some(max_tokens) = self.config.max_tokens
            && !body.contains_key("max_tokens")
        {
            body.insert("max_tokens".into(), max_tokens.into());
        }
        rewrite::prepare_chat(self.config.family, &mut body)?;
        Ok(body)
    }

    /// Adds the target's extra headers and credential to `request`.
    fn authorize(target: &Target, mut request: Request) -> Request {
        for (name, value) in &target.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(source) = &target.oci {
            return request.oci_signature(source.clone());
        }
        match &target.bearer {
            Some(token) => request.bearer(token.as_str()),
            None => request,
        }
    }

    fn post(target: &Target, path: &str, body: &Map<String, Value>) -> Request {
        Self::authorize(target, Request::post(target.url(path)).json(body))
    }

    /// The 501 of an operation the type's OGX adapter refuses.
    fn check_served(&self, ctx: &Context, operation: Operation) -> Result<(), ProviderError> {
        match self.config.family.refusal(operation) {
            None => Ok(()),
            Some(Refusal::Generic) => Err(ProviderError::unsupported(
                ctx.provider_type(),
                operation.route(),
            )),
            Some(Refusal::Message(message)) => Err(ProviderError::Unsupported(message.into())),
        }
    }

    fn call(
        &self,
        ctx: &Context,
        path: &str,
        body: &Map<String, Value>,
    ) -> Result<Value, ProviderError> {
        let target = self.target(ctx)?;
        Self::post(&target, path, body)
            .send()?
            .error_for_status()?
            .json()
    }

    fn stream(
        &self,
        ctx: &Context,
        path: &str,
        body: &Map<String, Value>,
    ) -> Result<ChunkStream, ProviderError> {
        let target = self.target(ctx)?;
        let response = Self::post(&target, path, body)
            .header("accept", "text/event-stream")
            .send_streaming(Framing::Sse)?
            .error_for_status()?;
        let mut frames = response.body;
        let mut finished = false;
        let mut usage = self
            .config
            .family
            .coalesces_streaming_usage()
            .then(UsageCoalescer::default);
        Ok(ChunkStream::from_text(std::iter::from_fn(move || {
            if finished {
                return None;
            }
            loop {
                let Some(frame) = frames.next() else {
                    finished = true;
                    return usage.as_mut().and_then(UsageCoalescer::finish).map(Ok);
                };
                let frame = match frame {
                    Ok(frame) => frame,
                    Err(err) => {
                        finished = true;
                        return Some(Err(err.into()));
                    }
                };
                match sse::classify(frame.event.as_deref(), &frame.data_str()) {
                    sse::Event::Chunk(chunk) if chunk.is_empty() => continue,
                    sse::Event::Chunk(chunk) => {
                        return Some(Ok(match usage.as_mut() {
                            Some(usage) => usage.pass(chunk),
                            None => chunk,
                        }));
                    }
                    sse::Event::Done => {
                        finished = true;
                        return usage.as_mut().and_then(UsageCoalescer::finish).map(Ok);
                    }
                    sse::Event::Failed(err) => {
                        finished = true;
                        return Some(Err(err));
                    }
                }
            }
        })))
    }

    fn model_from_id(&self, id: String, entry: Option<&Value>) -> Model {
        let family = self.config.family;
        if family == Family::Passthrough {
            // The downstream is another OGX-like server: trust its `custom_metadata`.
            let metadata = entry
                .and_then(|e| e.get("custom_metadata"))
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
        if family == Family::TextEmbeddingsInference {
            return Model {
                id,
                model_type: ModelType::Embedding,
                metadata: Some(Default::default()),
            };
        }
        if self.config.rerank_models.contains(&id) {
            return Model {
                id,
                model_type: ModelType::Rerank,
                metadata: None,
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
        if family == Family::OpenAi
            && let Some(limit) = rewrite::openai_max_output_tokens(&id)
        {
            let mut metadata = Map::new();
            metadata.insert("max_output_tokens".into(), limit.into());
            return Model {
                id,
                model_type: ModelType::Llm,
                metadata: Some(metadata),
            };
        }
        Model::llm(id)
    }

    /// The upstream's model ids (with their entries, where the listing has entry objects).
    fn fetch_listing(
        &self,
        ctx: &Context,
        target: &Target,
    ) -> Result<(Vec<String>, Vec<Value>), ProviderError> {
        let listing = self.config.family.listing();
        let mut url = listing::first_url(listing, &target.base_url);
        if let Some(oci) = &self.config.oci {
            url = format!("{url}?{}", listing::oci_models_query(&oci.compartment_id));
        }
        let mut ids = Vec::new();
        let mut entries = Vec::new();
        for _ in 0..listing::ANTHROPIC_MAX_PAGES {
            let request = match listing {
                // Anthropic's native API: `x-api-key`, as its SDK sends it.
                Listing::Anthropic => Request::get(url.as_str())
                    .header("x-api-key", target.bearer.clone().unwrap_or_default())
                    .header("anthropic-version", ANTHROPIC_VERSION),
                // Together's SDK is built with the configured key first.
                Listing::BareList => {
                    let key = self
                        .config
                        .key
                        .clone()
                        .or_else(|| target::credential(&self.config, ctx));
                    let request = Request::get(url.as_str());
                    match key {
                        Some(key) => request.bearer(key),
                        None => request,
                    }
                }
                _ => Self::authorize(target, Request::get(url.as_str())),
            };
            let answer: Value = request.send()?.error_for_status()?.json()?;
            let page = listing::read_page(listing, &url, &answer)?;
            ids.extend(page.ids);
            entries.extend(page.entries);
            match page.next_after {
                Some(after) => url = listing::anthropic_next_url(&target.base_url, &after),
                None => break,
            }
        }
        Ok((ids, entries))
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

    /// OGX's TEI check: `GET {root}/info` must answer a JSON object with a `model_id`.
    fn probe_tei(&self, base_url: &str) -> Health {
        let root = listing::server_root(base_url);
        let failed = |why: String| {
            Health::Error(format!(
                "Failed to verify {root} is a Text-Embeddings-Inference server: {why}"
            ))
        };
        let mut request = Request::get(format!("{root}/info"));
        if let Some(key) = &self.config.key {
            request = request.bearer(key.as_str());
        }
        match request.send() {
            Err(err) => failed(err.to_string()),
            Ok(response) if response.status != 200 => {
                failed(format!("GET /info returned HTTP {}", response.status))
            }
            Ok(response) => match response.json::<Value>() {
                Ok(body) if body.get("model_id").is_some() => Health::Ok,
                Ok(_) => failed("GET /info response is missing one of ('model_id',)".into()),
                Err(_) => failed("GET /info did not return JSON".into()),
            },
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
            env_vars: ENV_VARS
                .iter()
                .chain(OCI_ENV_VARS.iter())
                .map(|v| v.to_string())
                .collect(),
            secret_config_keys: vec!["api_key".into(), "api_token".into(), "access_token".into()],
        }
    }

    fn init(settings: Settings<Config>) -> Result<Self, ProviderError> {
        let family = Family::from_provider_type(&settings.provider_type).ok_or_else(|| {
            ProviderError::InvalidRequest(format!(
                "provider '{}': the openai-compatible plugin does not serve provider type '{}'",
                settings.provider_id, settings.provider_type
            ))
        })?;
        let env_base_url = match family.base_url_env() {
            Some(var) if settings.config.base_url.is_none() || family.fixed_base_url() => {
                host_config::env(var)
            }
            _ => None,
        };
        let mut config = settings.config;
        if family == Family::Deepseek && config.anthropic_base_url.is_none() {
            config.anthropic_base_url = host_config::env("DEEPSEEK_ANTHROPIC_BASE_URL");
        }
        if family == Family::Oci {
            // OGX's `OCIConfig` fields default to these variables.
            let from_env = |key: &mut Option<String>, var: &str| {
                if key.is_none() {
                    *key = host_config::env(var).filter(|v| !v.trim().is_empty());
                }
            };
            from_env(&mut config.oci_auth_type, "OCI_AUTH_TYPE");
            from_env(&mut config.oci_region, "OCI_REGION");
            from_env(&mut config.oci_compartment_id, "OCI_COMPARTMENT_OCID");
            from_env(&mut config.oci_config_file_path, "OCI_CONFIG_FILE_PATH");
            from_env(&mut config.oci_config_profile, "OCI_CLI_PROFILE");
        }
        let config = config::validate(family, &settings.provider_id, config, env_base_url)?;
        Ok(OpenAiCompatible { config })
    }

    fn list_models(&self, ctx: &Context) -> Result<Vec<Model>, ProviderError> {
        if self.config.requires_key() && target::credential(&self.config, ctx).is_none() {
            // OGX skips listing when there is no key to list with.
            return Ok(Vec::new());
        }
        let target = self.target(ctx)?;
        let (mut ids, entries) = match self.fetch_listing(ctx, &target) {
            Ok(found) => found,
            // OGX's NVIDIA adapter lists its rerank models even when the upstream fails.
            Err(err) if self.config.family == Family::Nvidia => {
                log::warn(&format!(
                    "Failed to list dynamic models from NVIDIA endpoint; returning only configured rerank models: {err}"
                ));
                (Vec::new(), Vec::new())
            }
            Err(err) => return Err(err),
        };
        if self.config.family == Family::OpenAi {
            ids.retain(|id| !rewrite::OPENAI_UNLISTED.iter().any(|x| id.contains(x)));
        }
        let ids = listing::merged(ids, &self.config.rerank_models);
        Ok(ids
            .into_iter()
            .filter(|id| match &self.config.allowed_models {
                Some(allowed) => allowed.contains(id),
                None => true,
            })
            .map(|id| {
                let entry = entries
                    .iter()
                    .find(|e| e.get("id").and_then(Value::as_str) == Some(id.as_str()));
                self.model_from_id(id, entry)
            })
            .collect())
    }

    fn chat_completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        self.check_served(ctx, Operation::Chat)?;
        let body = self.prepare_chat(request)?;
        self.call(ctx, "chat/completions", &body)
    }

    fn chat_completion_stream(
        &self,
        ctx: &Context,
        request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        self.check_served(ctx, Operation::Chat)?;
        let body = self.prepare_chat(request)?;
        self.stream(ctx, "chat/completions", &body)
    }

    fn completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        self.check_served(ctx, Operation::Completions)?;
        let mut body = self.prepare(request)?;
        rewrite::prepare_completion(self.config.family, &mut body);
        self.call(ctx, "completions", &body)
    }

    fn completion_stream(
        &self,
        ctx: &Context,
        request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        self.check_served(ctx, Operation::Completions)?;
        let mut body = self.prepare(request)?;
        rewrite::prepare_completion(self.config.family, &mut body);
        self.stream(ctx, "completions", &body)
    }

    fn embeddings(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        self.check_served(ctx, Operation::Embeddings)?;
        let body = self.prepare(request)?;
        rewrite::prepare_embeddings(self.config.family, &body)?;
        let mut answer = self.call(ctx, "embeddings", &body)?;
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        rewrite::finish_embeddings(self.config.family, model, &mut answer);
        Ok(answer)
    }

    /// The types that speak Messages natively serve these ([`messages`]); the others answer
    /// `unsupported` and the host translates.
    fn native_operations() -> NativeOperations {
        NativeOperations {
            messages: true,
            count_tokens: true,
        }
    }

    fn messages(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        messages::create(&self.config, ctx, request)
    }

    fn messages_stream(&self, ctx: &Context, request: Value) -> Result<EventStream, ProviderError> {
        messages::stream(&self.config, ctx, request)
    }

    fn count_tokens(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        messages::count_tokens(&self.config, ctx, request)
    }

    fn health(&self, _ctx: &Context) -> Health {
        let Some(base_url) = self.config.base_url.as_deref() else {
            return Health::NotImplemented;
        };
        match self.config.family {
            // OGX's vLLM adapter probes the unauthenticated `/health` next to `/v1`.
            Family::Vllm => Self::probe(target::join_relative(base_url, "health")),
            // OGX's Ollama adapter asks the native, unauthenticated `/api/version`.
            Family::Ollama => {
                let base = base_url.trim_end_matches('/');
                let host = base.strip_suffix("/v1").unwrap_or(base);
                Self::probe(format!("{host}/api/version"))
            }
            Family::TextEmbeddingsInference => self.probe_tei(base_url),
            // The other OGX adapters have no health check.
            _ => Health::NotImplemented,
        }
    }
}

ogx_provider_sdk::export_provider!(OpenAiCompatible);
