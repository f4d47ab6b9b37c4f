//! Observability: what an operator watches ogx by. Prometheus metrics ([`metrics`], served
//! at `GET /metrics` by the server), the per-request facts they and the log line are made of
//! ([`record`]), the log's format and levels ([`logs`]), and OpenTelemetry traces: spans and
//! trace context ([`trace`]), their OTLP encoding ([`otlp`]) and export ([`export`]).
//!
//! This module is a leaf: every layer may record into it (the runtime its plugin timings,
//! the AWS credential cache its refreshes), and it depends on no layer above `imports`. What
//! an operator asked for is read once at start-up ([`Settings::from_env`]); a bad value stops
//! start-up naming the variable.

pub mod export;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod record;
pub mod registry;
pub mod trace;

use crate::config::schema::MetricsConfig;
use crate::environment::Environment;

/// What start-up turns on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `server.metrics.enabled`, or `OGX_METRICS` set to a true value.
    pub metrics: bool,
    /// `server.metrics.port`, or `OGX_METRICS_PORT`: `/metrics` on its own port.
    pub metrics_port: Option<u16>,
}

impl Settings {
    /// The config's `server.metrics` with the environment's overrides: `OGX_METRICS`
    /// (`1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`) and `OGX_METRICS_PORT`.
    pub fn from_env(config: &MetricsConfig, env: &Environment) -> Result<Self, String> {
        let metrics = match env.get("OGX_METRICS") {
            None => config.enabled,
            Some(value) => match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(format!(
                        "OGX_METRICS={value:?} is not a boolean; use 1 to turn metrics on or 0 to turn them off"
                    ));
                }
            },
        };
        let metrics_port = match env.get("OGX_METRICS_PORT") {
            None => config.port,
            Some(value) => Some(
                value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("OGX_METRICS_PORT={value:?} is not a port (1-65535)"))?,
            ),
        };
        Ok(Settings {
            metrics,
            metrics_port,
        })
    }

    /// Whether `/metrics` is served on the API port.
    pub fn metrics_on_api_port(&self) -> bool {
        self.metrics && self.metrics_port.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_overrides_the_config_and_bad_values_are_named() {
        let config = MetricsConfig {
            enabled: false,
            port: Some(9464),
        };
        let settings = |pairs: &[(&str, &str)]| {
            Settings::from_env(&config, &Environment::from_pairs(pairs.iter().copied()))
        };
        assert_eq!(
            settings(&[]).unwrap(),
            Settings {
                metrics: false,
                metrics_port: Some(9464)
            }
        );
        let on = settings(&[("OGX_METRICS", "1"), ("OGX_METRICS_PORT", "9100")]).unwrap();
        assert!(on.metrics && on.metrics_port == Some(9100) && !on.metrics_on_api_port());
        assert!(
            settings(&[("OGX_METRICS", "maybe")])
                .unwrap_err()
                .contains("OGX_METRICS")
        );
        assert!(
            settings(&[("OGX_METRICS_PORT", "0")])
                .unwrap_err()
                .contains("OGX_METRICS_PORT")
        );
    }
}
