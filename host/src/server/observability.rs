//! What the server tells an operator about each request: the `x-request-id` on every answer
//! (the client's, or a new one), the time ogx itself added (`Server-Timing` and
//! `x-ogx-overhead-ms`), one log line, and the request's metrics; plus `GET /metrics`.
//!
//! [`observe`] is the outermost middleware. It gives each request a
//! [`RequestRecord`] (the current one while the handler runs), whose upstream clock goes down
//! with every provider call ([`super::AppState::call_context`]) to the outbound exchanges.
//! The timing headers are set when the answer's head leaves: for a stream, the added time up
//! to the first chunk. The log line and the metrics are recorded when the answer's body is
//! finished or dropped (a stream's last event, or the client going away), so a stream's
//! duration, tokens and added time are whole.
//!
//! Handlers say where a request went with [`routed`] and hand streamed chunks through
//! [`observed`]; answers' `usage` is noted by `routes::inference::answer_object`.

use super::AppState;
use super::REQUEST_ID_HEADER;
use crate::registry::Route;
use crate::runtime::{ChunkStream, EventStream};
use crate::telemetry::metrics::{self, OTHER_MODEL};
use crate::telemetry::record::{self, RequestRecord, Routed};
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The answer header with ogx's added time in milliseconds (also in `Server-Timing`).
pub const OVERHEAD_HEADER: &str = "x-ogx-overhead-ms";
/// The W3C trace-context request header; its trace id goes into the request's log line.
pub const TRACEPARENT_HEADER: &str = "traceparent";
/// Longest client-given request id kept; a longer or empty one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The middleware: see the module documentation.
pub async fn observe(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = match request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        Some(id) if !id.is_empty() && id.len() <= MAX_REQUEST_ID_LEN => id.to_string(),
        _ => uuid::Uuid::new_v4().simple().to_string(),
    };
    let id_value =
        HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER, id_value.clone());
    let trace_id = request
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(trace_id_of)
        .map(str::to_string);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let api = route.as_deref().map_or("unknown", api_of);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    if let Some(m) = metrics::get() {
        m.concurrent_requests.get([api]).add(1);
    }
    let record = Arc::new(RequestRecord::new(started));
    let mut response = record.clone().scope(next.run(request)).await;

    let added = record.added_time(started.elapsed());
    let headers = response.headers_mut();
    headers.insert(REQUEST_ID_HEADER, id_value);
    let added_ms = added.as_secs_f64() * 1000.0;
    let upstream_ms = record.upstream.waited().as_secs_f64() * 1000.0;
    if let Ok(value) = HeaderValue::from_str(&format!("{added_ms:.3}")) {
        headers.insert(OVERHEAD_HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!(
        "ogx;desc=\"gateway\";dur={added_ms:.3}, upstream;dur={upstream_ms:.3}"
    )) {
        headers.append("server-timing", value);
    }
    let finish = Finish {
        record,
        id,
        trace_id,
        api,
        route,
        method,
        path,
        status: response.status(),
    };
    let (parts, body) = response.into_parts();
    Response::from_parts(
        parts,
        Body::new(Finished {
            inner: body,
            finish: Some(finish),
        }),
    )
}

/// Notes where the current request went: the operation, the provider, and the model label
/// (the requested id when the registry knows it, else [`OTHER_MODEL`]).
pub fn routed(route: &Route, requested: &str, operation: &'static str) {
    if let Some(record) = record::current() {
        record.route(Routed {
            operation,
            provider: route.provider.id().to_string(),
            // A registered or listed model has a type; a `provider/anything` route has none.
            model: if route.model_type.is_some() {
                requested.to_string()
            } else {
                OTHER_MODEL.to_string()
            },
        });
    }
}

/// `chunks`, each noted in the current request's record (first-token time, streamed usage).
pub fn observed(chunks: ChunkStream) -> ChunkStream {
    match record::current() {
        None => chunks,
        Some(record) => Box::pin(chunks.inspect(move |item| {
            if let Ok(chunk) = item {
                record.chunk(chunk);
            }
        })),
    }
}

/// [`observed`] for a stream that routing opened: its first chunk is recorded now, the rest as
/// they come.
pub fn observed_opened(opened: crate::routing::Opened<String>) -> crate::routing::Opened<String> {
    match record::current() {
        None => opened,
        Some(record) => {
            if let Some(first) = &opened.first {
                record.chunk(first);
            }
            crate::routing::Opened {
                first: opened.first,
                rest: observed(opened.rest),
            }
        }
    }
}

/// [`observed`] for the events of a native Anthropic Messages stream.
pub fn observed_events(events: EventStream) -> EventStream {
    match record::current() {
        None => events,
        Some(record) => Box::pin(events.inspect(move |item| {
            if let Ok(event) = item {
                record.anthropic_event(&event.event_type, &event.data);
            }
        })),
    }
}

/// Notes the `usage` of a whole answer object the handler passes on without parsing it
/// otherwise (a native Messages answer).
pub fn answered_object(answer: &serde_json::Map<String, serde_json::Value>) {
    if let Some(record) = record::current() {
        record.answer(answer);
    }
}

