//! `POST /v1/chat/completions`, `POST /v1/completions` and `POST /v1/embeddings`: check the
//! body, resolve the model, call the provider's plugin, and answer with the `model` the client
//! sent (JSON, or SSE for `"stream": true`). Chat completions are recorded in the history
//! ([`crate::server::history`]).

use crate::auth::Identity;
use crate::registry::Route;
use crate::runtime::{ChunkStream, ProviderError};
use crate::server::errors::ApiError;
use crate::server::history::{self, StreamRecorder};
use crate::server::request::{ApiRequest, Endpoint};
use crate::server::{AppState, observability, sse};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Map, Value};

pub async fn chat_completions(
    state: State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    serve(state, identity, headers, body, Endpoint::ChatCompletions).await
}

pub async fn completions(
    state: State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    serve(state, identity, headers, body, Endpoint::Completions).await
}

pub async fn embeddings(
    state: State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    serve(state, identity, headers, body, Endpoint::Embeddings).await
}

async fn serve(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    body: Bytes,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let request = ApiRequest::parse(&body, endpoint)?;
    let route = state
        .registry
        .route(&request.model)
        .ok_or_else(|| ApiError::model_not_found(&request.model))?;
    check_model_type(&request.model, &route, endpoint.model_type())?;
    observability::routed(&route, &request.model, endpoint.operation_name());
    let mut context = state.call_context(&headers, &route.provider);
    context.model = Some(route.target(&request.model));
    let client_model = request.model.clone();
    let input_messages = request.body.get("messages").cloned().unwrap_or_default();
    let stream = request.stream;
    let upstream_body = request.into_upstream_json(&route.upstream_model);
    let provider = &route.provider;
    match (endpoint, stream) {
        (Endpoint::ChatCompletions, false) => {
            let answer = answer_object(
                provider.chat_completion(context, upstream_body).await?,
                &client_model,
            )?;
            if let Some(store) = &state.inference_store {
                history::record_answer(
                    store,
                    &answer,
                    input_messages,
                    state.security.owner_for(&identity),
                );
            }
            Ok(Json(Value::Object(answer)).into_response())
        }
        (Endpoint::ChatCompletions, true) => {
            let owner = state.security.owner_for(&identity);
            let recorder = state.inference_store.clone().map(|store| {
                StreamRecorder::new(store, client_model.clone(), input_messages, owner)
            });
            sse::respond(
                observability::observed(
                    provider
                        .chat_completion_stream(context, upstream_body)
                        .await?,
                ),
                client_model,
                recorder,
            )
            .await
        }
        (Endpoint::Completions, false) => json_answer(
            provider.completion(context, upstream_body).await?,
            &client_model,
        ),
        (Endpoint::Completions, true) => {
            sse::respond(
                observability::observed(provider.completion_stream(context, upstream_body).await?),
                client_model,
                None,
            )
            .await
        }
        (Endpoint::Embeddings, _) => json_answer(
            provider.embeddings(context, upstream_body).await?,
            &client_model,
        ),
    }
}

/// The provider's chat-completion stream for `chat`, its first chunk awaited: a failure before
/// any output (a rejected key, an unreachable upstream) is an HTTP error, streaming or not.
/// The Responses and Messages APIs call their provider through it.
pub(crate) async fn chat_stream(
    state: &AppState,
    headers: &HeaderMap,
    route: &Route,
    chat: Value,
) -> Result<ChunkStream, ApiError> {
    let context = state.call_context(headers, &route.provider);
    let mut chunks = observability::observed(
        route
            .provider
            .chat_completion_stream(context, chat.to_string())
            .await?,
    );
    let first = match chunks.next().await {
        Some(Err(error)) => return Err(error.into()),
        first => first,
    };
    Ok(Box::pin(futures::stream::iter(first).chain(chunks)))
}

/// A 400 when `model` is registered with another type than `expected` (OGX's message).
pub(crate) fn check_model_type(model: &str, route: &Route, expected: &str) -> Result<(), ApiError> {
    match route.model_type.as_deref().filter(|t| *t != expected) {
        Some(model_type) => Err(ApiError::BadRequest(format!(
            "Model '{model}' is of type '{model_type}' rather than the expected type '{expected}'"
        ))),
        None => Ok(()),
    }
}

/// A provider's JSON answer with `model` set to the client's id.
fn json_answer(text: String, client_model: &str) -> Result<Response, ApiError> {
    let answer = answer_object(text, client_model)?;
    Ok(Json(Value::Object(answer)).into_response())
}

/// A provider's JSON answer, parsed, with `model` set to the client's id; its `usage` is noted
/// in the request's record. An answer that is not a JSON object is the upstream's fault: 502.
pub(crate) fn answer_object(
    text: String,
    client_model: &str,
) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(mut answer)) => {
            if let Some(record) = crate::telemetry::record::current() {
                record.answer(&answer);
            }
            answer.insert("model".into(), Value::String(client_model.to_string()));
            Ok(answer)
        }
        _ => Err(ProviderError::BadGateway(
            "the provider answered with something that is not a JSON object".into(),
        )
        .into()),
    }
}

impl From<ProviderError> for ApiError {
    fn from(error: ProviderError) -> Self {
        ApiError::Call(error.into())
    }
}
