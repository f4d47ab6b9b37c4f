//! A fake host for native unit tests: provider logic runs under `cargo test` on the host
//! target, without wasm and without a server.
//!
//! On the host target (anything but `wasm32`) the SDK's imports do not reach ogx: [`http`]
//! answers from the recorded responses of the [`FakeHost`] installed on the current thread
//! and records every request it was asked to send; [`config::env`] reads the fake's
//! variables; [`kv`] keeps a map in memory; [`log`] lines are kept for inspection. A request
//! with no recorded answer fails with [`HttpError::Connect`] naming its method and URL, so a
//! test shows what the code tried to reach.
//!
//! ```
//! use ogx_provider_sdk::testing::{FakeHost, FakeResponse};
//! use ogx_provider_sdk::http::Request;
//!
//! let host = FakeHost::new()
//!     .env("EXAMPLE_BASE_URL", "http://upstream.test/v1")
//!     .on("GET", "http://upstream.test/v1/models",
//!         FakeResponse::json(200, serde_json::json!({"data": [{"id": "m1"}]})))
//!     .install();
//!
//! let answer = Request::get("http://upstream.test/v1/models").bearer("sk-test").send().unwrap();
//! assert_eq!(answer.status, 200);
//! let sent = host.requests();
//! assert_eq!(sent[0].url, "http://upstream.test/v1/models");
//! assert_eq!(sent[0].bearer.as_deref(), Some("sk-test"));
//! ```
//!
//! [`http`]: crate::http
//! [`config::env`]: crate::config::env
//! [`kv`]: crate::kv
//! [`log`]: crate::log

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde_json::Value;

use crate::__bindings::ogx::provider::outbound_http as wit;
use crate::http::{Frame, HttpError};
use crate::provider::Provider;
use crate::{ProviderError, Settings};

/// A recorded answer: a status, headers and a body, or a transport error.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    outcome: Result<Recorded, HttpError>,
}

#[derive(Debug, Clone)]
struct Recorded {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Explicit frames for a streamed answer; `None` splits `body` by the requested framing.
    frames: Option<Vec<Frame>>,
}

impl FakeResponse {
    /// A response with `status` and a raw `body`.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        FakeResponse {
            outcome: Ok(Recorded {
                status,
                headers: Vec::new(),
                body: body.into(),
                frames: None,
            }),
        }
    }

    /// A JSON response (`content-type: application/json`).
    pub fn json(status: u16, body: Value) -> Self {
        FakeResponse::new(status, body.to_string()).header("content-type", "application/json")
    }

    /// A server-sent-events body (`content-type: text/event-stream`), written as the upstream
    /// sends it, e.g. `"data: {...}\n\ndata: [DONE]\n\n"`. Streamed with [`crate::http::Framing::Sse`],
    /// it arrives as one frame per event.
    pub fn sse(status: u16, body: impl Into<String>) -> Self {
        FakeResponse::new(status, body.into()).header("content-type", "text/event-stream")
    }

    /// A streamed response made of exactly these frames, whatever the framing asked.
    pub fn frames(status: u16, frames: Vec<Frame>) -> Self {
        let mut response = FakeResponse::new(status, Vec::new());
        if let Ok(recorded) = &mut response.outcome {
            recorded.frames = Some(frames);
        }
        response
    }

    /// No response: the request fails with `error` (a refused connection, a timeout...).
    pub fn error(error: HttpError) -> Self {
        FakeResponse {
            outcome: Err(error),
        }
    }

    /// Adds a response header (stored with a lower-case name, as the host passes them).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Ok(recorded) = &mut self.outcome {
            recorded
                .headers
                .push((name.to_ascii_lowercase(), value.to_owned()));
        }
        self
    }
}

/// How the host was asked to authenticate a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedAuth {
    /// No authentication added by the host.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// AWS SigV4 for `service` in `region`.
    AwsSigV4 {
        /// The signing name, e.g. `bedrock`.
        service: String,
        /// The region, e.g. `us-east-1`.
        region: String,
    },
    /// A token the host obtains from a cloud identity (Google, Azure Entra ID, IAM).
    HostIdentity,
}

/// A request the plugin asked the host to send.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The absolute URL.
    pub url: String,
    /// The headers the plugin set, as it set them.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
    /// The bearer token, when the plugin asked for bearer auth (also in [`Self::auth`]).
    pub bearer: Option<String>,
    /// The authentication the plugin asked for.
    pub auth: RecordedAuth,
    /// The timeout the plugin set, if any.
    pub timeout: Option<Duration>,
    /// Whether it was sent with `send_streaming`.
    pub streaming: bool,
}

impl RecordedRequest {
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    routes: Vec<(String, String, FakeResponse)>,
    env: BTreeMap<String, String>,
    requests: Vec<RecordedRequest>,
    kv: BTreeMap<String, Vec<u8>>,
    logs: Vec<String>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// The fake host being set up: recorded answers by method and URL, environment variables
/// and kv entries. [`FakeHost::install`] makes it the current thread's host.
#[derive(Default)]
pub struct FakeHost {
    state: State,
}

impl FakeHost {
    /// A host with no recorded answers, no environment and an empty kv store.
    pub fn new() -> Self {
        FakeHost::default()
    }

