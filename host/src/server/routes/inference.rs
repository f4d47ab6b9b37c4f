//! `POST /v1/chat/completions`, `POST /v1/completions` and `POST /v1/embeddings`: check the
//! body, resolve the model, call the provider's plugin, and answer with the `model` the client
//! sent (JSON, or SSE for `"stream": true`). Chat completions are recorded in the history
//! ([`crate::server::history`]).

use crate::auth::Identity;
use crate::registry::Route;
use crate::routing::{AnsweredBy, Attempt, Opened, Plan};
use crate::runtime::{CallContext, ChunkStream, ModelTarget, ProviderError};
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
    let mut request = ApiRequest::parse(&body, endpoint)?;
    let route = state
        .registry
        .route(&request.model)
        .ok_or_else(|| ApiError::model_not_found(&request.model))?;
    check_model_type(&request.model, &route, endpoint.model_type())?;
    observability::routed(&route, &request.model, endpoint.operation_name());
    let plan = plan(&state, &request.model, &route);
    let client_model = request.model.clone();
    let input_messages = request.body.get("messages").cloned().unwrap_or_default();
    let stream = request.stream;
    // One attempt: the context and body for the target routing chose, then the call.
    macro_rules! routed {
        ($call:ident, $open:ident) => {
            state
                .routing
                .$open(&plan, |attempt: Attempt<'_>| {
                    let context = attempt_context(&state, &headers, &attempt, &client_model);
                    let body = request.upstream_json(attempt.provider_model_id);
                    attempt.provider.$call(context, body)
                })
                .await?
        };
    }
    let response = match (endpoint, stream) {
        (Endpoint::ChatCompletions, false) => {
            let served = routed!(chat_completion, call);
            let answer = answer_object(served.value, &client_model)?;
            if let Some(store) = &state.inference_store {
                history::record_answer(
                    store,
                    &answer,
                    input_messages,
                    state.security.owner_for(&identity),
                    served.answered_by.target(),
                );
            }
            answered(
                Json(Value::Object(answer)).into_response(),
                &served.answered_by,
            )
        }
        (Endpoint::ChatCompletions, true) => {
            let served = routed!(chat_completion_stream, open_stream);
            let recorder = state.inference_store.clone().map(|store| {
                StreamRecorder::new(
                    store,
                    client_model.clone(),
                    input_messages,
                    state.security.owner_for(&identity),
                    served.answered_by.target(),
                )
            });
            let by = served.answered_by;
            answered(
                sse::respond(
                    observability::observed_opened(served.value),
                    client_model,
                    recorder,
                    served.guard,
                ),
                &by,
            )
        }
        (Endpoint::Completions, false) => {
            let served = routed!(completion, call);
            answered(
                json_answer(served.value, &client_model)?,
                &served.answered_by,
            )
        }
        (Endpoint::Completions, true) => {
            let served = routed!(completion_stream, open_stream);
            let by = served.answered_by;
            answered(
                sse::respond(
                    observability::observed_opened(served.value),
                    client_model,
                    None,
                    served.guard,
                ),
                &by,
            )
        }
        (Endpoint::Embeddings, _) => {
            let served = routed!(embeddings, call);
            answered(
                json_answer(served.value, &client_model)?,
                &served.answered_by,
            )
        }
    };
    Ok(response)
}

/// `response` with the headers naming who answered.
fn answered(mut response: Response, by: &AnsweredBy) -> Response {
    by.apply(response.headers_mut());
    response
}

/// Where a request for `model`, resolved by the registry to `route`, goes: the targets of
/// `routing.models.<model>` when there is one, else the route's one target.
pub(crate) fn plan<'a>(state: &'a AppState, model: &str, route: &'a Route) -> Plan<'a> {
    match state.routing.model(model) {
        Some(routed) => Plan::Routed(routed),
        None => state
            .routing
            .single(&route.provider, &route.upstream_model, &route.metadata),
    }
}

/// The context of one attempt: the request's, for the attempt's provider and model.
fn attempt_context(
    state: &AppState,
    headers: &HeaderMap,
    attempt: &Attempt<'_>,
    client_model: &str,
) -> CallContext {
    let mut context = state.call_context(headers, attempt.provider);
    context.model = Some(ModelTarget {
        id: client_model.to_owned(),
        provider_model_id: attempt.provider_model_id.to_owned(),
        metadata: attempt.metadata.clone(),
    });
    context
}

/// The provider's chat-completion stream for `chat` (a request for `model`), its first chunk
/// awaited under the model's routing: a failure before any output (a rejected key, an
/// unreachable upstream) is an HTTP error, streaming or not. The Responses and Messages APIs
/// call their provider through it.
pub(crate) async fn chat_stream(
    state: &AppState,
    headers: &HeaderMap,
    model: &str,
    route: &Route,
    chat: Value,
) -> Result<ChunkStream, ApiError> {
    let plan = plan(state, model, route);
    let mut chat = chat;
    let served = state
        .routing
        .open_stream(&plan, |attempt: Attempt<'_>| {
            let context = attempt_context(state, headers, &attempt, model);
            if let Some(body) = chat.as_object_mut() {
                body.insert("model".into(), attempt.provider_model_id.into());
            }
            attempt
                .provider
                .chat_completion_stream(context, chat.to_string())
        })
        .await?;
    let Opened { first, rest } = observability::observed_opened(served.value);
    let guard = served.guard;
    // The guard (the provider's slot, the target's load) lives as long as the stream.
    let rest = rest.map(move |item| {
        let _ = &guard;
        item
    });
    Ok(Box::pin(futures::stream::iter(first.map(Ok)).chain(rest)))
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
