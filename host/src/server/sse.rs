//! Server-sent events for streamed answers, as the OpenAI API sends them: one
//! `data: <chunk>\n\n` per chunk, each chunk's `model` set to the id the client asked for, and
//! `data: [DONE]\n\n` at the end. A stream that fails after it started ends with one
//! `data: {"error": {...}}` event instead of `[DONE]`.
//!
//! The first chunk is awaited before the response starts (by [`crate::routing`], which may
//! retry or fail over until then), so an error that happens before any
//! output (a rejected key, an unreachable upstream) is answered with a normal HTTP status.
//!
//! A [`StreamRecorder`] given to [`respond`] sees every chunk and is finished only when the
//! stream ends normally; on a failure, or when the client goes away, it is dropped unrecorded.
//!
//! Typed event streams (the Responses and Messages APIs) are answered by [`named_events`]: a
//! task of their own produces the events into an [`EventSink`], which tells it when the client
//! has gone away so that it stops and drops the provider's stream.

use super::errors::ApiError;
use super::history::StreamRecorder;
use crate::routing::{CallGuard, Opened};
use crate::stream_event::Event;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use std::convert::Infallible;

/// The event that ends a successful stream.
pub const DONE_EVENT: &[u8] = b"data: [DONE]\n\n";
/// Named events buffered between their producer and a slow client.
pub const STREAM_BUFFER_EVENTS: usize = 64;

/// Where a [`named_events`] producer sends its events.
#[derive(Clone)]
pub struct EventSink(tokio::sync::mpsc::Sender<Bytes>);