    /// Answers every `method` request to exactly `url` with `response` (the first matching
    /// route wins; a route answers as often as it is asked).
    pub fn on(mut self, method: &str, url: &str, response: FakeResponse) -> Self {
        self.state
            .routes
            .push((method.to_ascii_uppercase(), url.to_owned(), response));
        self
    }

    /// Sets an environment variable the plugin reads with [`crate::config::env`] (the fake
    /// does not check the descriptor's `env_vars`; ogx does).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.state.env.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Stores a kv entry before the test runs.
    pub fn kv(mut self, key: &str, value: &[u8]) -> Self {
        self.state.kv.insert(key.to_owned(), value.to_vec());
        self
    }

    /// Makes this the current thread's host (replacing any other) until the guard is dropped.
    pub fn install(self) -> Installed {
        STATE.with(|s| *s.borrow_mut() = self.state);
        Installed { _private: () }
    }
}

/// The installed [`FakeHost`]: read what the plugin did through it. Dropping it resets the
/// thread's host to an empty one.
pub struct Installed {
    _private: (),
}

impl Installed {
    /// Every request sent so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        STATE.with(|s| s.borrow().requests.clone())
    }

    /// The log lines written so far, as `level: message`.
    pub fn logs(&self) -> Vec<String> {
        STATE.with(|s| s.borrow().logs.clone())
    }

    /// The kv store's entries now.
    pub fn kv_entries(&self) -> BTreeMap<String, Vec<u8>> {
        STATE.with(|s| s.borrow().kv.clone())
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        STATE.with(|s| *s.borrow_mut() = State::default());
    }
}

/// Deserializes `config` as the host does for `init` (a failure names the provider and the
/// field, as the client would see it) and calls [`Provider::init`] with it.
pub fn init<P: Provider>(
    provider_id: &str,
    provider_type: &str,
    config: Value,
) -> Result<P, ProviderError> {
    let config = crate::export::parse_config(provider_id, provider_type, &config.to_string())?;
    P::init(Settings {
        provider_id: provider_id.to_owned(),
        provider_type: provider_type.to_owned(),
        config,
    })
}

fn method_name(method: wit::Method) -> &'static str {
    match method {
        wit::Method::Get => "GET",
        wit::Method::Post => "POST",
        wit::Method::Put => "PUT",
        wit::Method::Patch => "PATCH",
        wit::Method::Delete => "DELETE",
        wit::Method::Head => "HEAD",
    }
}

/// Records `request` and finds its answer.
fn answer(request: &wit::Request, streaming: bool) -> Result<Recorded, HttpError> {
    let method = method_name(request.method);
    let (bearer, auth) = match &request.auth {
        wit::Auth::None => (None, RecordedAuth::None),
        wit::Auth::Bearer(token) => (Some(token.clone()), RecordedAuth::Bearer(token.clone())),
        wit::Auth::AwsSigv4(signing) => (
            None,
            RecordedAuth::AwsSigV4 {
                service: signing.service.clone(),
                region: signing.region.clone(),
            },
        ),
        // Cloud identities the host resolves (Google, Azure, IAM): recorded by kind only.
        _ => (None, RecordedAuth::HostIdentity),
    };
    STATE.with(|s| {
        let mut state = s.borrow_mut();
        state.requests.push(RecordedRequest {
            method: method.to_owned(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: request.body.clone(),
            bearer,
            auth,
            timeout: request.timeout_ms.map(|ms| Duration::from_millis(ms.into())),
            streaming,
        });
        state
            .routes
            .iter()
            .find(|(m, url, _)| m == method && *url == request.url)
            .map(|(_, _, response)| response.outcome.clone())
            .unwrap_or_else(|| {
                Err(HttpError::Connect(format!(
                    "the fake host has no recorded answer for {method} {} (add one with FakeHost::on)",
                    request.url
                )))
            })
    })
}

pub(crate) fn send(request: &wit::Request) -> Result<crate::http::Response, HttpError> {
    let recorded = answer(request, false)?;
    Ok(crate::http::Response {
        status: recorded.status,
        headers: recorded.headers,
        body: recorded.body,
    })
}

/// The status, headers and frames of a streamed answer.
pub(crate) type StreamedAnswer = (u16, Vec<(String, String)>, VecDeque<Frame>);

pub(crate) fn send_streaming(
    request: &wit::Request,
    framing: crate::http::Framing,
) -> Result<StreamedAnswer, HttpError> {
    let recorded = answer(request, true)?;
    let frames = match recorded.frames {
        Some(frames) => frames.into(),
        None => split(&recorded.body, framing)?,
    };
    Ok((recorded.status, recorded.headers, frames))
}

/// Splits a recorded body as the host would frame it.
fn split(body: &[u8], framing: crate::http::Framing) -> Result<VecDeque<Frame>, HttpError> {
    use crate::http::Framing;
    match framing {
        Framing::Raw if body.is_empty() => Ok(VecDeque::new()),
        Framing::Raw => Ok(VecDeque::from([Frame {
            event: None,
            data: body.to_vec(),
        }])),
        Framing::Sse => Ok(sse_frames(&String::from_utf8_lossy(body))),
        Framing::AwsEventStream => Err(HttpError::Protocol(
            "the fake host does not encode AWS event streams: record the frames with FakeResponse::frames"
                .into(),
        )),
    }
}

/// One frame per server-sent event that has data; comments and data-less events skipped.
fn sse_frames(text: &str) -> VecDeque<Frame> {
    let text = text.replace("\r\n", "\n");
    let mut frames = VecDeque::new();
    for block in text.split("\n\n") {
        let mut event = None;
        let mut data: Vec<&str> = Vec::new();
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event = Some(value.to_owned()),
                "data" => data.push(value),
                _ => {}
            }
        }
        if !data.is_empty() {
            frames.push_back(Frame {
                event,
                data: data.join("\n").into_bytes(),
            });
        }
    }
    frames
}