/// `GET /metrics`: the Prometheus text exposition (404 when metrics are off).
pub async fn metrics_text(State(state): State<AppState>) -> Response {
    let Some(metrics) = metrics::get() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut out = String::with_capacity(16 * 1024);
    metrics.expose(&mut out);
    if let Some(store) = &state.inference_store {
        let queue = store.queue_state();
        let _ = write!(
            out,
            "# HELP ogx_inference_store_write_queue_depth Chat completions waiting to be written to the history.\n\
             # TYPE ogx_inference_store_write_queue_depth gauge\n\
             ogx_inference_store_write_queue_depth {}\n\
             # HELP ogx_inference_store_writes_total Chat completions written to the history.\n\
             # TYPE ogx_inference_store_writes_total counter\n\
             ogx_inference_store_writes_total {}\n\
             # HELP ogx_inference_store_writes_lost_total Accepted chat completions that could not be written.\n\
             # TYPE ogx_inference_store_writes_lost_total counter\n\
             ogx_inference_store_writes_lost_total {}\n",
            queue.depth, queue.written, queue.lost
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response()
}

/// The OGX API a route template belongs to (`/v1/inspect/routes`' `api`).
fn api_of(template: &str) -> &'static str {
    static APIS: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    let apis = APIS.get_or_init(|| {
        super::ROUTES
            .iter()
            .map(|r| (r.path.replace("{model_id:path}", "{*model_id}"), r.api))
            .collect()
    });
    apis.get(template).copied().unwrap_or(match template {
        "/metrics" => "telemetry",
        _ => "unknown",
    })
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), if valid.
fn trace_id_of(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && trace.bytes().any(|b| b != b'0')
        && hex(parent, 16)
        && hex(flags, 2);
    valid.then_some(trace)
}

/// What is recorded when the answer is over.
struct Finish {
    record: Arc<RequestRecord>,
    id: String,
    trace_id: Option<String>,
    api: &'static str,
    route: Option<String>,
    method: Method,
    path: String,
    status: StatusCode,
}

impl Finish {
    fn record(&self) {
        let elapsed = self.record.started.elapsed();
        let added = self.record.added_time(elapsed);
        let routed = self.record.routed();
        let tokens = self.record.tokens();
        let provider = routed.map_or("", |r| r.provider.as_str());
        let route = self.route.as_deref().unwrap_or("unmatched");
        if let Some(m) = metrics::get() {
            self.record_metrics(m, route, elapsed, added);
        }
        tracing::info!(
            target: "ogx::server::request",
            request_id = %self.id,
            trace_id = self.trace_id.as_deref(),
            method = %self.method,
            route,
            status = self.status.as_u16(),
            provider = routed.map(|r| r.provider.as_str()),
            model = routed.map(|r| r.model.as_str()),
            duration_ms = millis(elapsed),
            added_ms = millis(added),
            upstream_requests = self.record.upstream.exchanges(),
            input_tokens = tokens.map(|t| t.input),
            output_tokens = tokens.map(|t| t.output),
            "{} {} -> {} in {:?}{}",
            self.method,
            self.path,
            self.status.as_u16(),
            elapsed,
            if provider.is_empty() { String::new() } else { format!(" ({provider})") }
        );
    }

    fn record_metrics(
        &self,
        m: &metrics::Metrics,
        route: &str,
        elapsed: Duration,
        added: Duration,
    ) {
        let api = self.api;
        let routed = self.record.routed();
        let provider = routed.map_or("", |r| r.provider.as_str());
        let code = self.status.as_u16();
        let outcome = if code < 400 { "success" } else { "error" };
        let code_text = code.to_string();
        let method = self.method.as_str();
        m.requests
            .get([api, route, method, outcome, &code_text, provider])
            .add(1);
        m.request_duration
            .get([api, route, method])
            .observe(elapsed.as_secs_f64());
        m.added_time.get([api, route]).observe(added.as_secs_f64());
        m.concurrent_requests.get([api]).add(-1);
        let Some(routed) = routed else {
            return;
        };
        let (op, model) = (routed.operation, routed.model.as_str());
        let exchanges = self.record.upstream.exchanges();
        if exchanges > 0 {
            m.upstream_exchanges.get([provider]).add(exchanges.into());
        }
        let error_type = if code < 400 { "" } else { code_text.as_str() };
        m.operation_duration
            .get([op, provider, model, error_type])
            .observe(elapsed.as_secs_f64());
        if let Some(ttft) = self.record.time_to_first_chunk() {
            m.time_to_first_token
                .get([op, provider, model])
                .observe(ttft.as_secs_f64());
        }
        if let Some(tokens) = self.record.tokens() {
            m.token_usage
                .get([op, provider, model, "input"])
                .observe(tokens.input as f64);
            m.token_usage
                .get([op, provider, model, "output"])
                .observe(tokens.output as f64);
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// An answer body that records its request when it is finished or dropped.
struct Finished {
    inner: Body,
    finish: Option<Finish>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish.record();
        }
    }
}

impl HttpBody for Finished {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled
            && let Some(finish) = this.finish.take()
        {
            finish.record();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_come_from_valid_traceparents_only() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        for (header, expected) in [
            (format!("00-{trace}-00f067aa0ba902b7-01"), Some(trace)),
            (format!(" 00-{trace}-00f067aa0ba902b7-00 "), Some(trace)),
            (format!("ff-{trace}-00f067aa0ba902b7-01"), None),
            (format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)), None),
            (format!("00-{trace}-00f067aa0ba902b7"), None),
            ("00-xyz-00f067aa0ba902b7-01".to_string(), None),
        ] {
            assert_eq!(trace_id_of(&header), expected, "{header}");
        }
    }

    #[test]
    fn every_route_belongs_to_its_api() {
        assert_eq!(api_of("/v1/chat/completions"), "inference");
        assert_eq!(api_of("/v1/models/{*model_id}"), "models");
        assert_eq!(api_of("/v1/responses/{response_id}"), "responses");
        assert_eq!(api_of("/metrics"), "telemetry");
        assert_eq!(api_of("/nowhere"), "unknown");
    }
}