impl EventSink {
    /// Sends `events` in order; false once the client has gone away (the producer should stop).
    pub async fn send(&self, events: Vec<Event>) -> bool {
        for event in events {
            if self.0.send(event.to_sse()).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Sends one event whose data is JSON text already, passed on byte for byte (a data text
    /// with a line break, which would end the SSE field, is re-encoded on one line first).
    /// False once the client has gone away.
    pub async fn send_json_text(&self, kind: &str, data: &str) -> bool {
        let frame = if data.contains(['\n', '\r']) {
            let value: serde_json::Value = serde_json::from_str(data)
                .unwrap_or_else(|_| serde_json::Value::String(data.into()));
            format!("event: {kind}\ndata: {value}\n\n")
        } else {
            format!("event: {kind}\ndata: {data}\n\n")
        };
        self.0.send(Bytes::from(frame)).await.is_ok()
    }
}

/// A 200 SSE answer of named events (`event:` and `data:` lines) that `produce` sends on a task
/// of its own; the answer ends when the task drops its sink.
pub fn named_events<F, Fut>(produce: F) -> Response
where
    F: FnOnce(EventSink) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(STREAM_BUFFER_EVENTS);
    tokio::spawn(produce(EventSink(sender)));
    let body = tokio_stream::wrappers::ReceiverStream::new(receiver).map(Ok::<Bytes, Infallible>);
    event_stream(Body::from_stream(body))
}

/// Turns a provider's chunk stream, its first chunk already awaited (by routing), into an SSE
/// response. `guard` (the provider's slot, the target's load) is held until the stream ends.
pub fn respond(
    opened: Opened<String>,
    client_model: String,
    recorder: Option<StreamRecorder>,
    guard: CallGuard,
) -> Response {
    let events = async_stream_of(opened, client_model, recorder, guard);
    event_stream(Body::from_stream(events))
}

/// A 200 `text/event-stream` response with `body`, not cached nor buffered by proxies.
pub fn event_stream(body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// The SSE byte stream: the first chunk, the rest, then `[DONE]` or one error event.
fn async_stream_of(
    opened: Opened<String>,
    client_model: String,
    recorder: Option<StreamRecorder>,
    guard: CallGuard,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let Opened { first, rest } = opened;
    futures::stream::unfold(Some((first, rest, recorder, guard)), move |state| {
        let client_model = client_model.clone();
        async move {
            let (first, mut chunks, mut recorder, guard) = state?;
            let next = match first {
                Some(chunk) => Some(Ok(chunk)),
                None => chunks.next().await,
            };
            let event = match next {
                Some(Ok(chunk)) => {
                    let event = client_event(&chunk, &client_model, recorder.as_mut());
                    return Some((Ok(event), Some((None, chunks, recorder, guard))));
                }
                Some(Err(error)) => {
                    let error = ApiError::from(error);
                    tracing::warn!("stream failed after it started: {error}");
                    data_event(&error.stream_event().to_string())
                }
                None => {
                    if let Some(recorder) = recorder {
                        recorder.finish();
                    }
                    Bytes::from_static(DONE_EVENT)
                }
            };
            // The stream is over: dropping `chunks` here releases the plugin instance.
            Some((Ok(event), None))
        }
    })
}

fn data_event(json: &str) -> Bytes {
    let mut event = Vec::with_capacity(json.len() + 8);
    event.extend_from_slice(b"data: ");
    event.extend_from_slice(json.as_bytes());
    event.extend_from_slice(b"\n\n");
    Bytes::from(event)
}

/// The SSE event for one chunk: parsed once, shown to the recorder, its `model` set to the id
/// the client sent. Text that is not a JSON object is passed on unchanged (and not recorded).
fn client_event(chunk: &str, client_model: &str, recorder: Option<&mut StreamRecorder>) -> Bytes {
    match serde_json::from_str::<serde_json::Value>(chunk) {
        Ok(serde_json::Value::Object(mut object)) => {
            if let Some(recorder) = recorder {
                recorder.chunk(&object);
            }
            if object.contains_key("model") {
                object.insert(
                    "model".into(),
                    serde_json::Value::String(client_model.to_string()),
                );
            }
            data_event(&serde_json::Value::Object(object).to_string())
        }
        _ => data_event(chunk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{CallError, ProviderError};

    fn stream_of(items: Vec<Result<String, CallError>>) -> Opened<String> {
        let mut items = items.into_iter();
        let first = items.next().map(|item| item.expect("a first chunk"));
        Opened {
            first,
            rest: Box::pin(futures::stream::iter(items.collect::<Vec<_>>())),
        }
    }

    async fn body_text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn chunks_get_the_client_model_and_the_stream_ends_with_done() {
        let chunks = stream_of(vec![
            Ok(
                r#"{"id":"c1","model":"upstream","choices":[{"delta":{"content":"a"}}],"extra":1}"#
                    .into(),
            ),
            Ok(r#"{"id":"c1","model":"upstream","choices":[{"delta":{"content":"b"}}]}"#.into()),
        ]);
        let response = respond(chunks, "vllm/m".into(), None, CallGuard::none());
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let text = body_text(response).await;
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 3, "{text}");
        assert!(
            events[0].starts_with("data: {\"id\":\"c1\",\"model\":\"vllm/m\""),
            "{text}"
        );
        assert!(events[0].contains("\"extra\":1"));
        assert_eq!(events[2], "data: [DONE]");
    }

    #[tokio::test]
    async fn an_error_after_the_first_chunk_ends_the_stream_with_an_error_event() {
        let chunks = stream_of(vec![
            Ok(r#"{"model":"u","choices":[]}"#.into()),
            Err(ProviderError::BadGateway("upstream closed the connection".into()).into()),
            Ok(r#"{"model":"u","choices":[]}"#.into()),
        ]);
        let text = body_text(respond(chunks, "m".into(), None, CallGuard::none())).await;
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 2, "{text}");
        assert_eq!(
            events[1],
            r#"data: {"error":{"message":"upstream closed the connection","code":"502"}}"#
        );
    }

    #[test]
    fn rewrite_keeps_everything_but_the_model() {
        let event = |json: &str| client_event(json, "b", None);
        assert_eq!(
            event(r#"{"model":"a","x":[1]}"#),
            data_event(r#"{"model":"b","x":[1]}"#)
        );
        assert_eq!(event(r#"{"x":1}"#), data_event(r#"{"x":1}"#));
        assert_eq!(event("not json"), data_event("not json"));
    }
}