pub(crate) fn env(name: &str) -> Option<String> {
    STATE.with(|s| s.borrow().env.get(name).filter(|v| !v.is_empty()).cloned())
}

pub(crate) fn kv_get(key: &str) -> Option<Vec<u8>> {
    STATE.with(|s| s.borrow().kv.get(key).cloned())
}

pub(crate) fn kv_set(key: &str, value: &[u8]) {
    STATE.with(|s| s.borrow_mut().kv.insert(key.to_owned(), value.to_vec()));
}

pub(crate) fn kv_delete(key: &str) {
    STATE.with(|s| s.borrow_mut().kv.remove(key));
}

pub(crate) fn kv_list(prefix: &str) -> Vec<String> {
    STATE.with(|s| {
        s.borrow()
            .kv
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    })
}

pub(crate) fn log(level: &str, message: &str) {
    STATE.with(|s| s.borrow_mut().logs.push(format!("{level}: {message}")));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Framing, Request};

    #[test]
    fn requests_are_recorded_and_answered_by_route() {
        let host = FakeHost::new()
            .on(
                "post",
                "http://u.test/v1/chat/completions",
                FakeResponse::json(200, serde_json::json!({"id": "c1"})),
            )
            .install();
        let answer = Request::post("http://u.test/v1/chat/completions")
            .json(&serde_json::json!({"model": "m"}))
            .bearer("sk-1")
            .timeout(Duration::from_secs(3))
            .send()
            .unwrap();
        assert_eq!(answer.json::<Value>().unwrap()["id"], "c1");
        let sent = host.requests();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].method, "POST");
        assert_eq!(sent[0].json()["model"], "m");
        assert_eq!(sent[0].header("Content-Type"), Some("application/json"));
        assert_eq!(sent[0].auth, RecordedAuth::Bearer("sk-1".into()));
        assert_eq!(sent[0].timeout, Some(Duration::from_secs(3)));
        assert!(!sent[0].streaming);
    }

    #[test]
    fn an_unrecorded_request_fails_naming_it() {
        let _host = FakeHost::new().install();
        let err = Request::get("http://u.test/missing").send().unwrap_err();
        match err {
            HttpError::Connect(message) => assert!(message.contains("GET http://u.test/missing")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn sse_bodies_stream_one_frame_per_event() {
        let _host = FakeHost::new()
            .on(
                "POST",
                "http://u.test/s",
                FakeResponse::sse(
                    200,
                    ": comment\n\nevent: delta\ndata: {\"a\":1}\n\ndata: [DONE]\n\n",
                ),
            )
            .install();
        let stream = Request::post("http://u.test/s")
            .send_streaming(Framing::Sse)
            .unwrap();
        let frames: Vec<Frame> = stream.body.map(Result::unwrap).collect();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].event.as_deref(), Some("delta"));
        assert_eq!(frames[0].data_str(), "{\"a\":1}");
        assert_eq!(frames[1].data_str(), "[DONE]");
    }

    #[test]
    fn env_kv_and_logs_are_faked() {
        let host = FakeHost::new()
            .env("X_URL", "http://x")
            .kv("a", b"1")
            .install();
        assert_eq!(crate::config::env("X_URL").as_deref(), Some("http://x"));
        assert_eq!(crate::config::env("UNSET"), None);
        crate::kv::set("b", b"2").unwrap();
        assert_eq!(crate::kv::list_keys("").unwrap(), vec!["a", "b"]);
        crate::kv::delete("a").unwrap();
        assert_eq!(crate::kv::get("a").unwrap(), None);
        crate::log::info("hello");
        assert_eq!(host.logs(), vec!["info: hello"]);
        assert_eq!(host.kv_entries().len(), 1);
    }
}
