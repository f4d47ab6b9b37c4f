//! [`BodyStream`]: a streamed response body read frame by frame, under the idle and total
//! timeouts.

use super::client::{map_reqwest_error, seconds, timed_out};
use super::framing::FrameDecoder;
use super::{Frame, HttpError, UpstreamClock};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

pub(super) type ChunkStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

#[derive(Debug, Clone)]
enum StreamState {
    Open,
    Ended,
    Failed(HttpError),
}

/// A response body being received. Dropping it closes the upstream connection.
pub struct BodyStream {
    chunks: ChunkStream,
    decoder: FrameDecoder,
    ready: VecDeque<Frame>,
    host: String,
    deadline: Instant,
    total: Duration,
    idle_timeout: Duration,
    state: StreamState,
    /// Adds each wait for a chunk to the API request's upstream time.
    clock: Option<Arc<UpstreamClock>>,
    /// The exchange's span, ended with the body.
    span: Option<crate::telemetry::trace::Span>,
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream")
            .field("host", &self.host)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl BodyStream {
    pub(super) fn new(
        chunks: ChunkStream,
        decoder: FrameDecoder,
        host: String,
        deadline: Instant,
        total: Duration,
        idle_timeout: Duration,
    ) -> Self {
        BodyStream {
            chunks,
            decoder,
            ready: VecDeque::new(),
            host,
            deadline,
            total,
            idle_timeout,
            state: StreamState::Open,
            clock: None,
            span: None,
        }
    }

    /// The same stream, ending the exchange's `span` when the body ends, fails or is dropped.
    pub(super) fn spanned(mut self, span: Option<crate::telemetry::trace::Span>) -> Self {
        self.span = span;
        self
    }

    /// The same stream, adding its waits for chunks to `clock`.
    pub(super) fn timed_by(mut self, clock: Option<Arc<UpstreamClock>>) -> Self {
        self.clock = clock;
        self
    }

    /// The next frame; `Ok(None)` once the body has ended normally. After an error every
    /// later call returns the same error.
    pub async fn next(&mut self) -> Result<Option<Frame>, HttpError> {
        loop {
            if let Some(frame) = self.ready.pop_front() {
                return Ok(Some(frame));
            }
            match &self.state {
                StreamState::Open => {}
                StreamState::Ended => return Ok(None),
                StreamState::Failed(error) => return Err(error.clone()),
            }
            if let Err(error) = self.read_chunk().await {
                super::exchange_span::failed(&mut self.span, &error);
                self.span = None;
                self.state = StreamState::Failed(error);
            }
        }
    }

    /// Reads one network chunk into the decoder, or ends the stream.
    async fn read_chunk(&mut self) -> Result<(), HttpError> {
        let idle_deadline = Instant::now() + self.idle_timeout;
        let wait_until = idle_deadline.min(self.deadline);
        let started = Instant::now();
        let chunk = tokio::time::timeout_at(wait_until, self.chunks.next()).await;
        if let Some(clock) = &self.clock {
            clock.add(started.elapsed());
        }
        match chunk {
            Err(_) if wait_until == self.deadline => Err(timed_out(&self.host, self.total)),
            Err(_) => Err(HttpError::Timeout(format!(
                "{} sent nothing for {}",
                self.host,
                seconds(self.idle_timeout)
            ))),
            Ok(Some(Ok(chunk))) => self.decoder.feed(&chunk, &mut self.ready),
            Ok(Some(Err(error))) => Err(map_reqwest_error(&error, &self.host)),
            Ok(None) => {
                self.decoder.finish()?;
                self.state = StreamState::Ended;
                self.span = None;
                Ok(())
            }
        }
    }
}
