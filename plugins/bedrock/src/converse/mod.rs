//! Chat completions through Bedrock's Converse API (`POST /model/{modelId}/converse`) and
//! ConverseStream (`/converse-stream`, an `application/vnd.amazon.eventstream` body that the
//! host splits into checked messages).
//!
//! - [`request`]: the OpenAI body → a Converse body; [`content`]: content parts → blocks;
//! - [`response`]: a Converse answer → `chat.completion`;
//! - [`stream`]: ConverseStream events → `chat.completion.chunk`s;
//! - [`errors`]: Bedrock exceptions (answers and mid-stream frames) → client errors.
//!
//! An error before the stream starts is a normal HTTP error; an exception frame after it
//! is the stream's last item (the host sends it as one SSE error event and ends).

pub mod content;
pub mod errors;
pub mod request;
pub mod response;
pub mod stream;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ogx_provider_sdk::http::{Framing, HttpError, Request};
use ogx_provider_sdk::{ChunkStream, ProviderError, Value, log};

use crate::auth::AuthMode;
use crate::routing::{self, ModelSettings};
use response::Envelope;

/// What one Converse call needs from the provider.
pub struct Call<'a> {
    /// The runtime endpoint, e.g. `https://bedrock-runtime.us-west-2.amazonaws.com`.
    pub runtime_url: &'a str,
    /// The region (for messages that name an inference profile).
    pub region: &'a str,
    /// How the request authenticates.
    pub mode: &'a AuthMode,
    /// The model's `model_overrides` settings.
    pub settings: ModelSettings,
    /// The id of the API request (used when Bedrock sends none).
    pub request_id: &'a str,
    /// Time left for the whole request.
    pub time_left: Duration,
    /// Adds the configured headers, the auth and the time limit to an upstream request.
    pub finish: &'a dyn Fn(Request) -> Request,
}

impl Call<'_> {
    fn url(&self, model: &str, operation: &str) -> String {
        format!(
            "{}/model/{}/{operation}",
            self.runtime_url,
            routing::path_segment(model)
        )
    }

    fn transport(&self, err: HttpError) -> ProviderError {
        crate::errors::transport_error(err, self.mode)
    }

    fn fetch_image(&self, url: &str) -> Result<(Option<String>, Vec<u8>), ProviderError> {
        let response = Request::get(url)
            .timeout(self.time_left)
            .send()
            .map_err(|err| match err {
                HttpError::Denied(_) => ProviderError::InvalidRequest(format!(
                    "the image URL {url} is on a host this provider may not reach; send the image as a data: URL"
                )),
                other => ProviderError::InvalidRequest(format!("the image at {url} could not be fetched: {other}")),
            })?;
        if !response.is_success() {
            return Err(ProviderError::InvalidRequest(format!(
                "the image at {url} could not be fetched: HTTP {}",
                response.status
            )));
        }
        Ok((
            response.header("content-type").map(str::to_string),
            response.body,
        ))
    }

    fn plan(&self, request: &Value, model: &str) -> Result<request::Plan, ProviderError> {
        request::build(request, model, &self.settings, &|url| self.fetch_image(url))
    }

    fn envelope(&self, model: &str, request_id: Option<&str>) -> Envelope {
        Envelope {
            id: format!("chatcmpl-{}", request_id.unwrap_or(self.request_id)),
            model: model.to_string(),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// The client's error for a Bedrock runtime error answer (see [`errors`]). A refusal of the
/// credentials (401/403) is also logged for the operator with Bedrock's own words, which
/// name the account and role but never a credential; the client gets the sanitized text.
pub fn upstream_error(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    mode: &AuthMode,
    region: &str,
    model: &str,
) -> ProviderError {
    if status == 401 || status == 403 {
        let (name, message) = errors::parse(headers, body);
        let how = match mode {
            AuthMode::SigV4 => "a SigV4-signed",
            AuthMode::Bearer { .. } => "a bearer-token",
        };
        log::warn(&format!(
            "Bedrock refused {how} request for {model} in {region} with {status} {}: {}",
            name.as_deref().unwrap_or("(no exception name)"),
            message.chars().take(300).collect::<String>()
        ));
    }
    errors::from_response(status, headers, body, mode, region, model)
}

/// A non-streamed chat completion of `model` through Converse.
pub fn complete(call: &Call, request: &Value, model: &str) -> Result<Value, ProviderError> {
    let plan = call.plan(request, model)?;
    let upstream = (call.finish)(Request::post(call.url(model, "converse")).json(&plan.body))
        .header("accept", "application/json");
    let response = upstream.send().map_err(|err| call.transport(err))?;
    if !response.is_success() {
        return Err(upstream_error(
            response.status,
            &response.headers,
            &response.body,
            call.mode,
            call.region,
            model,
        ));
    }
    let answer: Value = response.json()?;
    let envelope = call.envelope(model, response.header("x-amzn-requestid"));
    response::completion(&answer, &envelope, plan.json_tool.as_deref())
}

/// A streamed chat completion of `model` through ConverseStream.
pub fn stream(call: &Call, request: &Value, model: &str) -> Result<ChunkStream, ProviderError> {
    let plan = call.plan(request, model)?;
    let upstream =
        (call.finish)(Request::post(call.url(model, "converse-stream")).json(&plan.body))
            .header("accept", "application/vnd.amazon.eventstream");
    let response = upstream
        .send_streaming(Framing::AwsEventStream)
        .map_err(|err| call.transport(err))?;
    if !response.is_success() {
        let (status, headers) = (response.status, response.headers.clone());
        let mut body = Vec::new();
        for frame in response.body {
            match frame {
                Ok(frame) => body.extend_from_slice(&frame.data),
                Err(_) => break,
            }
        }
        return Err(upstream_error(
            status,
            &headers,
            &body,
            call.mode,
            call.region,
            model,
        ));
    }
    let envelope = call.envelope(model, response.header("x-amzn-requestid"));
    let mut translator =
        stream::Translator::new(envelope, plan.include_usage, plan.json_tool, call.region);
    let mut frames = response.body;
    let mut pending = std::collections::VecDeque::new();
    let mut finished = false;
    Ok(ChunkStream::from_json(std::iter::from_fn(move || {
        loop {
            if let Some(chunk) = pending.pop_front() {
                return Some(Ok(chunk));
            }
            if finished {
                return None;
            }
            let outcome = match frames.next()? {
                Ok(frame) => {
                    translator.event(frame.event.as_deref().unwrap_or_default(), &frame.data)
                }
                Err(err) => Err(err.into()),
            };
            match outcome {
                Ok(chunks) => pending.extend(chunks),
                Err(err) => {
                    finished = true;
                    return Some(Err(err));
                }
            }
        }
    })))
}
