//! The middleware of gateway keys; it runs before OGX's `server.auth`.
//!
//! 1. `/v1/health` and `/v1/version` pass untouched. On `/v1/admin/...`, a credential equal to
//!    the bootstrap admin key marks the request [`BootstrapAdmin`]; the admin routes check the
//!    rest.
//! 2. A credential that starts with [`GATEWAY_KEY_PREFIX`], in `Authorization: Bearer`,
//!    `x-api-key` or `x-goog-api-key`, is looked up: a valid key sets the request's
//!    [`Principal`] (the key's owner and attributes, source [`PrincipalSource::GatewayKey`])
//!    and the header is removed, so the secret goes no further; an unknown, disabled or expired
//!    key is a 401. Without one, a config with `gateway_keys.required` answers 401; otherwise
//!    the request goes on for `server.auth` (if any) to judge.
//! 3. On the inference routes ([`METERED_ROUTES`]) a keyed request's model must be allowed
//!    (403) and its limits not reached ([`limits::admit`]: 429, or 402 for a budget when so
//!    configured). A streamed chat or text completion whose client did not ask for
//!    `stream_options.include_usage` gets it asked for, and the usage-only chunk is removed
//!    from what the client sees. The answer's usage is counted when the answer ends (or the
//!    client goes away), on a task of its own.
//!
//! Errors are OpenAI-shaped, and Anthropic-shaped on `/v1/messages...`.

use super::key::{GATEWAY_KEY_PREFIX, KeyRecord};
use super::limits;
use super::usage::{self, SseMeter, Usage};
use super::{GatewayKeyError, GatewayKeys};
use crate::auth::{Principal, PrincipalSource};
use crate::server::errors::{AnthropicError, ApiError};
use crate::server::{AppState, MAX_REQUEST_BODY_BYTES};
use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The routes whose requests are checked against a key's models and limits and metered.
pub const METERED_ROUTES: &[&str] = &[
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/responses",
    "/v1/messages",
];

/// Routes open to everyone, keys required or not.
const PUBLIC_ROUTES: &[&str] = &["/v1/health", "/v1/version"];

/// A request that presented the bootstrap admin key (set on admin routes only).
#[derive(Debug, Clone, Copy)]
pub struct BootstrapAdmin;

/// The key a request was authenticated with.
#[derive(Debug, Clone)]
pub struct GatewayKeyGrant(pub KeyRecord);

/// The headers a key may come in, and how to read the key out of each value.
const KEY_HEADERS: [(HeaderName, bool); 3] = [
    (header::AUTHORIZATION, true),
    (HeaderName::from_static("x-api-key"), false),
    (HeaderName::from_static("x-goog-api-key"), false),
];

/// Each credential the request carries, with its header.
fn credentials(headers: &HeaderMap) -> impl Iterator<Item = (HeaderName, &str)> {
    KEY_HEADERS.into_iter().filter_map(move |(name, bearer)| {
        let value = headers.get(&name)?.to_str().ok()?.trim();
        let value = if bearer {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))?
                .trim()
        } else {
            value
        };
        Some((name, value))
    })
}

/// The middleware; see the module documentation.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(keys) = state.gateway_keys.clone() else {
        return next.run(request).await;
    };
    guard_with(keys, request, next).await
}

async fn guard_with(keys: Arc<GatewayKeys>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let anthropic = path.starts_with("/v1/messages");
    if PUBLIC_ROUTES.contains(&path.as_str()) {
        return next.run(request).await;
    }
    if path.starts_with("/v1/admin/") {
        let bootstrap = credentials(request.headers())
            .any(|(_, credential)| keys.is_bootstrap_admin_key(credential));
        if bootstrap {
            request.extensions_mut().insert(BootstrapAdmin);
        }
        return next.run(request).await;
    }
    let presented = credentials(request.headers())
        .find(|(_, credential)| credential.starts_with(GATEWAY_KEY_PREFIX))
        .map(|(name, credential)| (name, credential.to_string()));
    let Some((header_name, secret)) = presented else {
        if keys.config.required {
            return refuse(GatewayKeyError::Missing, anthropic);
        }
        return next.run(request).await;
    };
    let record = match keys.authenticate(&secret).await {
        Ok(record) => record,
        Err(error) => return refuse(error, anthropic),
    };
    request.headers_mut().remove(&header_name);
    request.extensions_mut().insert(Principal {
        id: record.settings.owner.clone(),
        attributes: record.settings.attributes.clone(),
        source: PrincipalSource::GatewayKey {
            key_id: record.id.clone(),
        },
    });
    request
        .extensions_mut()
        .insert(GatewayKeyGrant(record.clone()));
    if request.method() == Method::POST && METERED_ROUTES.contains(&path.as_str()) {
        return enforce(keys, record, request, next, &path).await;
    }
    next.run(request).await
}

