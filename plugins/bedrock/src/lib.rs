//! The `remote::bedrock` provider: Amazon Bedrock, authenticated per request with a bearer
//! token or with AWS SigV4 (signing name `bedrock`) done by the host, which also resolves,
//! caches and refreshes the AWS credentials: no AWS secret ever enters the plugin.
//!
//! Chat goes to one of two Bedrock APIs, chosen per model ([`routing`]): Converse and
//! ConverseStream ([`converse`]) for every model but the `openai.gpt-oss-*` family, which
//! keeps Bedrock's OpenAI-compatible endpoint (`POST {runtime}/openai/v1/chat/completions`,
//! bodies passed through apart from dropping top-level nulls, so reasoning fields survive).
//! Embeddings go through InvokeModel ([`embeddings`]: Titan and Cohere); `/v1/completions`
//! is refused (neither API has it).
//!
//! `/v1/messages` and `count_tokens` are served natively for Claude models ([`messages`]:
//! InvokeModel, InvokeModelWithResponseStream and CountTokens with Anthropic's body); for
//! every other model the plugin answers `unsupported` and the host translates.
//!
//! - [`config`]: the config block and its env fallbacks, resolved at `init`;
//! - [`auth`]: bearer or SigV4, decided per request;
//! - [`errors`]: the client-facing auth messages (OGX's sanitized errors);
//! - [`sse`]: stream decoding of the OpenAI-compatible path; [`models`]: the model lists.
//!
//! The model list is fetched only with `refresh_models: true`; its failures are returned
//! and the host logs them as warnings (a failing inference-profile list only drops the
//! profiles).
//!
//! The pure modules are tested natively (in `plugins/`):
//! `cargo test --target x86_64-unknown-linux-gnu -p ogx-plugin-bedrock --lib`.

#![warn(missing_docs)]

pub mod auth;
pub mod base64;
pub mod config;
pub mod converse;
pub mod embeddings;
pub mod errors;
pub mod messages;
pub mod models;
pub mod routing;
pub mod sse;

use std::collections::VecDeque;

use ogx_provider_sdk::http::{Framing, Request};
use ogx_provider_sdk::{
    ChunkStream, Context, Descriptor, EventStream, Map, Model, NativeOperations, Provider,
    ProviderError, Settings, Value, config as host_config, log, python_repr,
};

use crate::auth::AuthMode;
use crate::config::Resolved;
use crate::routing::Api;

/// The AWS signing name of both the runtime and the control plane (not `bedrock-runtime`).
pub const SIGNING_NAME: &str = "bedrock";

/// One `remote::bedrock` provider entry, ready to serve a request.
pub struct Bedrock {
    config: Resolved,
}

impl Bedrock {
    /// `request` with the configured headers, the auth of `mode` and the time limit.
    fn finish(&self, ctx: &Context, mut request: Request, mode: &AuthMode) -> Request {
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let time_left = ctx.time_left();
        request = request.timeout(self.config.timeout.map_or(time_left, |t| t.min(time_left)));
        match mode {
            AuthMode::Bearer { token, .. } => request.bearer(token.as_str()),
            AuthMode::SigV4 => request.aws_sigv4(
                SIGNING_NAME,
                self.config.region.as_str(),
                self.config.credentials.clone(),
            ),
        }
    }

    /// The body sent upstream: top-level nulls dropped, the model checked.
    fn prepare(&self, mut request: Value) -> Result<(Value, String), ProviderError> {
        let Value::Object(body) = &mut request else {
            return Err(ProviderError::InvalidRequest(
                "the request body must be a JSON object".into(),
            ));
        };
        body.retain(|_, v| !v.is_null());
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(allowed) = &self.config.allowed_models
            && !allowed.iter().any(|m| m == model)
        {
            return Err(ProviderError::InvalidRequest(format!(
                "Model '{model}' is not in the allowed models list. Allowed models: {}",
                python_repr(&Value::from(allowed.clone()))
            )));
        }
        let model = model.to_string();
        Ok((request, model))
    }

