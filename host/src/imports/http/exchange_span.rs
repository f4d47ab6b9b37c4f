//! The trace context of one outbound exchange: the `traceparent` header it carries and, with
//! tracing on, its CLIENT span (`telemetry::trace`).
//!
//! With tracing on, each exchange (each retry too: routing retries the whole provider call)
//! gets a span that is a child of the plugin-call span, and sends
//! `traceparent: 00-<trace>-<this span>-<flags>`. With tracing off, the client's own
//! `traceparent` (if it sent one) goes upstream unchanged. Either way a `traceparent` the
//! plugin set is replaced. The span's attributes hold the method, the host, the port, the URL
//! without its query (which may hold a key) and the status; never a header or a body.

use super::{HttpError, OutboundRequest};
use crate::telemetry::trace::{Kind, Propagation, Span, TRACEPARENT_HEADER};
use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use reqwest::Url;

/// Sets the `traceparent` of an exchange about to go to `url`, and starts its span.
pub(super) fn start(request: &OutboundRequest, url: &Url, headers: &mut HeaderMap) -> Option<Span> {
    let name = HeaderName::from_static(TRACEPARENT_HEADER);
    match request.trace.as_ref()? {
        Propagation::Forward(traceparent) => {
            if let Ok(value) = HeaderValue::from_str(traceparent) {
                headers.insert(name, value);
            }
            None
        }
        Propagation::Traced { parent, resend } => {
            let method = http::Method::from(request.method);
            let mut span = Span::child_of(parent, method.as_str(), Kind::Client);
            if let Ok(value) = HeaderValue::from_str(&span.context().traceparent()) {
                headers.insert(name, value);
            }
            if span.is_recording() {
                let mut bare = url.clone();
                bare.set_query(None);
                bare.set_fragment(None);
                span.set("http.request.method", method.as_str());
                span.set("server.address", url.host_str().unwrap_or_default());
                if let Some(port) = url.port_or_known_default() {
                    span.set("server.port", i64::from(port));
                }
                span.set("url.full", String::from(bare));
                if *resend > 0 {
                    span.set("http.request.resend_count", i64::from(*resend));
                }
            }
            Some(span)
        }
    }
}

/// Notes the response status (4xx and 5xx mark the span failed).
pub(super) fn answered(span: &mut Option<Span>, status: u16) {
    if let Some(span) = span {
        span.set("http.response.status_code", i64::from(status));
        if status >= 400 {
            span.set("error.type", status.to_string());
            span.fail(status.to_string());
        }
    }
}

/// Notes a failed exchange: its kind only (messages name hosts, not secrets, but stay out).
pub(super) fn failed(span: &mut Option<Span>, error: &HttpError) {
    if let Some(span) = span {
        let kind = match error {
            HttpError::Denied(_) => "denied",
            HttpError::InvalidRequest(_) => "invalid_request",
            HttpError::Connect(_) => "connect",
            HttpError::Timeout(_) => "timeout",
            HttpError::Credentials(_) => "credentials",
            HttpError::Protocol(_) => "protocol",
            HttpError::TooLarge(_) => "too_large",
        };
        span.set("error.type", kind);
        span.fail(kind);
    }
}
