//! AWS event stream (`Framing::AwsEventStream`, `application/vnd.amazon.eventstream`): each
//! message is a 12-byte prelude (total length, headers length, CRC-32 of the first 8 bytes),
//! the headers, the payload and a CRC-32 of everything before it. The prelude CRC is checked
//! before its lengths are trusted, then the message CRC. Headers of every type are parsed (so
//! malformed ones are refused); the frame's event is the `:event-type` string header, or
//! `:exception-type` for exceptions, and its data is the payload.
//!
//! Any framing fault is a [`HttpError::Protocol`]; a body that ends inside a message is one
//! too. A message whose prelude declares more than `max_frame_bytes` is
//! [`HttpError::TooLarge`], refused before the rest of it is buffered.

use super::{Frame, HttpError};
use bytes::{Buf, BytesMut};
use std::collections::VecDeque;

/// Length of the event-stream prelude: total length, headers length, prelude CRC.
const PRELUDE_BYTES: usize = 12;
/// Prelude plus the trailing message CRC.
const MESSAGE_OVERHEAD_BYTES: usize = PRELUDE_BYTES + 4;

/// AWS event-stream decoder (see the module documentation).
#[derive(Debug)]
pub(crate) struct EventStreamDecoder {
    max_frame_bytes: usize,
    buffer: BytesMut,
}

impl EventStreamDecoder {
    pub(crate) fn new(max_frame_bytes: usize) -> Self {
        EventStreamDecoder {
            max_frame_bytes,
            buffer: BytesMut::new(),
        }
    }

    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut VecDeque<Frame>,
    ) -> Result<(), HttpError> {
        self.buffer.extend_from_slice(chunk);
        while let Some(total) = self.complete_message_len()? {
            let message = self.buffer.split_to(total).freeze();
            out.push_back(decode_message(&message)?);
        }
        Ok(())
    }

    /// The length of the message at the front of the buffer once all of it has arrived.
    /// Checks the prelude as soon as its 12 bytes are there.
    fn complete_message_len(&self) -> Result<Option<usize>, HttpError> {
        if self.buffer.len() < PRELUDE_BYTES {
            return Ok(None);
        }
        let mut prelude = &self.buffer[..PRELUDE_BYTES];
        let total = prelude.get_u32() as usize;
        let headers = prelude.get_u32() as usize;
        let stored_crc = prelude.get_u32();
        let computed_crc = crc32fast::hash(&self.buffer[..8]);
        if stored_crc != computed_crc {
            return Err(HttpError::Protocol(format!(
                "event-stream prelude checksum mismatch: computed {computed_crc:#010x}, message says {stored_crc:#010x}"
            )));
        }
        if total < MESSAGE_OVERHEAD_BYTES {
            return Err(HttpError::Protocol(format!(
                "event-stream message length {total} is shorter than its {MESSAGE_OVERHEAD_BYTES}-byte framing"
            )));
        }
        if total > self.max_frame_bytes {
            return Err(HttpError::TooLarge(format!(
                "an event-stream message of {total} bytes exceeds the host's frame limit of {} bytes",
                self.max_frame_bytes
            )));
        }
        if headers > total - MESSAGE_OVERHEAD_BYTES {
            return Err(HttpError::Protocol(format!(
                "event-stream headers length {headers} does not fit in a message of {total} bytes"
            )));
        }
        Ok((self.buffer.len() >= total).then_some(total))
    }

    pub(crate) fn finish(&mut self) -> Result<(), HttpError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        Err(HttpError::Protocol(format!(
            "the event stream ended inside a message ({} bytes of it received)",
            self.buffer.len()
        )))
    }
}

