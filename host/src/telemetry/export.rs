//! Trace export over OTLP/HTTP protobuf: what the operator asked for ([`TraceSettings`], from
//! `server.tracing` and the standard `OTEL_*` variables, which override it) and the task that
//! sends the spans ([`start`]).
//!
//! The exporter is a task fed by the tracer's bounded queue (`OTEL_BSP_MAX_QUEUE_SIZE`): it
//! sends a batch every `OTEL_BSP_SCHEDULE_DELAY` ms, or as soon as `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`
//! spans are waiting, and what is left at shutdown ([`TraceExport::shutdown`]). A failed export
//! (refused, an error status, or no answer within `OTEL_EXPORTER_OTLP_TIMEOUT`) loses that
//! batch, is counted, and is logged at most once a minute; it never touches a request. The
//! export headers may hold secrets (a collector's API key): they are never logged or shown
//! by `Debug`. A bad variable stops start-up naming it.

use super::otlp;
use super::trace::{self, Sampler, SpanData, Tracer};
use crate::config::schema::TracingConfig;
use crate::environment::Environment;
use std::fmt;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The OTLP/HTTP path of traces under `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub const TRACES_PATH: &str = "/v1/traces";
/// The endpoint when only `OTEL_TRACES_EXPORTER=otlp` says to export.
pub const DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_millis(5000);
const DEFAULT_MAX_BATCH: usize = 512;
const DEFAULT_MAX_QUEUE: usize = 2048;
/// Export failures are logged at most this often.
const WARN_INTERVAL: Duration = Duration::from_secs(60);
/// The one protocol ogx speaks.
const PROTOCOL: &str = "http/protobuf";

/// Where and how spans are exported, when tracing is on.
#[derive(Clone, PartialEq)]
pub struct TraceSettings {
    /// The full URL spans are POSTed to.
    pub endpoint: String,
    /// Sent with every export; may hold secrets.
    headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub schedule_delay: Duration,
    pub max_batch: usize,
    pub max_queue: usize,
    pub sampler: Sampler,
    /// The resource's attributes (`service.name` first).
    pub resource: Vec<(String, String)>,
}

impl fmt::Debug for TraceSettings {
    // Header values may be secrets: names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceSettings")
            .field("endpoint", &self.endpoint)
            .field(
                "header_names",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .field("schedule_delay", &self.schedule_delay)
            .field("sampler", &self.sampler)
            .finish_non_exhaustive()
    }
}

impl TraceSettings {
    /// `server.tracing` with the `OTEL_*` variables over it; `None` when traces are not
    /// exported (no endpoint anywhere, `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`).
    pub fn from_env(config: &TracingConfig, env: &Environment) -> Result<Option<Self>, String> {
        let get = |name: &str| env.get(name).map(|v| v.trim().to_owned());
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let exporter = get("OTEL_TRACES_EXPORTER").map(|v| v.to_ascii_lowercase());
        match exporter.as_deref() {
            Some("none") => return Ok(None),
            None | Some("otlp") => {}
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_EXPORTER={other:?} is not supported: ogx exports traces with otlp (or none to turn them off)"
                ));
            }
        }
        for name in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(protocol) = get(name) {
                if protocol != PROTOCOL {
                    return Err(format!(
                        "{name}={protocol:?} is not supported: ogx exports traces over OTLP with {PROTOCOL} only; set {name}={PROTOCOL} or unset it"
                    ));
                }
                break;
            }
        }
        let endpoint = match (
            get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => Some(("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)),
            (None, Some(base)) => Some((
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("{}{TRACES_PATH}", base.trim_end_matches('/')),
            )),
            (None, None) => match &config.endpoint {
                Some(url) => Some(("server.tracing.endpoint", url.clone())),
                None if exporter.is_some() => {
                    Some(("OTEL_TRACES_EXPORTER", DEFAULT_ENDPOINT.into()))
                }
                None => None,
            },
        };
        let Some((source, endpoint)) = endpoint else {
            return Ok(None);
        };
        match reqwest::Url::parse(&endpoint) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => {}
            _ => {
                return Err(format!(
                    "{source}: {endpoint:?} is not an http:// or https:// URL"
                ));
            }
        }
        let mut headers = config.headers.clone();
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(list) = env.get(name) {
                for (key, value) in parse_headers(name, &list)? {
                    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
                    headers.push((key, value));
                }
            }
        }
        let millis = |names: &[&str], default: Duration| -> Result<Duration, String> {
            for name in names {
                if let Some(value) = get(name) {
                    return value
                        .parse::<u64>()
                        .map(Duration::from_millis)
                        .map_err(|_| format!("{name}={value:?} is not a number of milliseconds"));
                }
            }
            Ok(default)
        };
        let count = |name: &str, default: usize| -> Result<usize, String> {
            get(name).map_or(Ok(default), |value| {
                value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name}={value:?} is not a positive number"))
            })
        };
        let sampler = Sampler::parse(
            get("OTEL_TRACES_SAMPLER").as_deref(),
            get("OTEL_TRACES_SAMPLER_ARG").as_deref(),
            config.sample_ratio,
        )?;
        Ok(Some(TraceSettings {
            endpoint,
            headers,
            timeout: millis(
                &[
                    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                    "OTEL_EXPORTER_OTLP_TIMEOUT",
                ],
                DEFAULT_TIMEOUT,
            )?,
            schedule_delay: millis(&["OTEL_BSP_SCHEDULE_DELAY"], DEFAULT_SCHEDULE_DELAY)?,
            max_batch: count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DEFAULT_MAX_BATCH)?,
            max_queue: count("OTEL_BSP_MAX_QUEUE_SIZE", DEFAULT_MAX_QUEUE)?,
            sampler,
            resource: resource(env)?,
        }))
    }
}

/// `OTEL_SERVICE_NAME` (else `service.name` of `OTEL_RESOURCE_ATTRIBUTES`, else `ogx`) and the
/// other `OTEL_RESOURCE_ATTRIBUTES`.
fn resource(env: &Environment) -> Result<Vec<(String, String)>, String> {
    let mut attributes = match env.get("OTEL_RESOURCE_ATTRIBUTES") {
        Some(list) => parse_headers("OTEL_RESOURCE_ATTRIBUTES", &list)?,
        None => Vec::new(),
    };
    let service = env
        .get("OTEL_SERVICE_NAME")
        .map(|s| s.trim().to_owned())
        .or_else(|| {
            attributes
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| "ogx".to_owned());
    attributes.retain(|(k, _)| k != "service.name");
    let mut resource = vec![
        ("service.name".to_owned(), service),
        ("telemetry.sdk.name".to_owned(), "ogx".to_owned()),
        ("telemetry.sdk.language".to_owned(), "rust".to_owned()),
    ];
    resource.extend(attributes);
    Ok(resource)
}

/// A `key=value,key=value` list (W3C baggage-like, values percent-encoded). The error names
/// the variable and the entry's position, never its value.
fn parse_headers(name: &str, list: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for (index, entry) in list.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let parsed = entry.split_once('=').and_then(|(key, value)| {
            let key = percent_decode(key.trim())?;
            let value = percent_decode(value.trim())?;
            (!key.is_empty()).then_some((key, value))
        });
        match parsed {
            Some(pair) => pairs.push(pair),
            None => {
                return Err(format!(
                    "{name}: entry {} is not key=value (comma-separated, percent-encoded)",
                    index + 1
                ));
            }
        }
    }
    Ok(pairs)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The running exporter; [`TraceExport::shutdown`] sends what is queued.
pub struct TraceExport {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    timeout: Duration,
}

/// Installs the process's tracer and starts the exporter on the current runtime.
pub fn start(settings: TraceSettings) -> Result<TraceExport, String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(settings.timeout)
        .build()
        .map_err(|error| format!("cannot start the trace exporter's HTTP client: {error}"))?;
    let (tx, rx) = mpsc::channel(settings.max_queue);
    trace::install(Tracer::new(settings.sampler, tx));
    let (stop, stopped) = oneshot::channel();
    let timeout = settings.timeout;
    tracing::info!(endpoint = %settings.endpoint, "exporting traces over OTLP/HTTP");
    let task = tokio::spawn(run(settings, client, rx, stopped));
    Ok(TraceExport {
        stop,
        task,
        timeout,
    })
}

impl TraceExport {
    /// Sends the spans still queued, waiting at most the export timeout per batch (and twice
    /// that in all).
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(self.timeout * 2, self.task).await;
    }
}

async fn run(
    settings: TraceSettings,
    client: reqwest::Client,
    mut spans: mpsc::Receiver<SpanData>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut sender = Sender {
        settings,
        client,
        last_warning: None,
        failed_since_warning: 0,
    };
    let mut batch = Vec::with_capacity(sender.settings.max_batch);
    let mut tick = tokio::time::interval(sender.settings.schedule_delay);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            span = spans.recv() => match span {
                Some(span) => {
                    batch.push(span);
                    if batch.len() >= sender.settings.max_batch {
                        sender.send(&mut batch).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => sender.send(&mut batch).await,
            _ = &mut stop => break,
        }
    }
    // Shutdown: what is queued goes out now.
    while let Ok(span) = spans.try_recv() {
        batch.push(span);
        if batch.len() >= sender.settings.max_batch {
            sender.send(&mut batch).await;
        }
    }
    sender.send(&mut batch).await;
}

struct Sender {
    settings: TraceSettings,
    client: reqwest::Client,
    last_warning: Option<Instant>,
    failed_since_warning: u64,
}

impl Sender {
    /// Exports `batch` (emptying it); a failure is counted and maybe logged.
    async fn send(&mut self, batch: &mut Vec<SpanData>) {
        if batch.is_empty() {
            return;
        }
        let body = otlp::encode_export(&self.settings.resource, batch);
        let count = batch.len() as u64;
        batch.clear();
        let mut request = self
            .client
            .post(&self.settings.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/x-protobuf");
        for (name, value) in &self.settings.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let outcome = match request.body(body).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("the collector answered {}", response.status())),
            Err(error) if error.is_timeout() => Err(format!(
                "no answer within {:?} (OTEL_EXPORTER_OTLP_TIMEOUT)",
                self.settings.timeout
            )),
            Err(error) if error.is_connect() => Err("could not connect".to_owned()),
            Err(_) => Err("the exchange failed".to_owned()),
        };
        let Some(tracer) = trace::tracer() else {
            return;
        };
        match outcome {
            Ok(()) => tracer.note_exported(count),
            Err(why) => {
                tracer.note_failed(count);
                self.failed_since_warning += 1;
                if self
                    .last_warning
                    .is_none_or(|at| at.elapsed() >= WARN_INTERVAL)
                {
                    // The endpoint only: header values may be secrets.
                    tracing::warn!(
                        endpoint = %self.settings.endpoint,
                        failed_exports = self.failed_since_warning,
                        "trace export failed, {count} span(s) lost: {why}"
                    );
                    self.last_warning = Some(Instant::now());
                    self.failed_since_warning = 0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Option<TraceSettings>, String> {
        TraceSettings::from_env(
            &TracingConfig::default(),
            &Environment::from_pairs(pairs.iter().copied()),
        )
    }

    #[test]
    fn the_otel_variables_choose_endpoint_headers_and_limits() {
        assert_eq!(settings(&[]).unwrap(), None);
        let on = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s%3Dcret, x=1"),
            ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X=2"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_SERVICE_NAME", "gateway"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(on.endpoint, "http://collector:4318/v1/traces");
        assert_eq!(
            on.headers,
            [
                ("api-key".to_owned(), "s=cret".to_owned()),
                ("X".to_owned(), "2".to_owned())
            ]
        );
        assert_eq!(on.schedule_delay, Duration::from_millis(100));
        assert_eq!(on.resource[0], ("service.name".into(), "gateway".into()));
        assert!(
            on.resource
                .iter()
                .any(|(k, _)| k == "deployment.environment")
        );
        assert!(!format!("{on:?}").contains("s=cret"));
        let exact = settings(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/x")])
            .unwrap()
            .unwrap();
        assert_eq!(exact.endpoint, "http://c/x");
        assert_eq!(
            settings(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/x"),
                ("OTEL_TRACES_EXPORTER", "none")
            ])
            .unwrap(),
            None
        );
    }

    #[test]
    fn bad_variables_are_named_and_secrets_are_not_quoted() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let error = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).unwrap_err();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && error.contains("http/protobuf"),
            "{error}"
        );
        let error =
            settings(&[endpoint, ("OTEL_EXPORTER_OTLP_HEADERS", "s3cret-no-equals")]).unwrap_err();
        assert!(
            error.contains("OTEL_EXPORTER_OTLP_HEADERS") && !error.contains("s3cret"),
            "{error}"
        );
        let error = settings(&[endpoint, ("OTEL_EXPORTER_OTLP_TIMEOUT", "5s")]).unwrap_err();
        assert!(error.contains("OTEL_EXPORTER_OTLP_TIMEOUT"), "{error}");
        let error = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")]).unwrap_err();
        assert!(error.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{error}");
    }
}
