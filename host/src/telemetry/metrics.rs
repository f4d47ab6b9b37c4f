//! The metrics ogx exports at `GET /metrics`: one process-wide set, made when start-up turns
//! metrics on ([`install`]) and absent otherwise, so that with metrics off recording costs one
//! load of an empty `OnceLock`.
//!
//! Names: OGX 1.5.0's server metrics (`ogx.requests_total`, `ogx.request_duration_seconds`,
//! `ogx.concurrent_requests`, in Prometheus spelling) with OGX's `api`, `method`, `status`
//! (`success`/`error`) and `status_code` labels; the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.client.operation.duration`, `gen_ai.client.token.usage`,
//! `gen_ai.server.time_to_first_token`, with their recommended buckets); and `ogx_*` names for
//! what only this gateway has (its own added time, plugin instances, credential refreshes).
//!
//! Labels are bounded: `route` is the route's template (`/v1/models/{*model_id}`), never the
//! path; `provider` is a configured provider id; `model` is a model id the registry knows, and
//! every other requested id (a `provider/anything` request) counts as [`OTHER_MODEL`].

use super::registry::{Counter, Family, Gauge, Histogram};
use std::sync::OnceLock;
use std::time::Duration;

/// The `model` label of a request for a model the registry does not list.
pub const OTHER_MODEL: &str = "other";

/// Seconds, for whole requests and operations (OpenTelemetry's advice for
/// `gen_ai.client.operation.duration`).
const OPERATION_SECONDS: &[f64] = &[
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// Seconds to the first token (OpenTelemetry's advice for `gen_ai.server.time_to_first_token`).
const FIRST_TOKEN_SECONDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Tokens (OpenTelemetry's advice for `gen_ai.client.token.usage`).
const TOKENS: &[f64] = &[
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// Seconds the gateway adds: from 25 µs up, since that is where ogx's own time lies.
const ADDED_SECONDS: &[f64] = &[
    0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    1.0,
];

/// Every metric of the process.
pub struct Metrics {
    pub requests: Family<Counter, 6>,
    pub request_duration: Family<Histogram, 3>,
    pub concurrent_requests: Family<Gauge, 1>,
    pub added_time: Family<Histogram, 2>,
    pub upstream_exchanges: Family<Counter, 1>,
    pub operation_duration: Family<Histogram, 4>,
    pub token_usage: Family<Histogram, 4>,
    pub time_to_first_token: Family<Histogram, 3>,
    pub plugin_instantiation: Family<Histogram, 1>,
    pub plugin_call: Family<Histogram, 2>,
    pub credential_refreshes: Family<Counter, 2>,
}

impl Metrics {
    fn new() -> Self {
        Metrics {
            requests: Family::new(
                "ogx_requests_total",
                "API requests answered, by API, route, method, outcome, HTTP status and provider.",
                [
                    "api",
                    "route",
                    "method",
                    "status",
                    "status_code",
                    "provider",
                ],
            ),
            request_duration: Family::with_buckets(
                "ogx_request_duration_seconds",
                "Time from a request's arrival to the end of its answer (streams included).",
                ["api", "route", "method"],
                OPERATION_SECONDS,
            ),
            concurrent_requests: Family::new(
                "ogx_concurrent_requests",
                "Requests being served (streams count until their last event).",
                ["api"],
            ),
            added_time: Family::with_buckets(
                "ogx_gateway_added_seconds",
                "Time ogx itself added to a request: its total minus the time spent waiting on upstreams.",
                ["api", "route"],
                ADDED_SECONDS,
            ),
            upstream_exchanges: Family::new(
                "ogx_upstream_requests_total",
                "HTTP exchanges plugins made with upstreams (each retry counts).",
                ["provider"],
            ),
            operation_duration: Family::with_buckets(
                "gen_ai_client_operation_duration_seconds",
                "GenAI operation duration.",
                [
                    "gen_ai_operation_name",
                    "gen_ai_provider_name",
                    "gen_ai_request_model",
                    "error_type",
                ],
                OPERATION_SECONDS,
            ),
            token_usage: Family::with_buckets(
                "gen_ai_client_token_usage",
                "Tokens used, from the answers' usage (streamed answers included).",
                [
                    "gen_ai_operation_name",
                    "gen_ai_provider_name",
                    "gen_ai_request_model",
                    "gen_ai_token_type",
                ],
                TOKENS,
            ),
            time_to_first_token: Family::with_buckets(
                "gen_ai_server_time_to_first_token_seconds",
                "Time from a streamed request's arrival to its first chunk.",
                [
                    "gen_ai_operation_name",
                    "gen_ai_provider_name",
                    "gen_ai_request_model",
                ],
                FIRST_TOKEN_SECONDS,
            ),
            plugin_instantiation: Family::with_buckets(
                "ogx_plugin_instantiation_seconds",
                "Time to get a fresh plugin instance ready: slot, instantiation and init.",
                ["provider"],
                ADDED_SECONDS,
            ),
            plugin_call: Family::with_buckets(
                "ogx_plugin_call_seconds",
                "Time of a plugin call on a ready instance (upstream exchanges included; for a stream, until it opened).",
                ["provider", "outcome"],
                OPERATION_SECONDS,
            ),
            credential_refreshes: Family::new(
                "ogx_credential_refreshes_total",
                "Cloud credential resolutions and refreshes, by cloud and outcome.",
                ["cloud", "outcome"],
            ),
        }
    }

    /// The text exposition of every metric.
    pub fn expose(&self, out: &mut String) {
        self.requests.expose(out);
        self.request_duration.expose(out);
        self.concurrent_requests.expose(out);
        self.added_time.expose(out);
        self.upstream_exchanges.expose(out);
        self.operation_duration.expose(out);
        self.token_usage.expose(out);
        self.time_to_first_token.expose(out);
        self.plugin_instantiation.expose(out);
        self.plugin_call.expose(out);
        self.credential_refreshes.expose(out);
    }
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Turns metrics on for the life of the process.
pub fn install() -> &'static Metrics {
    METRICS.get_or_init(Metrics::new)
}

/// The metrics, when they are on.
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Records the time to get a plugin instance ready for `provider`.
pub fn plugin_instantiated(provider: &str, took: Duration) {
    if let Some(m) = get() {
        m.plugin_instantiation
            .get([provider])
            .observe(took.as_secs_f64());
    }
}

/// Records a plugin call on a ready instance.
pub fn plugin_called(provider: &str, ok: bool, took: Duration) {
    if let Some(m) = get() {
        let outcome = if ok { "ok" } else { "error" };
        m.plugin_call
            .get([provider, outcome])
            .observe(took.as_secs_f64());
    }
}

/// Records a credential resolution for `cloud` (`aws`, ...).
pub fn credential_refresh(cloud: &str, ok: bool) {
    if let Some(m) = get() {
        let outcome = if ok { "success" } else { "failure" };
        m.credential_refreshes.get([cloud, outcome]).add(1);
    }
}
