//! Server-sent events (`Framing::Sse`), following the HTML "event stream" parsing rules:
//! `\r\n`, `\r` and `\n` all end a line; a leading byte-order mark is dropped; `:` lines are
//! comments; `event:` sets the event name and `data:` lines are joined with `\n`; one space
//! after the colon is dropped; `id:`, `retry:` and unknown fields are ignored; a blank line
//! dispatches the event unless it has no data. As the specification says, an event still open
//! when the body ends is discarded. Data stays bytes (the host does not re-encode it).
//!
//! The only failure is [`HttpError::TooLarge`]: an open event (its data plus the line being
//! read) that grows past `max_frame_bytes`.

use super::{Frame, HttpError};
use std::collections::VecDeque;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Server-sent events decoder (see the module documentation for the rules it follows).
#[derive(Debug)]
pub(crate) struct SseDecoder {
    max_frame_bytes: usize,
    /// The line being read, without its terminator.
    line: Vec<u8>,
    /// `data:` values of the open event, joined with `\n`.
    data: Vec<u8>,
    has_data: bool,
    event: Vec<u8>,
    /// The previous byte was `\r`, so a following `\n` belongs to the same line break.
    after_cr: bool,
    /// How many bytes of a leading byte-order mark have been seen; `None` once decided.
    bom_seen: Option<usize>,
}

impl SseDecoder {
    pub(crate) fn new(max_frame_bytes: usize) -> Self {
        SseDecoder {
            max_frame_bytes,
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            event: Vec::new(),
            after_cr: false,
            bom_seen: Some(0),
        }
    }

    pub(crate) fn feed(
        &mut self,
        mut chunk: &[u8],
        out: &mut VecDeque<Frame>,
    ) -> Result<(), HttpError> {
        while let (Some(seen), Some(&byte)) = (self.bom_seen, chunk.first()) {
            if byte == BOM[seen] {
                chunk = &chunk[1..];
                self.bom_seen = if seen + 1 == BOM.len() {
                    None
                } else {
                    Some(seen + 1)
                };
            } else {
                // Not a byte-order mark after all: what looked like one is text.
                self.line.extend_from_slice(&BOM[..seen]);
                self.bom_seen = None;
            }
        }
        while !chunk.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if chunk[0] == b'\n' {
                    chunk = &chunk[1..];
                    continue;
                }
            }
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.line.extend_from_slice(&chunk[..end]);
                    self.check_size()?;
                    self.after_cr = chunk[end] == b'\r';
                    chunk = &chunk[end + 1..];
                    self.end_line(out)?;
                }
                None => {
                    self.line.extend_from_slice(chunk);
                    self.check_size()?;
                    chunk = &[];
                }
            }
        }
        Ok(())
    }

    fn check_size(&self) -> Result<(), HttpError> {
        if self.line.len() + self.data.len() > self.max_frame_bytes {
            return Err(HttpError::TooLarge(format!(
                "a server-sent event exceeded the host's frame limit of {} bytes",
                self.max_frame_bytes
            )));
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut VecDeque<Frame>) -> Result<(), HttpError> {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
        } else if line[0] != b':' {
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (&line[..], &[][..]),
            };
            match field {
                b"event" => self.event = value.to_vec(),
                b"data" => {
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        // Keep the line's allocation for the next one.
        self.line = line;
        self.line.clear();
        self.check_size()
    }

    fn dispatch(&mut self, out: &mut VecDeque<Frame>) {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return;
        }
        out.push_back(Frame {
            event: (!event.is_empty()).then(|| String::from_utf8_lossy(&event).into_owned()),
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::Framing;
    use super::super::tests::{MAX, assert_every_split, decode_pieces, frame};
    use super::*;

    #[test]
    fn sse_cases_at_every_split() {
        type Case<'a> = (&'a str, &'a [u8], &'a [(Option<&'a str>, &'a str)]);
        let cases: &[Case] = &[
            ("single event", b"data: hello\n\n", &[(None, "hello")]),
            (
                "named event",
                b"event: delta\ndata: {}\n\n",
                &[(Some("delta"), "{}")],
            ),
            (
                "multi-line data",
                b"data: a\ndata: b\ndata:c\n\n",
                &[(None, "a\nb\nc")],
            ),
            (
                "crlf endings",
                b"event: e\r\ndata: x\r\n\r\ndata: y\r\n\r\n",
                &[(Some("e"), "x"), (None, "y")],
            ),
            (
                "cr endings",
                b"data: x\r\rdata: y\r\r",
                &[(None, "x"), (None, "y")],
            ),
            (
                "mixed endings",
                b"data: a\r\ndata: b\rdata: c\n\r\n",
                &[(None, "a\nb\nc")],
            ),
            (
                "comments skipped",
                b": keep-alive\n\n:another\ndata: x\n\n",
                &[(None, "x")],
            ),
            (
                "event without data skipped",
                b"event: ping\n\ndata: x\n\n",
                &[(None, "x")],
            ),
            ("empty data line", b"data:\n\n", &[(None, "")]),
            ("field without colon", b"data\n\n", &[(None, "")]),
            (
                "only one space dropped",
                b"data:  two\ndata:none\n\n",
                &[(None, " two\nnone")],
            ),
            (
                "id retry and unknown ignored",
                b"id: 7\nretry: 10\nfoo: bar\ndata: x\n\n",
                &[(None, "x")],
            ),
            (
                "leading bom dropped",
                b"\xEF\xBB\xBFdata: x\n\n",
                &[(None, "x")],
            ),
            (
                "unfinished event discarded",
                b"data: x\n\ndata: half",
                &[(None, "x")],
            ),
            (
                "colon in value kept",
                b"data: {\"a\":1}\n\n",
                &[(None, "{\"a\":1}")],
            ),
            (
                "openai stream",
                b"data: {\"id\":1}\n\ndata: {\"id\":2}\n\ndata: [DONE]\n\n",
                &[(None, "{\"id\":1}"), (None, "{\"id\":2}"), (None, "[DONE]")],
            ),
            ("empty body", b"", &[]),
        ];
        for (name, input, expected) in cases {
            let expected = Ok(expected
                .iter()
                .map(|(e, d)| frame(*e, d.as_bytes()))
                .collect());
            println!("case: {name}");
            assert_every_split(Framing::Sse, MAX, input, &expected);
        }
    }

    #[test]
    fn sse_bom_lookalike_is_text() {
        // EF BB without BF is not a byte-order mark: it stays part of the first field name,
        // which is then unknown and ignored.
        let input = b"\xEF\xBBdata: x\n\ndata: y\n\n";
        assert_every_split(Framing::Sse, MAX, input, &Ok(vec![frame(None, b"y")]));
    }

    #[test]
    fn sse_event_larger_than_the_limit_is_refused() {
        let too_large = |input: &[u8]| {
            let result = decode_pieces(Framing::Sse, 16, &[input]);
            assert!(matches!(result, Err(HttpError::TooLarge(_))), "{result:?}");
        };
        too_large(b"data: 0123456789\ndata: 0123456789\n\n");
        // A line that never ends must not grow without bound either.
        too_large(&[b'x'; 64]);
        too_large(&[b':'; 64]);
        // At the limit is fine.
        assert_eq!(
            decode_pieces(Framing::Sse, 16, &[b"data: 0123456789\n\n"]),
            Ok(vec![frame(None, b"0123456789")])
        );
    }
}
