//! `server.tracing`: where ogx exports OpenTelemetry traces (OTLP/HTTP protobuf) and which
//! share of them. The standard `OTEL_*` variables override it (`telemetry::export`).
//!
//! ```yaml
//! server:
//!   tracing:
//!     endpoint: http://collector:4318/v1/traces   # the full URL; none = no traces
//!     headers: {x-api-key: "${env.COLLECTOR_KEY}"}  # sent with every export
//!     sample_ratio: 0.1                            # share of new traces recorded, default 1
//!     capture_content: false                       # prompt/completion text: not supported
//! ```
//!
//! Fails on a value of the wrong type, a ratio outside 0–1, or `capture_content: true` (ogx
//! never puts prompt or completion text in spans), naming the key.

use super::fields::{Invalid, Section};
use super::schema::TracingConfig;
use serde_json::Value;

const TRACING_KEYS: &[&str] = &["endpoint", "headers", "sample_ratio", "capture_content"];

/// Reads `server.tracing`; absent is no config (the `OTEL_*` variables may still ask).
pub fn parse_tracing(
    value: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<TracingConfig, Invalid> {
    let Some(t) = Section::of(value, "server.tracing")? else {
        return Ok(TracingConfig::default());
    };
    t.warn_unknown(TRACING_KEYS, warnings);
    if t.bool("capture_content")?.unwrap_or(false) {
        return Err(Invalid::new(
            t.key("capture_content"),
            "capturing prompt and completion text in spans is not implemented",
            "Remove `capture_content` or set it to false: spans carry no message text.",
        ));
    }
    let headers = match t.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, value)| match value {
                Value::String(s) => Ok((name.clone(), s.clone())),
                Value::Number(n) => Ok((name.clone(), n.to_string())),
                _ => Err(Invalid::new(
                    format!("{}.{name}", t.key("headers")),
                    "expected a string",
                    "Write each header as `name: value`.",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Invalid::new(
                t.key("headers"),
                "expected a mapping of header names to values",
                "Write e.g. `headers: {x-api-key: \"${env.COLLECTOR_KEY}\"}`.",
            ));
        }
    };
    let sample_ratio = match t.get("sample_ratio") {
        None | Some(Value::Null) => 1.0,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)) => {
            n.as_f64().unwrap_or(1.0)
        }
        Some(other) => {
            return Err(Invalid::new(
                t.key("sample_ratio"),
                format!("expected a ratio from 0 to 1, found {other}"),
                "Write a fraction, e.g. `sample_ratio: 0.1` (a tenth of new traces).",
            ));
        }
    };
    Ok(TracingConfig {
        endpoint: t.string("endpoint")?,
        headers,
        sample_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tracing_settings_parse_and_bad_values_name_the_key() {
        let mut warnings = Vec::new();
        let parsed = parse_tracing(
            Some(
                &json!({"endpoint": "http://c:4318/v1/traces", "headers": {"k": "v"},
                         "sample_ratio": 0.25, "capture_content": false}),
            ),
            &mut warnings,
        )
        .unwrap();
        assert_eq!(parsed.endpoint.as_deref(), Some("http://c:4318/v1/traces"));
        assert_eq!(parsed.headers, [("k".to_owned(), "v".to_owned())]);
        assert_eq!(parsed.sample_ratio, 0.25);
        assert_eq!(
            parse_tracing(None, &mut warnings).unwrap().sample_ratio,
            1.0
        );
        for (bad, key) in [
            (
                json!({"capture_content": true}),
                "server.tracing.capture_content",
            ),
            (json!({"sample_ratio": 2}), "server.tracing.sample_ratio"),
            (json!({"headers": ["k"]}), "server.tracing.headers"),
        ] {
            assert_eq!(
                parse_tracing(Some(&bad), &mut warnings).unwrap_err().key,
                key
            );
        }
    }
}
