//! The Anthropic Messages API routes: `POST /v1/messages` (JSON, or Anthropic's SSE events with
//! `"stream": true`) and `POST /v1/messages/count_tokens` (an estimate, marked by the
//! `x-ogx-token-count: estimate` header), both with or without `?beta=true`. Message batches
//! (`/v1/messages/batches…`) answer 501 until they are served.
//!
//! Every answer, errors included, carries `anthropic-version: 2023-06-01`, and every error is
//! Anthropic's shape ([`AnthropicError`]). Client credentials (`x-api-key`,
//! `Authorization: Bearer`) are for the authentication layers in front of this route (gateway
//! keys, `server.auth`); `anthropic-beta` flags are accepted and not used; neither header is
//! logged or passed on.
//!
//! A request is resolved like a chat completion (the model's route, which must be an `llm`)
//! and served on the provider's [`MessagesPath`]: natively by the plugin
//! ([`super::messages_native`]) where the upstream speaks Messages, otherwise translated to one
//! chat-completions call ([`crate::messages::convert`]) whose answer becomes Anthropic's
//! events ([`crate::messages::events`]). Streamed requests stream from the provider; others make one
//! plain call. Messages are not recorded in the chat-completion history, as in OGX.
//!
//! **Failures.** Before the provider's answer starts, every failure is an HTTP error (400 bad
//! body, 404 unknown model, 413 body too large, the provider's status). A stream that fails
//! after it started ends with an `error` event. When thinking was translated to
//! `reasoning_effort` and the upstream refuses the request with a 400, it is sent once more
//! without it (models that do not reason refuse the field; the answer then has no thinking).

use super::inference::{answer_object, chat_stream, check_model_type};
use super::messages_native as native;
use crate::messages::events::MessageBuilder;
use crate::messages::request::{MessagesRequest, Purpose};
use crate::messages::{ANTHROPIC_VERSION, MessagesError, MessagesPath, convert, new_id, tokens};
use crate::registry::Route;
use crate::runtime::{ChunkStream, NativeOperation};
use crate::server::errors::{AnthropicError, ApiError};
use crate::server::{AppState, sse};
use crate::stream_event::Event;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use futures::StreamExt;
use serde_json::{Value, json};
use std::future::Future;

/// The response header naming the API version.
pub const VERSION_HEADER: &str = "anthropic-version";

/// The Messages routes, each answer with its `anthropic-version` header.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/messages", post(create))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/messages/batches", any(batches))
        .route("/v1/messages/batches/{*rest}", any(batches))
        .layer(middleware::map_response(with_version))
}

async fn with_version(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from_static(ANTHROPIC_VERSION));
    response
}

/// `POST /v1/messages`.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let (request, route) = checked(&state, body, Purpose::Create)?;
    if MessagesPath::of(&route.provider, &route.upstream_model) == MessagesPath::Native
        && let native::Outcome::Answered(answer) =
            native::create(&state, &headers, &request, &route).await
    {
        return answer;
    }
    translated(&state, &headers, request, route).await
}

/// `POST /v1/messages/count_tokens`: the upstream's count where the provider counts natively,
/// else the estimate of [`tokens::estimate`].
pub async fn count_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AnthropicError> {
    let (request, route) = checked(&state, body, Purpose::CountTokens)?;
    if route
        .provider
        .serves_native(NativeOperation::CountTokens, &route.upstream_model)
        && let native::Outcome::Answered(answer) =
            native::count_tokens(&state, &headers, &request, &route).await
    {
        return answer;
    }
    let chat = convert::chat_request(
        &request,
        &route.upstream_model,
        route.provider.provider_type(),
        false,
    )?;
    let headers = [(tokens::ESTIMATE_HEADER, tokens::ESTIMATE_VALUE)];
    let answer = json!({"input_tokens": tokens::estimate(&chat)});
    Ok((headers, Json(answer)).into_response())
}

/// `/v1/messages/batches…`: not served yet.
pub async fn batches(State(state): State<AppState>) -> Result<Response, AnthropicError> {
    enabled(&state)?;
    Err(MessagesError::NotServed(
        "Message batches are not served by ogx yet: send each request to POST /v1/messages.".into(),
    )
    .into())
}