fn refuse(error: GatewayKeyError, anthropic: bool) -> Response {
    if anthropic {
        AnthropicError(ApiError::GatewayKey(error)).into_response()
    } else {
        ApiError::GatewayKey(error).into_response()
    }
}

async fn enforce(
    keys: Arc<GatewayKeys>,
    record: KeyRecord,
    request: Request,
    next: Next,
    path: &str,
) -> Response {
    let anthropic = path.starts_with("/v1/messages");
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_REQUEST_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let error = ApiError::BadRequest(format!(
                "The request body could not be read or is over {MAX_REQUEST_BODY_BYTES} bytes."
            ));
            return if anthropic {
                AnthropicError(error).into_response()
            } else {
                error.into_response()
            };
        }
    };
    let mut parsed = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(fields)) => fields,
        // Not a JSON object: the route answers its 400, and nothing is counted.
        _ => {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await;
        }
    };
    let Some(model) = parsed
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return next
            .run(Request::from_parts(parts, Body::from(bytes)))
            .await;
    };
    if !record.settings.allows_model(&model) {
        return refuse(GatewayKeyError::ModelNotAllowed(model), anthropic);
    }
    if let Err(error) = limits::admit(&keys.store, &record, keys.config.over_budget_status).await {
        if let GatewayKeyError::Store(detail) = &error {
            tracing::error!("gateway key store failed: {detail}");
        }
        return refuse(error, anthropic);
    }
    let streamed = parsed.get("stream") == Some(&Value::Bool(true));
    let chat_or_text = matches!(path, "/v1/chat/completions" | "/v1/completions");
    let client_asked_usage = parsed
        .get("stream_options")
        .and_then(|options| options.get("include_usage"))
        == Some(&Value::Bool(true));
    let strip_usage = streamed && chat_or_text && !client_asked_usage;
    let body = if strip_usage {
        let options = parsed.entry("stream_options").or_insert_with(|| json!({}));
        if !options.is_object() {
            *options = json!({});
        }
        options["include_usage"] = Value::Bool(true);
        Bytes::from(Value::Object(parsed).to_string())
    } else {
        bytes
    };
    let response = next.run(Request::from_parts(parts, Body::from(body))).await;
    if !response.status().is_success() {
        return response;
    }
    let charge = Charge {
        keys,
        record,
        model,
    };
    let is_stream = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let (parts, body) = response.into_parts();
    if is_stream {
        let metered = MeteredStream {
            inner: body.into_data_stream(),
            meter: SseMeter::new(strip_usage),
            charge: Some(charge),
        };
        return Response::from_parts(parts, Body::from_stream(metered));
    }
    match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let usage = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .as_ref()
                .and_then(usage::from_answer)
                .unwrap_or_default();
            charge.finish(usage);
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(error) => {
            charge.finish(Usage::default());
            tracing::warn!("an answer could not be read for metering: {error}");
            ApiError::BadRequest("the answer could not be read".into()).into_response()
        }
    }
}

/// Counts a served request against its key once its usage is known.
struct Charge {
    keys: Arc<GatewayKeys>,
    record: KeyRecord,
    model: String,
}

impl Charge {
    fn finish(self, usage: Usage) {
        // A stream dropped while the server shuts down may find no runtime: nothing to count on.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let spend = limits::cost_nanos(&self.keys.config.prices, &self.model, &usage);
            if let Err(error) = limits::charge(&self.keys.store, &self.record, &usage, spend).await
            {
                tracing::error!(key_id = %self.record.id, "a request's usage could not be counted: {error}");
            }
        });
    }
}

/// A streamed answer passed through an [`SseMeter`]; its usage is counted when it ends or is
/// dropped (the client went away).
struct MeteredStream {
    inner: BodyDataStream,
    meter: SseMeter,
    charge: Option<Charge>,
}

impl Stream for MeteredStream {
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.inner.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    let out = self.meter.pass(&bytes);
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => {
                    let Some(charge) = self.charge.take() else {
                        return Poll::Ready(None);
                    };
                    let rest = self.meter.finish();
                    charge.finish(self.meter.usage());
                    return Poll::Ready((!rest.is_empty()).then_some(Ok(rest)));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for MeteredStream {
    fn drop(&mut self) {
        if let Some(charge) = self.charge.take() {
            charge.finish(self.meter.usage());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_read_from_each_client_family_s_header() {
        for (name, value, expected) in [
            ("authorization", "Bearer sk-ogx-1", "sk-ogx-1"),
            ("authorization", "bearer  sk-ogx-1 ", "sk-ogx-1"),
            ("x-api-key", "sk-ogx-2", "sk-ogx-2"),
            ("x-goog-api-key", "sk-ogx-3", "sk-ogx-3"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(HeaderName::from_static(name), value.parse().unwrap());
            let found: Vec<_> = credentials(&headers).collect();
            assert_eq!(found.len(), 1, "{name}");
            assert_eq!((found[0].0.as_str(), found[0].1), (name, expected));
        }
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(credentials(&basic).count(), 0);
    }
}
