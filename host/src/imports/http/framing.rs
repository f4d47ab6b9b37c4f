//! Incremental decoders that split a streamed response body into [`Frame`]s for
//! `body-stream.next`: raw chunks, server-sent events (`sse`) and AWS event-stream messages
//! (`event_stream`). [`FrameDecoder`] picks the one the plugin's `framing` names.
//!
//! Bytes arrive from the network in arbitrary pieces, so every decoder keeps the unfinished
//! part of a frame between calls to `FrameDecoder::feed` and never assumes that a chunk
//! starts or ends on a frame boundary. Each buffered frame is bounded by `max_frame_bytes`:
//! a frame (or an SSE line) that grows past it fails with [`HttpError::TooLarge`] instead of
//! buffering without end.
//!
//! - **Raw**: chunks as they arrive; a chunk larger than `max_frame_bytes` is split.
//! - **SSE** and **AWS event stream**: see their modules for the rules each follows and the
//!   faults each refuses.

mod event_stream;
mod sse;

use super::{Frame, Framing, HttpError};
use event_stream::EventStreamDecoder;
use sse::SseDecoder;
use std::collections::VecDeque;

/// Splits a body into frames according to the `framing` the plugin asked for.
#[derive(Debug)]
pub(crate) enum FrameDecoder {
    Raw { max_frame_bytes: usize },
    Sse(SseDecoder),
    AwsEventStream(EventStreamDecoder),
}

impl FrameDecoder {
    pub(crate) fn new(framing: Framing, max_frame_bytes: usize) -> Self {
        match framing {
            Framing::Raw => FrameDecoder::Raw { max_frame_bytes },
            Framing::Sse => FrameDecoder::Sse(SseDecoder::new(max_frame_bytes)),
            Framing::AwsEventStream => {
                FrameDecoder::AwsEventStream(EventStreamDecoder::new(max_frame_bytes))
            }
        }
    }

    /// Decodes `chunk`, appending every frame it completes to `out`.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut VecDeque<Frame>,
    ) -> Result<(), HttpError> {
        match self {
            FrameDecoder::Raw { max_frame_bytes } => {
                for piece in chunk.chunks((*max_frame_bytes).max(1)) {
                    out.push_back(Frame {
                        event: None,
                        data: piece.to_vec(),
                    });
                }
                Ok(())
            }
            FrameDecoder::Sse(decoder) => decoder.feed(chunk, out),
            FrameDecoder::AwsEventStream(decoder) => decoder.feed(chunk, out),
        }
    }

    /// Called once the body has ended: fails if the framing requires more bytes.
    pub(crate) fn finish(&mut self) -> Result<(), HttpError> {
        match self {
            FrameDecoder::Raw { .. } | FrameDecoder::Sse(_) => Ok(()),
            FrameDecoder::AwsEventStream(decoder) => decoder.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! What every decoder's tests share (feeding a body in pieces), and the raw framing's tests.

    use super::*;

    pub(super) const MAX: usize = 1 << 20;

    pub(super) fn frame(event: Option<&str>, data: &[u8]) -> Frame {
        Frame {
            event: event.map(str::to_owned),
            data: data.to_vec(),
        }
    }

    /// Decodes `input` fed in the given pieces, then ends the body.
    pub(super) fn decode_pieces(
        framing: Framing,
        max: usize,
        pieces: &[&[u8]],
    ) -> Result<Vec<Frame>, HttpError> {
        let mut decoder = FrameDecoder::new(framing, max);
        let mut out = VecDeque::new();
        for piece in pieces {
            decoder.feed(piece, &mut out)?;
        }
        decoder.finish()?;
        Ok(out.into())
    }

    /// Asserts that `input` decodes to `expected` whole, split at every byte boundary, and
    /// one byte at a time.
    pub(super) fn assert_every_split(
        framing: Framing,
        max: usize,
        input: &[u8],
        expected: &Result<Vec<Frame>, HttpError>,
    ) {
        assert_eq!(
            &decode_pieces(framing, max, &[input]),
            expected,
            "whole input"
        );
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(
                &decode_pieces(framing, max, &[a, b]),
                expected,
                "split at byte {split}"
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            &decode_pieces(framing, max, &bytes),
            expected,
            "one byte at a time"
        );
    }

    #[test]
    fn raw_chunks_pass_through_and_large_ones_are_split() {
        assert_eq!(
            decode_pieces(Framing::Raw, 4, &[b"abc", b"defghij"]),
            Ok(vec![
                frame(None, b"abc"),
                frame(None, b"defg"),
                frame(None, b"hij")
            ])
        );
        assert_eq!(decode_pieces(Framing::Raw, 4, &[b""]), Ok(vec![]));
    }
}
