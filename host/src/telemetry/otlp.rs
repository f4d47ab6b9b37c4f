//! The OTLP/HTTP protobuf body of a trace export: an `ExportTraceServiceRequest`
//! (opentelemetry-proto's `collector/trace/v1/trace_service.proto` and `trace/v1/trace.proto`)
//! written by hand, so that ogx needs no protobuf or OpenTelemetry crate for the few messages
//! it sends. Only the fields ogx fills are written; encoding cannot fail.
//!
//! Field numbers, from the `.proto` files:
//! `ExportTraceServiceRequest{resource_spans=1}`, `ResourceSpans{resource=1, scope_spans=2}`,
//! `Resource{attributes=1}`, `ScopeSpans{scope=1, spans=2}`, `InstrumentationScope{name=1,
//! version=2}`, `Span{trace_id=1, span_id=2, parent_span_id=4, name=5, kind=6,
//! start_time_unix_nano=7 (fixed64), end_time_unix_nano=8 (fixed64), attributes=9, status=15,
//! flags=16 (fixed32)}`, `Status{message=2, code=3}`, `KeyValue{key=1, value=2}`,
//! `AnyValue{string_value=1, bool_value=2, int_value=3, double_value=4}`.

use super::trace::{SpanData, Value};

/// The instrumentation scope ogx's spans are reported under.
pub const SCOPE_NAME: &str = "ogx";

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` (0x100); with 0x200 set, the parent is remote.
const FLAGS_HAS_IS_REMOTE: u32 = 0x100;
/// OTLP's `STATUS_CODE_ERROR`.
const STATUS_ERROR: u64 = 2;

/// The body of one export: `spans` under one resource (`resource` attributes) and one scope.
pub fn encode_export(resource: &[(String, String)], spans: &[SpanData]) -> Vec<u8> {
    let mut resource_message = Vec::new();
    for (key, value) in resource {
        message(&mut resource_message, 1, |b| {
            key_value(b, key, &Value::Str(value.clone()))
        });
    }
    let mut resource_spans = Vec::new();
    bytes_field(&mut resource_spans, 1, &resource_message);
    message(&mut resource_spans, 2, |scope_spans| {
        message(scope_spans, 1, |scope| {
            bytes_field(scope, 1, SCOPE_NAME.as_bytes());
            bytes_field(scope, 2, env!("CARGO_PKG_VERSION").as_bytes());
        });
        for span in spans {
            message(scope_spans, 2, |b| encode_span(b, span));
        }
    });
    let mut out = Vec::with_capacity(resource_spans.len() + 8);
    bytes_field(&mut out, 1, &resource_spans);
    out
}

fn encode_span(b: &mut Vec<u8>, span: &SpanData) {
    bytes_field(b, 1, &span.trace_id.to_be_bytes());
    bytes_field(b, 2, &span.span_id.to_be_bytes());
    if let Some(parent) = span.parent_span_id {
        bytes_field(b, 4, &parent.to_be_bytes());
    }
    bytes_field(b, 5, span.name.as_bytes());
    tag(b, 6, VARINT);
    varint(b, span.kind as u64);
    tag(b, 7, FIXED64);
    b.extend_from_slice(&span.start_unix_nanos.to_le_bytes());
    tag(b, 8, FIXED64);
    b.extend_from_slice(&span.end_unix_nanos.max(span.start_unix_nanos).to_le_bytes());
    for (key, value) in &span.attributes {
        message(b, 9, |kv| key_value(kv, key, value));
    }
    if let Some(error) = &span.error {
        message(b, 15, |status| {
            bytes_field(status, 2, error.as_bytes());
            tag(status, 3, VARINT);
            varint(status, STATUS_ERROR);
        });
    }
    // The server span's parent, when it has one, is the client's (remote); other parents
    // are ogx's own.
    let remote = span.kind == super::trace::Kind::Server && span.parent_span_id.is_some();
    tag(b, 16, FIXED32);
    let flags = 1 | FLAGS_HAS_IS_REMOTE | if remote { 0x200 } else { 0 };
    b.extend_from_slice(&flags.to_le_bytes());
}

fn key_value(b: &mut Vec<u8>, key: &str, value: &Value) {
    bytes_field(b, 1, key.as_bytes());
    message(b, 2, |any| match value {
        Value::Str(s) => bytes_field(any, 1, s.as_bytes()),
        Value::Bool(v) => {
            tag(any, 2, VARINT);
            varint(any, u64::from(*v));
        }
        Value::Int(v) => {
            tag(any, 3, VARINT);
            // int64 is written as its two's-complement 64 bits.
            varint(any, *v as u64);
        }
        Value::Double(v) => {
            tag(any, 4, FIXED64);
            any.extend_from_slice(&v.to_le_bytes());
        }
    });
}

/// A length-delimited field holding the message `write` produces.
fn message(b: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    bytes_field(b, field, &inner);
}

fn bytes_field(b: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(b, field, LEN);
    varint(b, bytes.len() as u64);
    b.extend_from_slice(bytes);
}

fn tag(b: &mut Vec<u8>, field: u32, wire: u8) {
    varint(b, (u64::from(field) << 3) | u64::from(wire));
}

fn varint(b: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        b.push((value as u8) | 0x80);
        value >>= 7;
    }
    b.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::super::trace::Kind;
    use super::*;

    #[test]
    fn varints_and_tags_follow_the_wire_format() {
        let mut b = Vec::new();
        varint(&mut b, 300);
        assert_eq!(b, [0xac, 0x02]);
        b.clear();
        varint(&mut b, (-1i64) as u64);
        assert_eq!(b.len(), 10);
        b.clear();
        tag(&mut b, 16, FIXED32);
        assert_eq!(b, [0x85, 0x01]);
    }

    #[test]
    fn a_span_encodes_its_ids_name_times_attributes_and_status() {
        let span = SpanData {
            trace_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
            span_id: 0x1112_1314_1516_1718,
            parent_span_id: None,
            name: "POST".into(),
            kind: Kind::Client,
            start_unix_nanos: 5,
            end_unix_nanos: 7,
            attributes: vec![("n", Value::Int(3))],
            error: Some("500".into()),
        };
        let mut b = Vec::new();
        encode_span(&mut b, &span);
        let mut expected = vec![0x0a, 16];
        expected.extend(1..=16u8);
        expected.extend([0x12, 8]);
        expected.extend(0x11..=0x18u8);
        expected.extend([0x2a, 4, b'P', b'O', b'S', b'T', 0x30, 3, 0x39]);
        expected.extend(5u64.to_le_bytes());
        expected.push(0x41);
        expected.extend(7u64.to_le_bytes());
        // attributes: KeyValue{key "n", value AnyValue{int_value 3}}
        expected.extend([0x4a, 7, 0x0a, 1, b'n', 0x12, 2, 0x18, 3]);
        // status: {message "500", code 2}
        expected.extend([0x7a, 7, 0x12, 3, b'5', b'0', b'0', 0x18, 2]);
        expected.extend([0x85, 0x01]);
        expected.extend(0x101u32.to_le_bytes());
        assert_eq!(b, expected);
        let body = encode_export(&[("service.name".into(), "ogx".into())], &[span]);
        assert_eq!(body[0], 0x0a);
    }
}