/// Decodes one whole message whose prelude has been checked.
fn decode_message(message: &[u8]) -> Result<Frame, HttpError> {
    let total = message.len();
    let (body, mut crc) = message.split_at(total - 4);
    let stored_crc = crc.get_u32();
    let computed_crc = crc32fast::hash(body);
    if stored_crc != computed_crc {
        return Err(HttpError::Protocol(format!(
            "event-stream message checksum mismatch: computed {computed_crc:#010x}, message says {stored_crc:#010x}"
        )));
    }
    let headers_len = u32::from_be_bytes([message[4], message[5], message[6], message[7]]) as usize;
    let headers = &body[PRELUDE_BYTES..PRELUDE_BYTES + headers_len];
    let payload = &body[PRELUDE_BYTES + headers_len..];
    let event = event_name(headers)?;
    Ok(Frame {
        event,
        data: payload.to_vec(),
    })
}

/// Parses every header and returns the `:event-type` (or `:exception-type`) string.
fn event_name(mut headers: &[u8]) -> Result<Option<String>, HttpError> {
    fn malformed(what: &str) -> HttpError {
        HttpError::Protocol(format!("malformed event-stream header: {what}"))
    }
    fn take<'a>(input: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], HttpError> {
        if input.len() < n {
            return Err(malformed(what));
        }
        let (head, rest) = input.split_at(n);
        *input = rest;
        Ok(head)
    }

    let mut event_type = None;
    let mut exception_type = None;
    while !headers.is_empty() {
        let name_len = take(&mut headers, 1, "truncated name length")?[0] as usize;
        if name_len == 0 {
            return Err(malformed("empty name"));
        }
        let name = take(&mut headers, name_len, "name longer than the headers")?;
        let name = std::str::from_utf8(name).map_err(|_| malformed("name is not UTF-8"))?;
        let value_type = take(&mut headers, 1, "truncated value type")?[0];
        let value_len = match value_type {
            0 | 1 => 0, // bool true, bool false
            2 => 1,     // byte
            3 => 2,     // int16
            4 => 4,     // int32
            5 | 8 => 8, // int64, timestamp
            9 => 16,    // uuid
            6 | 7 => {
                // byte array, string: u16 length then the bytes
                let len = take(&mut headers, 2, "truncated value length")?;
                u16::from_be_bytes([len[0], len[1]]) as usize
            }
            other => return Err(malformed(&format!("unknown value type {other} for {name}"))),
        };
        let value = take(&mut headers, value_len, "value longer than the headers")?;
        if value_type == 7 && (name == ":event-type" || name == ":exception-type") {
            let value = std::str::from_utf8(value)
                .map_err(|_| malformed(&format!("{name} is not UTF-8")))?
                .to_owned();
            if name == ":event-type" {
                event_type = Some(value);
            } else {
                exception_type = Some(value);
            }
        }
    }
    Ok(event_type.or(exception_type))
}

