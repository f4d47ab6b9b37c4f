//! A fast OpenAI-compatible upstream for the benchmark (`scripts/bench.sh`): the floor that
//! ogx's added latency is measured against. It answers as quickly as a hyper server can, so
//! what the load generator sees through ogx minus what it sees here is ogx's own cost.
//!
//! Routes (all on 127.0.0.1, HTTP/1.1 with keep-alive):
//! - `POST /v1/chat/completions` and `POST /openai/v1/chat/completions` (the path the Bedrock
//!   plugin uses): a fixed answer naming the request's `model`; with `"stream": true`,
//!   [`DEFAULT_STREAM_CHUNKS`] `chat.completion.chunk` events (each after `--chunk-delay-ms`)
//!   and `data: [DONE]`.
//! - `POST /model/{modelId}/converse` and `/converse-stream`: Bedrock Converse (JSON) and
//!   ConverseStream (event-stream frames, each after `--chunk-delay-ms`), see [`converse`].
//! - `POST /v1/messages`: Anthropic Messages, whole or streamed, see [`messages`].
//! - `GET /v1/models`: one model, [`MODEL_ID`]. `GET /foundation-models`: the same model as
//!   Bedrock's ListFoundationModels, so the Bedrock plugin's listing works too.
//!
//! It does not check authentication (SigV4 or bearer): verifying signatures would add cost to
//! the floor. A body that is not JSON gets a 400; an unknown route a 404.
//!
//! Usage: `ogx-bench-upstream [--port P] [--stream-chunks N] [--chunk-delay-ms MS]
//! [--threads T]`. It prints `listening on 127.0.0.1:<port>` once it accepts connections
//! (`--port 0` picks a free port) and runs until SIGINT/SIGTERM.

mod converse;
mod messages;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// The one model served.
pub const MODEL_ID: &str = "bench-model";
/// Content chunks in a streamed answer (before the final chunk and `[DONE]`).
pub const DEFAULT_STREAM_CHUNKS: usize = 8;
/// Largest request body read (the benchmark's are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Debug, Clone)]
struct Options {
    port: u16,
    stream_chunks: usize,
    chunk_delay: Duration,
    threads: Option<usize>,
    /// The ConverseStream answer, encoded once.
    converse_frames: Vec<Bytes>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        stream_chunks: DEFAULT_STREAM_CHUNKS,
        chunk_delay: Duration::ZERO,
        threads: None,
        converse_frames: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--port" => {
                options.port = u16::try_from(value("--port")?).map_err(|e| e.to_string())?
            }
            "--stream-chunks" => options.stream_chunks = value("--stream-chunks")? as usize,
            "--chunk-delay-ms" => {
                options.chunk_delay = Duration::from_millis(value("--chunk-delay-ms")?)
            }
            "--threads" => options.threads = Some(value("--threads")? as usize),
            "-h" | "--help" => {
                return Err("usage: ogx-bench-upstream [--port P] [--stream-chunks N] \
                            [--chunk-delay-ms MS] [--threads T]"
                    .into());
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    options.converse_frames = converse::stream_frames(options.stream_chunks);
    Ok(options)
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("ogx-bench-upstream: {e}");
            std::process::exit(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build().expect("tokio runtime");
    if let Err(e) = runtime.block_on(serve(options)) {
        eprintln!("ogx-bench-upstream: {e}");
        std::process::exit(1);
    }
}

async fn serve(options: Options) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
    println!("listening on {}", listener.local_addr()?);
    let options = Arc::new(options);
    let shutdown = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let options = options.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, options.clone()));
            // A client that goes away mid-request is normal under load; nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()).boxed())
        .expect("static response parts")
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(
        status,
        &serde_json::json!({"error": {"message": message, "type": "invalid_request_error"}}),
    )
}