    /// A Converse call for the request `ctx` serves.
    fn converse_call<'a>(
        &'a self,
        ctx: &'a Context,
        mode: &'a AuthMode,
        model: &str,
        finish: &'a dyn Fn(Request) -> Request,
    ) -> converse::Call<'a> {
        converse::Call {
            runtime_url: &self.config.runtime_url,
            region: &self.config.region,
            mode,
            settings: self.config.model_rules.for_model(model),
            request_id: ctx.request_id(),
            time_left: ctx.time_left(),
            finish,
        }
    }

    /// The checked Messages body and its model, when `/v1/messages` for it is served
    /// natively; `unsupported` (the host translates) when it is not.
    fn native_messages(
        &self,
        ctx: &Context,
        request: Value,
    ) -> Result<(Map<String, Value>, String), ProviderError> {
        let (body, model) = self.prepare(request)?;
        if !self.config.model_rules.native_messages(&model) {
            return Err(ProviderError::unsupported(
                ctx.provider_type(),
                &format!("native /v1/messages for {model}"),
            ));
        }
        let Value::Object(body) = body else {
            unreachable!("prepare checks the body is an object")
        };
        Ok((body, model))
    }

    /// Serves one native Messages operation for the request `ctx` serves.
    fn with_messages_call<T>(
        &self,
        ctx: &Context,
        serve: impl FnOnce(&messages::Call) -> Result<T, ProviderError>,
    ) -> Result<T, ProviderError> {
        let mode = auth::decide(self.config.bearer_token.as_deref(), ctx.provider_data());
        let finish = |r: Request| self.finish(ctx, r, &mode);
        serve(&messages::Call {
            runtime_url: &self.config.runtime_url,
            region: &self.config.region,
            mode: &mode,
            finish: &finish,
        })
    }

    /// The error for an upstream error status, logged for the operator (the body is
    /// Bedrock's own error text, never a credential).
    fn upstream_error(&self, status: u16, body: &[u8], mode: &AuthMode) -> ProviderError {
        if status == 401 || status == 403 {
            let how = match mode {
                AuthMode::SigV4 => "a SigV4-signed request",
                AuthMode::Bearer {
                    from_request: true, ..
                } => "a per-request bearer token",
                AuthMode::Bearer {
                    from_request: false,
                    ..
                } => "the configured bearer token",
            };
            let text = String::from_utf8_lossy(body);
            log::warn(&format!(
                "the upstream refused {how} in region {} with {status}: {}",
                self.config.region,
                text.chars().take(300).collect::<String>()
            ));
        }
        errors::upstream_error(status, body, mode, &self.config.region)
    }

    /// A GET of a model list with the request's auth; an error status is an error.
    fn get_json(&self, ctx: &Context, url: &str, mode: &AuthMode) -> Result<Value, ProviderError> {
        let response = self
            .finish(ctx, Request::get(url), mode)
            .send()
            .map_err(|err| errors::transport_error(err, mode))?;
        if !response.is_success() {
            return Err(self.upstream_error(response.status, &response.body, mode));
        }
        response.json()
    }

    fn listed_models(&self, ctx: &Context) -> Result<Vec<Model>, ProviderError> {
        let mode = auth::decide(self.config.bearer_token.as_deref(), ctx.provider_data());
        let (url, parse): (&str, ListParser) = match mode {
            AuthMode::SigV4 => (
                &self.config.foundation_models_url,
                models::from_foundation_models,
            ),
            AuthMode::Bearer { .. } => (&self.config.mantle_models_url, models::from_openai_list),
        };
        let mut listed = parse(&self.get_json(ctx, url, &mode)?)
            .map_err(|why| ProviderError::BadGateway(format!("{url}: {why}")))?;
        if mode == AuthMode::SigV4 {
            match self.inference_profiles(ctx, &mode) {
                Ok(profiles) => listed.extend(profiles),
                Err(err) => log::warn(&format!(
                    "listing inference profiles failed, listing foundation models only: {err}"
                )),
            }
        }
        Ok(models::allowed(
            listed,
            self.config.allowed_models.as_deref(),
        ))
    }

    /// Every page of `ListInferenceProfiles` (at most [`MAX_PROFILE_PAGES`]).
    fn inference_profiles(
        &self,
        ctx: &Context,
        mode: &AuthMode,
    ) -> Result<Vec<Model>, ProviderError> {
        let mut all = Vec::new();
        let mut next: Option<String> = None;
        for _ in 0..MAX_PROFILE_PAGES {
            let mut url = self.config.inference_profiles_url.clone();
            if let Some(token) = &next {
                url.push_str("&nextToken=");
                url.push_str(&routing::path_segment(token));
            }
            let body = self.get_json(ctx, &url, mode)?;
            let (page, token) = models::from_inference_profiles(&body)
                .map_err(|why| ProviderError::BadGateway(format!("{url}: {why}")))?;
            all.extend(page);
            next = token;
            if next.is_none() {
                break;
            }
        }
        Ok(all)
    }

    /// Embeddings of `model` through InvokeModel.
    fn invoke_embeddings(
        &self,
        ctx: &Context,
        request: &Value,
        model: &str,
    ) -> Result<Value, ProviderError> {
        let family = embeddings::Family::of(model).ok_or_else(|| {
            ProviderError::InvalidRequest(format!(
                "Model '{model}' is not an embedding model this provider can call: Bedrock embeddings support Amazon Titan Text Embeddings (amazon.titan-embed-text-*) and Cohere Embed (cohere.embed-*)"
            ))
        })?;
        let mode = auth::decide(self.config.bearer_token.as_deref(), ctx.provider_data());
        let url = format!(
            "{}/model/{}/invoke",
            self.config.runtime_url,
            routing::path_segment(model)
        );
        let (mut vectors, mut tokens) = (Vec::new(), 0);
        for call in embeddings::invocations(request, family)? {
            let upstream = Request::post(url.as_str())
                .json(&call.body)
                .header("accept", "application/json");
            let response = self
                .finish(ctx, upstream, &mode)
                .send()
                .map_err(|err| errors::transport_error(err, &mode))?;
            if !response.is_success() {
                return Err(converse::upstream_error(
                    response.status,
                    &response.headers,
                    &response.body,
                    &mode,
                    &self.config.region,
                    model,
                ));
            }
            let (got, counted) = embeddings::vectors(&response.json()?, family)?;
            if got.len() != call.inputs {
                return Err(ProviderError::BadGateway(format!(
                    "the embedding model answered {} embeddings for {} inputs",
                    got.len(),
                    call.inputs
                )));
            }
            let header_count = response
                .header("x-amzn-bedrock-input-token-count")
                .and_then(|n| n.trim().parse::<u64>().ok());
            tokens += counted.or(header_count).unwrap_or(0);
            vectors.extend(got);
        }
        let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
        Ok(embeddings::openai_list(vectors, model, tokens, base64))
    }
}

