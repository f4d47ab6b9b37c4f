//! The floor proxy of the benchmark (`scripts/bench.sh`): the least a Rust gateway must do for a
//! request, run beside ogx in the same rounds so that ogx's figures are quoted as ratios to it.
//!
//! Per request it reads the JSON body, checks `model` against the names it was given (unknown:
//! 404), rewrites it to the upstream's id, forwards the request over a pooled keep-alive hyper
//! client and streams the answer back frame by frame as it comes (server-sent events pass
//! through unchanged). Nothing else: no authentication, history, logging or plugins. Requests
//! other than POST (`GET /v1/models`) are forwarded unchanged.
//!
//! Usage: `ogx-bench-floor --upstream http://127.0.0.1:P --model NAME=UPSTREAM_ID... [--port P]`.
//! It prints `listening on 127.0.0.1:<port>` once it accepts connections (`--port 0` picks a
//! free port) and runs until SIGINT/SIGTERM. A body that is not JSON with a string `model` is a
//! 400; an upstream that cannot be reached is a 502.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest request body read (the benchmark's are a few hundred bytes).
const MAX_BODY_BYTES: usize = 1 << 20;

type Body = BoxBody<Bytes, hyper::Error>;

struct Floor {
    /// `http://host:port`, without a trailing slash; the request's path is appended.
    upstream: String,
    /// Client-facing model name → the upstream's model id.
    models: HashMap<String, String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

fn parse_args() -> Result<(u16, String, HashMap<String, String>), String> {
    let (mut port, mut upstream, mut models) = (0, None, HashMap::new());
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--upstream" => upstream = Some(value()?.trim_end_matches('/').to_owned()),
            "--model" => {
                let pair = value()?;
                let (name, id) = pair
                    .split_once('=')
                    .ok_or("--model takes NAME=UPSTREAM_ID")?;
                models.insert(name.to_owned(), id.to_owned());
            }
            _ => {
                return Err(format!(
                    "unknown argument {flag:?}; usage: ogx-bench-floor --upstream URL --model NAME=UPSTREAM_ID... [--port P]"
                ));
            }
        }
    }
    Ok((port, upstream.ok_or("--upstream is required")?, models))
}

#[tokio::main]
async fn main() {
    let (port, upstream, models) = parse_args().unwrap_or_else(|e| {
        eprintln!("ogx-bench-floor: {e}");
        std::process::exit(2);
    });
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let floor = Arc::new(Floor {
        upstream,
        models,
        client,
    });
    if let Err(e) = serve(port, floor).await {
        eprintln!("ogx-bench-floor: {e}");
        std::process::exit(1);
    }
}

async fn serve(port: u16, floor: Arc<Floor>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let floor = floor.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| proxy(req, floor.clone()));
            // A client that goes away mid-request is normal under load; nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn proxy(req: Request<Incoming>, floor: Arc<Floor>) -> Result<Response<Body>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                &format!("could not read the body: {e}"),
            ));
        }
    };
    let body = if parts.method == Method::POST {
        match rewrite_model(&body, &floor.models) {
            Ok(body) => body,
            Err((status, message)) => return Ok(error(status, &message)),
        }
    } else {
        body
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut forward = Request::builder()
        .method(parts.method)
        .uri(format!("{}{path}", floor.upstream));
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        forward = forward.header(header::CONTENT_TYPE, content_type);
    }
    let forward = forward
        .body(Full::new(body))
        .expect("method, URI and header come from a valid request");
    match floor.client.request(forward).await {
        Ok(answer) => Ok(answer.map(BodyExt::boxed)),
        Err(e) => Ok(error(StatusCode::BAD_GATEWAY, &format!("upstream: {e}"))),
    }
}

/// The body with `model` replaced by the upstream's id, or the error's status and message.
fn rewrite_model(
    body: &[u8],
    models: &HashMap<String, String>,
) -> Result<Bytes, (StatusCode, String)> {
    let bad = |message: String| (StatusCode::BAD_REQUEST, message);
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let Some(model) = value.get_mut("model") else {
        return Err(bad("the body has no `model`".into()));
    };
    let name = model
        .as_str()
        .ok_or_else(|| bad("`model` must be a string".into()))?;
    let id = models
        .get(name)
        .ok_or_else(|| (StatusCode::NOT_FOUND, format!("model {name:?} not found")))?;
    *model = serde_json::Value::String(id.clone());
    Ok(serde_json::to_vec(&value)
        .expect("a JSON value serializes")
        .into())
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"message": message, "type": "invalid_request_error"}});
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(body.to_string()))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("static response parts")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> HashMap<String, String> {
        HashMap::from([("vllm/bench-model".to_owned(), "bench-model".to_owned())])
    }

    #[test]
    fn a_known_model_is_rewritten_and_the_rest_kept() {
        let body = br#"{"model":"vllm/bench-model","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
        let out: serde_json::Value =
            serde_json::from_slice(&rewrite_model(body, &models()).unwrap()).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"model": "bench-model", "stream": true,
                               "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn bad_bodies_and_unknown_models_are_refused() {
        for (body, status) in [
            (&br#"{"model":"gpt-4o"}"#[..], StatusCode::NOT_FOUND),
            (br#"{"model":7}"#, StatusCode::BAD_REQUEST),
            (br#"{"messages":[]}"#, StatusCode::BAD_REQUEST),
            (b"not json", StatusCode::BAD_REQUEST),
        ] {
            assert_eq!(rewrite_model(body, &models()).unwrap_err().0, status);
        }
    }
}
