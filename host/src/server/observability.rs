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
//! With tracing on (`telemetry::trace`), each request gets a SERVER span, a child of the
//! client's `traceparent` when that is valid (its trace id is the log line's `trace_id`); the
//! span's context goes down with the provider calls like the upstream clock, and the span
//! ends, with its GenAI attributes, when the log line is written. With tracing off, a client's
//! `traceparent` is only forwarded upstream as it came.
//!
//! Handlers say where a request went with [`routed`] and hand streamed chunks through
//! [`observed`]; answers' `usage` is noted by `routes::inference::answer_object`.

use super::AppState;
use super::REQUEST_ID_HEADER;
use crate::registry::Route;
use crate::runtime::{ChunkStream, EventStream};
use crate::telemetry::metrics::{self, OTHER_MODEL};
use crate::telemetry::record::{self, RequestRecord, Routed};
use crate::telemetry::trace::{self, Propagation, Span, SpanContext, TRACEPARENT_HEADER};
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
    let traceparent = request
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string());
    let remote = traceparent.and_then(SpanContext::parse);
    let (span, propagation) = match trace::tracer() {
        Some(tracer) => {
            let name = format!(
                "{} {}",
                request.method(),
                route.as_deref().unwrap_or(request.uri().path())
            );
            let span = tracer.server_span(remote, name);
            let propagation = Propagation::Traced {
                parent: span.context(),
                resend: 0,
            };
            (Some(span), Some(propagation))
        }
        // Tracing off: a valid client traceparent goes upstream as it came.
        None => (
            None,
            traceparent
                .filter(|_| remote.is_some())
                .map(|t| Propagation::Forward(t.trim().into())),
        ),
    };
    let trace_id = match &span {
        Some(span) => Some(span.context()),
        None => remote,
    }
    .map(|context| context.trace_id_hex());
    let api = route.as_deref().map_or("unknown", api_of);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    if let Some(m) = metrics::get() {
        m.concurrent_requests.get([api]).add(1);
    }
    let record = Arc::new(RequestRecord::propagating(started, propagation));
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
        span,
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
        let traced = record.traced().then(|| {
            let provider_type = route.provider.provider_type();
            Box::new((
                requested.to_string(),
                provider_type
                    .strip_prefix("remote::")
                    .unwrap_or(provider_type)
                    .to_string(),
            ))
        });
        record.route(Routed {
            operation,
            traced,
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
    if let Some(tracer) = trace::tracer() {
        let (exported, failed) = tracer.export_counts();
        let _ = write!(
            out,
            "# HELP ogx_trace_spans_exported_total Spans the OTLP collector accepted.\n\
             # TYPE ogx_trace_spans_exported_total counter\n\
             ogx_trace_spans_exported_total {exported}\n\
             # HELP ogx_trace_spans_failed_total Spans lost to failed OTLP exports.\n\
             # TYPE ogx_trace_spans_failed_total counter\n\
             ogx_trace_spans_failed_total {failed}\n\
             # HELP ogx_trace_spans_dropped_total Spans dropped because the export queue was full.\n\
             # TYPE ogx_trace_spans_dropped_total counter\n\
             ogx_trace_spans_dropped_total {}\n",
            tracer.dropped()
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

/// What is recorded when the answer is over.
struct Finish {
    record: Arc<RequestRecord>,
    id: String,
    trace_id: Option<String>,
    /// The request's SERVER span, when tracing is on.
    span: Option<Span>,
    api: &'static str,
    route: Option<String>,
    method: Method,
    path: String,
    status: StatusCode,
}

impl Finish {
    fn record(mut self) {
        if let Some(span) = self.span.take() {
            self.end_span(span);
        }
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

    /// Ends the SERVER span with the request's HTTP and GenAI attributes.
    fn end_span(&self, mut span: Span) {
        if !span.is_recording() {
            return;
        }
        let code = self.status.as_u16();
        span.set("http.request.method", self.method.as_str());
        if let Some(route) = &self.route {
            span.set("http.route", route.as_str());
        }
        span.set("url.path", self.path.as_str());
        span.set("http.response.status_code", i64::from(code));
        span.set("ogx.request_id", self.id.as_str());
        if code >= 500 {
            span.set("error.type", code.to_string());
            span.fail(code.to_string());
        }
        if let Some(routed) = self.record.routed() {
            span.set("gen_ai.operation.name", routed.operation);
            span.set("ogx.provider.id", routed.provider.as_str());
            if let Some(traced) = &routed.traced {
                span.set("gen_ai.request.model", traced.0.as_str());
                span.set("gen_ai.provider.name", traced.1.as_str());
            }
        }
        if let Some(model) = self.record.response_model() {
            span.set("gen_ai.response.model", model);
        }
        if let Some(tokens) = self.record.tokens() {
            span.set(
                "gen_ai.usage.input_tokens",
                i64::try_from(tokens.input).unwrap_or(i64::MAX),
            );
            span.set(
                "gen_ai.usage.output_tokens",
                i64::try_from(tokens.output).unwrap_or(i64::MAX),
            );
        }
        span.set(
            "ogx.upstream_requests",
            i64::from(self.record.upstream.exchanges()),
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
    fn every_route_belongs_to_its_api() {
        assert_eq!(api_of("/v1/chat/completions"), "inference");
        assert_eq!(api_of("/v1/models/{*model_id}"), "models");
        assert_eq!(api_of("/v1/responses/{response_id}"), "responses");
        assert_eq!(api_of("/metrics"), "telemetry");
        assert_eq!(api_of("/nowhere"), "unknown");
    }
}
