//! The `remote::bedrock` provider: Amazon Bedrock's OpenAI-compatible chat endpoint
//! (`POST {runtime}/openai/v1/chat/completions`), authenticated per request with a bearer
//! token or with AWS SigV4 (signing name `bedrock`) done by the host, which also resolves,
//! caches and refreshes the AWS credentials: no AWS secret ever enters the plugin.
//!
//! - [`config`]: the config block and its env fallbacks, resolved at `init`;
//! - [`auth`]: bearer or SigV4, decided per request;
//! - [`errors`]: the client-facing messages (OGX's sanitized auth errors);
//! - [`sse`]: stream decoding; [`models`]: the two model-list formats.
//!
//! Chat bodies and answers pass through untouched apart from dropping top-level nulls (OGX
//! sends only the parameters that are set), so reasoning fields survive in both directions.
//! `/v1/completions` and `/v1/embeddings` are refused (Bedrock's OpenAI API has neither).
//! The model list is fetched only with `refresh_models: true`; its failures are returned
//! and the host logs them as warnings.
//!
//! The pure modules are tested natively (in `plugins/`):
//! `cargo test --target x86_64-unknown-linux-gnu -p ogx-plugin-bedrock --lib`.

#![warn(missing_docs)]

pub mod auth;
pub mod config;
pub mod errors;
pub mod models;
pub mod sse;

use std::collections::VecDeque;

use ogx_provider_sdk::http::{Framing, Request};
use ogx_provider_sdk::{
    ChunkStream, Context, Descriptor, Map, Model, Provider, ProviderError, Settings, Value,
    config as host_config, log, python_repr,
};

use crate::auth::AuthMode;
use crate::config::Resolved;

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
    fn prepare(&self, mut request: Value) -> Result<Value, ProviderError> {
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
        Ok(request)
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

    fn model_ids(&self, ctx: &Context) -> Result<Vec<String>, ProviderError> {
        let mode = auth::decide(self.config.bearer_token.as_deref(), ctx.provider_data());
        let url = match mode {
            AuthMode::SigV4 => &self.config.foundation_models_url,
            AuthMode::Bearer { .. } => &self.config.mantle_models_url,
        };
        let response = self
            .finish(ctx, Request::get(url.as_str()), &mode)
            .send()
            .map_err(|err| errors::transport_error(err, &mode))?;
        if !response.is_success() {
            return Err(self.upstream_error(response.status, &response.body, &mode));
        }
        let body: Value = response.json()?;
        let ids = match mode {
            AuthMode::SigV4 => models::from_foundation_models(&body),
            AuthMode::Bearer { .. } => models::from_openai_list(&body),
        }
        .map_err(|why| ProviderError::BadGateway(format!("{url}: {why}")))?;
        Ok(models::allowed(ids, self.config.allowed_models.as_deref()))
    }
}

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
        Ok(self.model_ids(ctx)?.into_iter().map(Model::llm).collect())
    }

    fn chat_completion(&self, ctx: &Context, request: Value) -> Result<Value, ProviderError> {
        let mode = auth::decide(self.config.bearer_token.as_deref(), ctx.provider_data());
        let body = self.prepare(request)?;
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
        let body = self.prepare(request)?;
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

    fn embeddings(&self, _ctx: &Context, _request: Value) -> Result<Value, ProviderError> {
        Err(ProviderError::Unsupported(
            errors::EMBEDDINGS_UNSUPPORTED.into(),
        ))
    }
}

ogx_provider_sdk::export_provider!(Bedrock);
