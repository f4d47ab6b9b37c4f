//! `server.metrics`: whether ogx serves Prometheus metrics at `GET /metrics`, and where.
//!
//! ```yaml
//! server:
//!   metrics:
//!     enabled: true   # default false; OGX_METRICS=1 turns them on too
//!     port: 9464      # optional: serve /metrics on this port only, not on the API port
//! ```
//!
//! Fails on a value of the wrong type or a port outside 1–65535, naming the key.

use super::fields::{Invalid, Section};
use super::schema::MetricsConfig;
use serde_json::Value;

const METRICS_KEYS: &[&str] = &["enabled", "port"];

/// Reads `server.metrics`; absent is metrics off.
pub fn parse_metrics(
    value: Option<&Value>,
    warnings: &mut Vec<String>,
) -> Result<MetricsConfig, Invalid> {
    let Some(m) = Section::of(value, "server.metrics")? else {
        return Ok(MetricsConfig::default());
    };
    m.warn_unknown(METRICS_KEYS, warnings);
    Ok(MetricsConfig {
        enabled: m.bool("enabled")?.unwrap_or(false),
        port: m.int_in("port", 1, 65535)?.map(|p| p as u16),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metrics_settings_parse_and_bad_values_name_the_key() {
        let mut warnings = Vec::new();
        let parsed = parse_metrics(
            Some(&json!({"enabled": true, "port": 9464, "extra": 1})),
            &mut warnings,
        )
        .unwrap();
        assert_eq!(
            parsed,
            MetricsConfig {
                enabled: true,
                port: Some(9464)
            }
        );
        assert!(warnings.iter().any(|w| w.contains("extra")), "{warnings:?}");
        assert_eq!(
            parse_metrics(None, &mut warnings).unwrap(),
            MetricsConfig::default()
        );
        let error = parse_metrics(Some(&json!({"port": 0})), &mut warnings).unwrap_err();
        assert_eq!(error.key, "server.metrics.port");
    }
}