async fn answer(
    req: Request<Incoming>,
    options: Arc<Options>,
) -> Result<Response<Body>, Infallible> {
    let route = (req.method().clone(), req.uri().path().to_owned());
    Ok(match (&route.0, route.1.as_str()) {
        (&Method::POST, "/v1/chat/completions" | "/openai/v1/chat/completions") => {
            chat_completion(req, &options).await
        }
        (&Method::POST, "/v1/messages") => messages_answer(req, &options).await,
        (&Method::GET, "/v1/models") => json(
            StatusCode::OK,
            &serde_json::json!({"object": "list", "data": [
                {"id": MODEL_ID, "object": "model", "created": 1735689600, "owned_by": "bench"}]}),
        ),
        (&Method::GET, "/foundation-models") => json(
            StatusCode::OK,
            &serde_json::json!({"modelSummaries": [{
                "modelArn": format!("arn:aws:bedrock:us-west-2::foundation-model/{MODEL_ID}"),
                "modelId": MODEL_ID, "modelName": MODEL_ID, "providerName": "Bench",
                "inputModalities": ["TEXT"], "outputModalities": ["TEXT"],
                "responseStreamingSupported": true, "customizationsSupported": [],
                "inferenceTypesSupported": ["ON_DEMAND"],
                "modelLifecycle": {"status": "ACTIVE"}}]}),
        ),
        (&Method::POST, path) if converse::route(path).is_some() => {
            converse_answer(req, &options, converse::route(path) == Some(true)).await
        }
        (method, path) => error(StatusCode::NOT_FOUND, &format!("no route {method} {path}")),
    })
}

/// The fields of a chat request the answer depends on.
#[derive(serde::Deserialize)]
struct ChatRequest {
    model: String,
    #[serde(default)]
    stream: bool,
}

/// The request body, read whole (at most [`MAX_BODY_BYTES`]), or the 400 to answer.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    match http_body_util::Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("could not read the body: {e}"),
        )),
    }
}

/// Anthropic Messages, whole or streamed.
async fn messages_answer(req: Request<Incoming>, options: &Options) -> Response<Body> {
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request: messages::MessagesRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let message = format!("not a Messages request: {e}");
            return json(
                StatusCode::BAD_REQUEST,
                &messages::error("invalid_request_error", &message),
            );
        }
    };
    if !request.stream {
        return json(StatusCode::OK, &messages::answer(&request.model));
    }
    let events = messages::stream_events(&request.model, options.stream_chunks);
    delayed_stream(events, options.chunk_delay, "text/event-stream")
}

/// Converse (`stream` false) or ConverseStream.
async fn converse_answer(
    req: Request<Incoming>,
    options: &Options,
    stream: bool,
) -> Response<Body> {
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("not a Converse request: {e}"),
        );
    }
    if !stream {
        return full(StatusCode::OK, "application/json", converse::ANSWER);
    }
    let frames = options.converse_frames.clone();
    delayed_stream(
        frames,
        options.chunk_delay,
        "application/vnd.amazon.eventstream",
    )
}

/// A 200 whose body is `events`, each after `delay`.
fn delayed_stream(events: Vec<Bytes>, delay: Duration, content_type: &str) -> Response<Body> {
    let frames = futures::stream::unfold(events.into_iter(), move |mut events| async move {
        let event = events.next()?;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        Some((Ok::<_, Infallible>(Frame::data(event)), events))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .expect("static response parts")
}

async fn chat_completion(req: Request<Incoming>, options: &Options) -> Response<Body> {
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request: ChatRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("not a chat request: {e}")),
    };
    if !request.stream {
        return json(
            StatusCode::OK,
            &serde_json::json!({
                "id": "chatcmpl-bench", "object": "chat.completion", "created": 1735689600,
                "model": request.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "The answer is 42."}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18}}),
        );
    }
    let events = stream_events(&request.model, options.stream_chunks);
    delayed_stream(events, options.chunk_delay, "text/event-stream")
}

/// The server-sent events of a streamed answer: a role chunk, `chunks` content chunks, a
/// finish chunk, and `[DONE]`.
fn stream_events(model: &str, chunks: usize) -> Vec<Bytes> {
    let event = |delta: serde_json::Value, finish: Option<&str>| {
        let chunk = serde_json::json!({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1735689600,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        Bytes::from(format!("data: {chunk}\n\n"))
    };
    let mut events = Vec::with_capacity(chunks + 3);
    events.push(event(
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    ));
    for i in 0..chunks {
        events.push(event(
            serde_json::json!({"content": format!("word{i} ")}),
            None,
        ));
    }
    events.push(event(serde_json::json!({}), Some("stop")));
    events.push(Bytes::from_static(b"data: [DONE]\n\n"));
    events
}