/// Reads one model-list answer, or says why it is not one.
type ListParser = fn(&Value) -> Result<Vec<Model>, String>;

/// Pages of `ListInferenceProfiles` read at most (1,000 profiles each).
const MAX_PROFILE_PAGES: usize = 10;

impl Provider for Bedrock {
    type Config = Map<String, Value>;

    fn describe() -> Descriptor {
        Descriptor {
            name: "bedrock".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            provider_types: vec!["remote::bedrock".into()],
            outbound_hosts: vec![
                // bedrock-runtime.{region}.amazonaws.com, bedrock.{region}.amazonaws.com and
                // VPC endpoints (`*.vpce.amazonaws.com`); a pattern can only start with `*.`.
                "https://*.amazonaws.com".into(),
                // bedrock-mantle.{region}.api.aws
                "https://*.api.aws".into(),
                // The hosts of the AWS_ENDPOINT_URL* variables below, when the operator sets
                // them, are allowed by the host.
            ],
            env_vars: config::ENV_VARS.iter().map(|s| s.to_string()).collect(),
            secret_config_keys: vec![
                "aws_bedrock_bearer_token".into(),
                "api_key".into(),
                "aws_bearer_token_bedrock".into(),
                "aws_secret_access_key".into(),
                "aws_session_token".into(),
                "aws_access_key_id".into(),
            ],
        }
    }

    fn native_operations() -> NativeOperations {
        NativeOperations {
            messages: true,
            count_tokens: true,
        }
    }

    fn init(settings: Settings<Self::Config>) -> Result<Self, ProviderError> {
        let config = config::resolve(&settings.config, &host_config::env).map_err(|why| {
            ProviderError::InvalidRequest(format!(
                "Invalid config for provider '{}' ({}): {why}",
                settings.provider_id, settings.provider_type
            ))
        })?;
        Ok(Bedrock { config })
    }

    fn list_models(&self, ctx: &Context) -> Result<Vec<Model>, ProviderError> {
        if !self.config.refresh_models {
            return Ok(Vec::new());
        }
        self.listed_models(ctx)
    }

