//! The last layer every answer passes: secrets the host knows are scrubbed from its headers
//! and body before it leaves the process (see [`crate::secrets`] for what is known).
//!
//! For each request it makes the request's [`SecretSet`] live (under the request id that
//! `tag_request` gave it), adds the secret values of `X-OGX-Provider-Data`, and puts the set
//! into the request's extensions, where inner layers (authentication, gateway keys) add theirs.
//! Then, on the answer:
//! - nothing to look for (no process-wide and no request secret): the answer passes untouched;
//! - a body of known size (every JSON answer, success or error) is scrubbed in one pass;
//! - any other body (server-sent events) is scrubbed chunk by chunk by a
//!   [`StreamScrubber`], which holds back only a tail that could be the start of a secret, so
//!   a secret split across chunks is caught and events are not delayed.
//!
//! The request's set stays live until the body is finished or dropped, so the log lines a
//! stream causes are scrubbed of the request's secrets too. Cannot fail: an error of the
//! inner body is passed on as it is.

use super::REQUEST_ID_HEADER;
use super::provider_data;
use crate::secrets::{self, LiveGuard, SecretSet, StreamScrubber};
use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use std::borrow::Cow;

/// The middleware (see the module documentation).
pub async fn scrub_secrets(mut request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (set, guard) = secrets::enter(&request_id);
    // Read quietly: the handler's own reading warns about a header it cannot use.
    if let Some(value) = request
        .headers()
        .get(provider_data::PROVIDER_DATA_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
    {
        for secret in secrets::secret_values(&value) {
            set.add(&secret);
        }
    }
    request.extensions_mut().insert(set.clone());
    let response = next.run(request).await;
    scrub_response(response, &set, guard).await
}

async fn scrub_response(response: Response, set: &SecretSet, guard: LiveGuard) -> Response {
    let scrubber = set.with_global();
    if scrubber.is_empty() {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    for value in parts.headers.values_mut() {
        if let Cow::Owned(clean) = scrubber.scrub(value.as_bytes())
            && let Ok(clean) = HeaderValue::from_bytes(&clean)
        {
            *value = clean;
        }
    }
    let body = if body.size_hint().exact().is_some() {
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => match scrubber.scrub(&bytes) {
                Cow::Borrowed(_) => Body::from(bytes),
                Cow::Owned(clean) => {
                    parts.headers.remove(header::CONTENT_LENGTH);
                    Body::from(clean)
                }
            },
            Err(error) => {
                Body::from_stream(futures::stream::once(async move { Err::<Bytes, _>(error) }))
            }
        }
    } else {
        parts.headers.remove(header::CONTENT_LENGTH);
        scrub_stream(body, StreamScrubber::new((*scrubber).clone()), guard)
    };
    Response::from_parts(parts, body)
}

/// `body` scrubbed chunk by chunk; `guard` keeps the request's secrets live until it ends.
fn scrub_stream(body: Body, scrubber: StreamScrubber, guard: LiveGuard) -> Body {
    struct State {
        data: axum::body::BodyDataStream,
        scrubber: StreamScrubber,
        guard: Option<LiveGuard>,
    }
    let state = State {
        data: body.into_data_stream(),
        scrubber,
        guard: Some(guard),
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        state.guard.as_ref()?;
        loop {
            match state.data.next().await {
                Some(Ok(chunk)) => {
                    let out = state.scrubber.push(&chunk);
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), state));
                    }
                }
                Some(Err(error)) => {
                    state.guard = None;
                    return Some((Err(error), state));
                }
                None => {
                    state.guard = None;
                    let rest = state.scrubber.finish();
                    return (!rest.is_empty()).then(|| (Ok(Bytes::from(rest)), state));
                }
            }
        }
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use tower::ServiceExt;

    const KEY: &str = "pd-key-scrub-test-000111";

    async fn answer(router: Router, chunked: bool) -> (axum::http::HeaderMap, String) {
        let request = Request::builder()
            .uri(if chunked { "/stream" } else { "/json" })
            .header(REQUEST_ID_HEADER, "scrub-test")
            .header(
                provider_data::PROVIDER_DATA_HEADER,
                format!(r#"{{"openai_api_key": "{KEY}"}}"#),
            )
            .body(Body::empty())
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn router() -> Router {
        Router::new()
            .route(
                "/json",
                get(|| async {
                    (
                        [("x-echo", format!("Bearer {KEY}"))],
                        format!(r#"{{"error":{{"message":"bad key {KEY}"}}}}"#),
                    )
                }),
            )
            .route(
                "/stream",
                get(|| async {
                    let (a, b) = KEY.split_at(7);
                    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                        Ok(Bytes::from(format!("data: {{\"error\": \"{a}"))),
                        Ok(Bytes::from(format!("{b}\"}}\n\n"))),
                    ];
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .layer(axum::middleware::from_fn(scrub_secrets))
    }

    #[tokio::test]
    async fn provider_data_keys_are_scrubbed_from_headers_and_bodies() {
        let (headers, body) = answer(router(), false).await;
        assert_eq!(body, r#"{"error":{"message":"bad key ********"}}"#);
        assert_eq!(headers["x-echo"], "Bearer ********");
        let (_, body) = answer(router(), true).await;
        assert_eq!(body, "data: {\"error\": \"********\"}\n\n");
    }
}