/// The checked request and its model's route.
fn checked(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
    purpose: Purpose,
) -> Result<(MessagesRequest, Route), AnthropicError> {
    enabled(state)?;
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => MessagesError::TooLarge(format!(
            "The request body is larger than the server accepts ({} MiB).",
            crate::server::MAX_REQUEST_BODY_BYTES / (1024 * 1024)
        )),
        _ => MessagesError::Invalid(format!("The request body could not be read: {rejection}")),
    })?;
    let request = MessagesRequest::parse(&body, purpose)?;
    let route = state
        .registry
        .route(&request.model)
        .ok_or_else(|| ApiError::model_not_found(&request.model))?;
    check_model_type(&request.model, &route, "llm")?;
    crate::server::observability::routed(&route, &request.model, "chat");
    Ok((request, route))
}

fn enabled(state: &AppState) -> Result<(), MessagesError> {
    match state.messages {
        Some(_) => Ok(()),
        None => Err(MessagesError::NotEnabled(
            "The Messages API is not enabled: add a `messages` provider (provider_type: inline::builtin) under `providers` in the run config, and `messages` to `apis` if the config lists them.".into(),
        )),
    }
}

/// The translated path: one chat-completions call, its answer as Anthropic's.
async fn translated(
    state: &AppState,
    headers: &HeaderMap,
    request: MessagesRequest,
    route: Route,
) -> Result<Response, AnthropicError> {
    let chat = convert::chat_request(
        &request,
        &route.upstream_model,
        route.provider.provider_type(),
        request.stream,
    )?;
    let stop_sequences = request
        .body
        .get("stop_sequences")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let mut builder = MessageBuilder::new(
        &new_id("msg"),
        &request.model,
        request.thinking,
        stop_sequences,
    );
    if request.stream {
        let chunks = without_refused_reasoning(chat, |chat| {
            chat_stream(state, headers, &request.model, &route, chat)
        })
        .await?;
        return Ok(stream(builder, chunks));
    }
    let route = &route;
    let text = without_refused_reasoning(chat, |chat| async move {
        let context = state.call_context(headers, &route.provider);
        Ok::<_, ApiError>(
            route
                .provider
                .chat_completion(context, chat.to_string())
                .await?,
        )
    })
    .await?;
    let completion = answer_object(text, &request.model)?;
    builder.start();
    builder.completion(&completion);
    let (_, message) = builder.finish();
    Ok(Json(message).into_response())
}

/// Calls `call` with `chat`; when that carries a `reasoning_effort` made from `thinking` and
/// the upstream refuses it with a 400, calls once more without it.
async fn without_refused_reasoning<T, F, Fut>(chat: Value, call: F) -> Result<T, ApiError>
where
    F: Fn(Value) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let has_effort = chat.get("reasoning_effort").is_some();
    let retry = has_effort.then(|| {
        let mut without = chat.clone();
        if let Some(body) = without.as_object_mut() {
            body.remove("reasoning_effort");
        }
        without
    });
    match (call(chat).await, retry) {
        (Err(error), Some(without)) if error.status_and_message().0 == StatusCode::BAD_REQUEST => {
            tracing::warn!(
                "the upstream refused a request with reasoning_effort ({}); sending it again without thinking",
                error.status_and_message().1
            );
            call(without).await
        }
        (result, _) => result,
    }
}

/// The events as SSE, produced by a task that stops when the client goes away (dropping the
/// provider's stream). A failure after the start ends the stream with an `error` event.
fn stream(mut builder: MessageBuilder, mut chunks: ChunkStream) -> Response {
    sse::named_events(move |sink| async move {
        if !sink.send(builder.start()).await {
            return;
        }
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    if !sink.send(builder.chunk(&chunk)).await {
                        return;
                    }
                }
                Err(error) => {
                    let error = AnthropicError::from(error);
                    tracing::warn!("a message stream failed after it started: {}", error.0);
                    let data = error.body();
                    sink.send(vec![Event {
                        kind: "error".into(),
                        data,
                    }])
                    .await;
                    return;
                }
            }
        }
        drop(chunks);
        let (events, _) = builder.finish();
        sink.send(events).await;
    })
}