    fn chat_completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let mode = auth::decide(self.config.bearer_token.as_deref(), ctx.provider_data());
        let (body, model) = self.prepare(request)?;
        if self.config.model_rules.api_for(&model) == Api::Converse {
            let finish = |r: Request| self.finish(ctx, r, &mode);
            return converse::complete(
                &self.converse_call(ctx, &mode, &model, &finish),
                &body,
                &model,
            );
        }
        let response = self
            .finish(
                ctx,
                Request::post(self.config.chat_url.as_str()).json(&body),
                &mode,
            )
            .send()
            .map_err(|err| errors::transport_error(err, &mode))?;
        if !response.is_success() {
            return Err(self.upstream_error(response.status, &response.body, &mode));
        }
        response.json()
    }

    fn chat_completion_stream(
        &self,
        ctx: &Context,
        request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        let mode = auth::decide(self.config.bearer_token.as_deref(), ctx.provider_data());
        let (body, model) = self.prepare(request)?;
        if self.config.model_rules.api_for(&model) == Api::Converse {
            let finish = |r: Request| self.finish(ctx, r, &mode);
            return converse::stream(
                &self.converse_call(ctx, &mode, &model, &finish),
                &body,
                &model,
            );
        }
        let request = Request::post(self.config.chat_url.as_str())
            .json(&body)
            .header("accept", "text/event-stream");
        // Raw framing: an error status's JSON body must reach the error mapping whole.
        let response = self
            .finish(ctx, request, &mode)
            .send_streaming(Framing::Raw)
            .map_err(|err| errors::transport_error(err, &mode))?;
        if !response.is_success() {
            let status = response.status;
            let mut body = Vec::new();
            for frame in response.body {
                match frame {
                    Ok(frame) => body.extend_from_slice(&frame.data),
                    Err(_) => break,
                }
            }
            return Err(self.upstream_error(status, &body, &mode));
        }
        let mut frames = response.body;
        let mut decoder = sse::Decoder::default();
        let mut pending: VecDeque<String> = VecDeque::new();
        let (mut ended, mut finished) = (false, false);
        Ok(ChunkStream::from_text(std::iter::from_fn(move || {
            while !finished {
                if let Some(data) = pending.pop_front() {
                    match sse::classify(&data) {
                        sse::Event::Chunk(chunk) if chunk.is_empty() => {}
                        sse::Event::Chunk(chunk) => return Some(Ok(chunk)),
                        sse::Event::Done => finished = true,
                        sse::Event::Failed(err) => {
                            finished = true;
                            return Some(Err(err));
                        }
                    }
                    continue;
                }
                if ended {
                    finished = true;
                    continue;
                }
                match frames.next() {
                    Some(Ok(frame)) => pending.extend(decoder.push(&frame.data)),
                    Some(Err(err)) => {
                        finished = true;
                        return Some(Err(err.into()));
                    }
                    None => {
                        ended = true;
                        pending.extend(decoder.finish());
                    }
                }
            }
            None
        })))
    }

    fn completion(&self, _ctx: &Context, _request: Value) -> Result<Value, ProviderError> {
        Err(ProviderError::Unsupported(
            errors::COMPLETIONS_UNSUPPORTED.into(),
        ))
    }

    fn completion_stream(
        &self,
        _ctx: &Context,
        _request: Value,
    ) -> Result<ChunkStream, ProviderError> {
        Err(ProviderError::Unsupported(
            errors::COMPLETIONS_UNSUPPORTED.into(),
        ))
    }

    fn embeddings(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let (body, model) = self.prepare(request)?;
        self.invoke_embeddings(ctx, &body, &model)
    }

    fn messages(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let (body, model) = self.native_messages(ctx, request)?;
        self.with_messages_call(ctx, |call| messages::create(call, body, &model))
    }

    fn messages_stream(&self, ctx: &Context, request: Value) -> Result<EventStream, ProviderError> {
        let (body, model) = self.native_messages(ctx, request)?;
        self.with_messages_call(ctx, |call| messages::stream(call, body, &model))
    }

    fn count_tokens(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let (body, model) = self.native_messages(ctx, request)?;
        self.with_messages_call(ctx, |call| messages::count_tokens(call, body, &model))
    }
}

ogx_provider_sdk::export_provider!(Bedrock);
