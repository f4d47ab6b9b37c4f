//! The native Messages path: for a provider whose upstream speaks Anthropic's Messages API
//! (its plugin lists the native `messages` operation), the client's body goes to the plugin
//! as it came — `model` replaced by the upstream's id — and the plugin's Anthropic answer, or
//! each of its events, goes back to the client as the plugin gave it. Nothing is translated,
//! so extended thinking, signatures, `cache_control`, citations and server tools survive.
//!
//! A plugin may list the operation and still decline it for a provider type whose upstream
//! does not speak Messages (one plugin serves many types), or for a model its upstream
//! serves Messages for only by translation (Bedrock: every model but Claude): its
//! `unsupported` answer, before anything reached the client, is [`Outcome::Declined`]; the
//! route then translates, and the provider is not asked natively again for that model
//! ([`crate::runtime::Provider::decline_native`]).
//!
//! The client's `anthropic-beta` header reaches the plugin as the body's `anthropic_beta`
//! array ([`upstream_body`]; the plugin interface passes no request headers): the field
//! Bedrock's Anthropic body reads; a plugin whose upstream takes the header moves it back.
//!
//! **Failures.** Before the first event every failure is an HTTP error in Anthropic's shape
//! (the upstream's status and message, `retry-after` passed on); a stream that fails after it
//! started ends with an `error` event. An event whose name is not a plain word (a plugin
//! trying to inject SSE lines) ends the stream with an `error` event too.

use crate::messages::request::MessagesRequest;
use crate::registry::Route;
use crate::runtime::{CallError, EventStream, NativeOperation, ProviderError};
use crate::server::errors::AnthropicError;
use crate::server::{AppState, observability, sse};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::Value;

/// What the native path made of a request.
pub(super) enum Outcome {
    /// The answer (or the error) for the client.
    Answered(Result<Response, AnthropicError>),
    /// The plugin does not speak Messages for this provider: translate instead.
    Declined,
}

/// Whether `error` is the plugin declining the operation.
fn declined(error: &CallError) -> bool {
    matches!(error, CallError::Provider(ProviderError::Unsupported(_)))
}

/// The body for the plugin: the client's, with the upstream's model id and the values of the
/// client's `anthropic-beta` headers (comma-separated, each header may repeat) appended to
/// its `anthropic_beta` array, each once.
fn upstream_body(request: &MessagesRequest, route: &Route, headers: &HeaderMap) -> String {
    let mut body = request.body.clone();
    body.insert(
        "model".into(),
        Value::String(route.upstream_model.to_string()),
    );
    let from_headers = headers
        .get_all(BETA_HEADER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|beta| !beta.is_empty());
    let mut betas: Vec<Value> = match body.get("anthropic_beta") {
        Some(Value::Array(values)) => values.clone(),
        _ => Vec::new(),
    };
    for beta in from_headers {
        if !betas.iter().any(|known| known.as_str() == Some(beta)) {
            betas.push(Value::String(beta.to_string()));
        }
    }
    if !betas.is_empty() {
        body.insert("anthropic_beta".into(), Value::Array(betas));
    }
    Value::Object(body).to_string()
}

/// The header naming the Anthropic betas a client opts into.
const BETA_HEADER: &str = "anthropic-beta";

fn declined_by(route: &Route, operation: NativeOperation) -> Outcome {
    route
        .provider
        .decline_native(operation, &route.upstream_model);
    Outcome::Declined
}

/// `POST /v1/messages`, natively.
pub(super) async fn create(
    state: &AppState,
    headers: &HeaderMap,
    request: &MessagesRequest,
    route: &Route,
) -> Outcome {
    let provider = &route.provider;
    observability::routed(route, &request.model, "chat");
    let mut context = state.call_context(headers, provider);
    context.model = Some(route.target(&request.model));
    let body = upstream_body(request, route, headers);
    if !request.stream {
        return match provider.messages(context, body).await {
            Err(error) if declined(&error) => declined_by(route, NativeOperation::Messages),
            Err(error) => Outcome::Answered(Err(error.into())),
            Ok(text) => Outcome::Answered(json_text(text)),
        };
    }
    let mut events = match provider.messages_stream(context, body).await {
        Err(error) if declined(&error) => {
            return declined_by(route, NativeOperation::Messages);
        }
        Err(error) => return Outcome::Answered(Err(error.into())),
        Ok(events) => events,
    };
    // A failure before the first event is an HTTP error, as on every streamed route.
    let first = match events.next().await {
        Some(Err(error)) if declined(&error) => {
            return declined_by(route, NativeOperation::Messages);
        }
        Some(Err(error)) => return Outcome::Answered(Err(error.into())),
        first => first,
    };
    let events: EventStream = Box::pin(futures::stream::iter(first).chain(events));
    Outcome::Answered(Ok(stream(observability::observed_events(events))))
}

/// `POST /v1/messages/count_tokens`, natively: the upstream's count.
pub(super) async fn count_tokens(
    state: &AppState,
    headers: &HeaderMap,
    request: &MessagesRequest,
    route: &Route,
) -> Outcome {
    let provider = &route.provider;
    let mut context = state.call_context(headers, provider);
    context.model = Some(route.target(&request.model));
    match provider
        .count_tokens(context, upstream_body(request, route, headers))
        .await
    {
        Err(error) if declined(&error) => declined_by(route, NativeOperation::CountTokens),
        Err(error) => Outcome::Answered(Err(error.into())),
        Ok(text) => Outcome::Answered(json_text(text)),
    }
}

/// The plugin's JSON answer, checked to be a JSON object (its `usage` noted for the metrics),
/// passed on as it is.
fn json_text(text: String) -> Result<Response, AnthropicError> {
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(answer)) => {
            observability::answered_object(&answer);
            Ok((
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                text,
            )
                .into_response())
        }
        _ => Err(AnthropicError::from(CallError::Provider(
            ProviderError::BadGateway("the provider's answer is not a JSON object".into()),
        ))),
    }
}

/// An SSE event name a client can receive: a plain word (`content_block_delta`).
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// The events as SSE, relayed by a task that stops when the client goes away (dropping the
/// provider's stream).
fn stream(mut events: EventStream) -> Response {
    sse::named_events(move |sink| async move {
        while let Some(event) = events.next().await {
            let failure = match event {
                Ok(event) if plain_name(&event.event_type) => {
                    if !sink.send_json_text(&event.event_type, &event.data).await {
                        return;
                    }
                    continue;
                }
                Ok(event) => {
                    AnthropicError::from(CallError::Provider(ProviderError::BadGateway(format!(
                        "the provider sent an event named {:?}, which is not an event name",
                        event.event_type.chars().take(64).collect::<String>()
                    ))))
                }
                Err(error) => AnthropicError::from(error),
            };
            tracing::warn!(
                "a native message stream failed after it started: {}",
                failure.0
            );
            sink.send_json_text("error", &failure.body().to_string())
                .await;
            return;
        }
    })
}