#[cfg(test)]
mod tests {
    use super::super::Framing;
    use super::super::tests::{MAX, assert_every_split, decode_pieces, frame};
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        hex::decode(digits).unwrap()
    }

    /// Vectors of converse.md section 7, with the frames each must decode to.
    fn event_stream_vectors() -> Vec<(&'static str, Vec<u8>, Frame)> {
        vec![
            (
                "crt vector, no headers",
                hex("0000001d 00000000 fd528c5a 7b27666f6f273a27626172277d c3653936"),
                frame(None, b"{'foo':'bar'}"),
            ),
            (
                "crt vector, content-type header",
                hex(
                    "0000003d 00000020 07fd8396 0c 636f6e74656e742d74797065 07 0010 6170706c69636174696f6e2f6a736f6e 7b27666f6f273a27626172277d 8d9c08b1",
                ),
                frame(None, b"{'foo':'bar'}"),
            ),
            (
                "bedrock contentBlockDelta",
                hex(
                    "0000009700000057f30be03e0b3a6576656e742d74797065070011636f6e74656e74426c6f636b44656c74610d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d747970650700056576656e747b22636f6e74656e74426c6f636b496e646578223a302c2264656c7461223a7b2274657874223a2248656c6c6f227d7d67623831",
                ),
                frame(
                    Some("contentBlockDelta"),
                    br#"{"contentBlockIndex":0,"delta":{"text":"Hello"}}"#,
                ),
            ),
            (
                "bedrock throttlingException",
                hex(
                    "000000b2000000613590d5d30f3a657863657074696f6e2d747970650700137468726f74746c696e67457863657074696f6e0d3a636f6e74656e742d747970650700106170706c69636174696f6e2f6a736f6e0d3a6d6573736167652d74797065070009657863657074696f6e7b226d657373616765223a22546f6f206d616e792072657175657374732c20706c656173652077616974206265666f726520747279696e6720616761696e2e227de8ffb26a",
                ),
                frame(
                    Some("throttlingException"),
                    br#"{"message":"Too many requests, please wait before trying again."}"#,
                ),
            ),
        ]
    }

    /// Encodes a message; `headers` are (name, type, encoded value) triples.
    fn encode(headers: &[(&str, u8, &[u8])], payload: &[u8]) -> Vec<u8> {
        let mut encoded_headers = Vec::new();
        for (name, value_type, value) in headers {
            encoded_headers.push(name.len() as u8);
            encoded_headers.extend_from_slice(name.as_bytes());
            encoded_headers.push(*value_type);
            encoded_headers.extend_from_slice(value);
        }
        let total = (MESSAGE_OVERHEAD_BYTES + encoded_headers.len() + payload.len()) as u32;
        let mut message = Vec::new();
        message.extend_from_slice(&total.to_be_bytes());
        message.extend_from_slice(&(encoded_headers.len() as u32).to_be_bytes());
        message.extend_from_slice(&crc32fast::hash(&message).to_be_bytes());
        message.extend_from_slice(&encoded_headers);
        message.extend_from_slice(payload);
        message.extend_from_slice(&crc32fast::hash(&message).to_be_bytes());
        message
    }

    fn string_value(text: &str) -> Vec<u8> {
        let mut value = (text.len() as u16).to_be_bytes().to_vec();
        value.extend_from_slice(text.as_bytes());
        value
    }

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn event_stream_vectors_decode() {
        for (name, input, expected) in event_stream_vectors() {
            println!("vector: {name}");
            assert_every_split(Framing::AwsEventStream, MAX, &input, &Ok(vec![expected]));
        }
    }

    #[test]
    fn event_stream_vector_three_checksums() {
        // converse.md vector 3: no headers, payload {"foo": "bar"}.
        let message = encode(&[], br#"{"foo": "bar"}"#);
        assert_eq!(message.len(), 30);
        assert_eq!(&message[8..12], &0xBAF2_F68A_u32.to_be_bytes());
        assert_eq!(&message[26..], &0xAE72_58E4_u32.to_be_bytes());
        assert_eq!(
            decode_pieces(Framing::AwsEventStream, MAX, &[&message]),
            Ok(vec![frame(None, br#"{"foo": "bar"}"#)])
        );
    }

    #[test]
    fn event_stream_concatenated_messages_at_every_split() {
        let vectors = event_stream_vectors();
        let input: Vec<u8> = vectors
            .iter()
            .flat_map(|(_, bytes, _)| bytes.clone())
            .collect();
        let expected = Ok(vectors.into_iter().map(|(_, _, frame)| frame).collect());
        assert_every_split(Framing::AwsEventStream, MAX, &input, &expected);
        for size in 1..=11 {
            let pieces: Vec<&[u8]> = input.chunks(size).collect();
            assert_eq!(
                decode_pieces(Framing::AwsEventStream, MAX, &pieces),
                expected,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn event_stream_skips_every_header_type() {
        let uuid = [0xb7_u8; 16];
        let headers: Vec<(&str, u8, Vec<u8>)> = vec![
            ("true", 0, vec![]),
            ("false", 1, vec![]),
            ("byte", 2, vec![50]),
            ("short", 3, 20000_i16.to_be_bytes().to_vec()),
            ("int", 4, 500000_i32.to_be_bytes().to_vec()),
            ("long", 5, 50000000000_i64.to_be_bytes().to_vec()),
            ("bytes", 6, string_value("some bytes")),
            ("str", 7, string_value("some str")),
            ("time", 8, 5000000_i64.to_be_bytes().to_vec()),
            ("uuid", 9, uuid.to_vec()),
            (":message-type", 7, string_value("event")),
            (":event-type", 7, string_value("messageStop")),
        ];
        let borrowed: Vec<(&str, u8, &[u8])> = headers
            .iter()
            .map(|(n, t, v)| (*n, *t, v.as_slice()))
            .collect();
        let message = encode(&borrowed, b"some payload");
        assert_every_split(
            Framing::AwsEventStream,
            MAX,
            &message,
            &Ok(vec![frame(Some("messageStop"), b"some payload")]),
        );
        let empty = encode(&[], b"");
        assert_eq!(
            decode_pieces(Framing::AwsEventStream, MAX, &[&empty]),
            Ok(vec![frame(None, b"")])
        );
    }

    #[test]
    fn event_stream_faults_are_refused() {
        let good = event_stream_vectors().remove(2).1;
        let with = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut bytes = good.clone();
            edit(&mut bytes);
            bytes
        };
        let protocol = |input: &[u8], needle: &str| {
            let result = decode_pieces(Framing::AwsEventStream, MAX, &[input]);
            match result {
                Err(HttpError::Protocol(text)) => {
                    assert!(text.contains(needle), "{text:?} lacks {needle:?}")
                }
                other => panic!("expected a protocol error containing {needle:?}, got {other:?}"),
            }
        };
        protocol(
            &with(&|b| b[8..12].copy_from_slice(&0xDEAD_BEEF_u32.to_be_bytes())),
            "prelude checksum",
        );
        protocol(&with(&|b| *b.last_mut().unwrap() ^= 1), "message checksum");
        protocol(&with(&|b| b[40] ^= 1), "message checksum");
        protocol(&good[..good.len() - 1], "ended inside a message");
        protocol(&good[..5], "ended inside a message");

        // Lengths that lie, with valid checksums.
        let reframe = |total: u32, headers: u32, rest: &[u8]| {
            let mut bytes = total.to_be_bytes().to_vec();
            bytes.extend_from_slice(&headers.to_be_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&bytes).to_be_bytes());
            bytes.extend_from_slice(rest);
            bytes
        };
        protocol(&reframe(8, 0, &[]), "shorter than");
        protocol(&reframe(20, 5, &[0; 8]), "headers length");

        let bad_header = |headers: &[u8]| {
            let mut bytes = reframe((16 + headers.len()) as u32, headers.len() as u32, headers);
            let crc = crc32fast::hash(&bytes);
            bytes.extend_from_slice(&crc.to_be_bytes());
            bytes
        };
        protocol(&bad_header(&[0, 7, 0, 0]), "empty name");
        protocol(&bad_header(&[5, b'a', b'b']), "name longer");
        protocol(&bad_header(&[1, b'a', 0x60]), "unknown value type");
        protocol(&bad_header(&[1, b'a', 7, 0, 9, b'x']), "value longer");
        protocol(&bad_header(&[1, b'a', 7, 0]), "truncated value length");
        protocol(&bad_header(&[1, b'a']), "truncated value type");
    }

    #[test]
    fn event_stream_message_over_the_limit_is_refused_from_its_prelude() {
        let good = event_stream_vectors().remove(2).1;
        // Only the prelude is needed to refuse it: nothing more is buffered.
        let result = decode_pieces(Framing::AwsEventStream, 100, &[&good[..PRELUDE_BYTES]]);
        assert!(matches!(result, Err(HttpError::TooLarge(_))), "{result:?}");
    }
}
