//! The process's log: to stderr, as text (the default) or, with `OGX_LOG_FORMAT=json`, one
//! JSON object per line (`timestamp`, `level`, `target`, `message` and the event's fields, e.g.
//! a request line's `request_id`, `trace_id`, `route`, `status`, `provider`, `model`,
//! `duration_ms`, `added_ms`, `input_tokens`, `output_tokens`).
//!
//! Levels: `RUST_LOG` wins when set; otherwise OGX's `OGX_LOGGING`, a comma-separated list of
//! `category=level` (`all=debug`, `server=warning,inference=debug`), with OGX's categories
//! mapped to ogx's modules ([`CATEGORY_TARGETS`]) and OGX's level names (`warning`,
//! `critical`) accepted; otherwise `info`. An unknown category or level is reported on stderr
//! by name and ignored, as OGX does. Log lines carry ids, names and numbers: never a header
//! value, a key or a prompt (the callers' duty; the request line is built from the record).

use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// `OGX_LOG_FORMAT`: `json`, or `text` (the default). Anything else is an error naming
    /// the variable.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("text") | Some("console") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(format!(
                "OGX_LOG_FORMAT={other:?} is not a log format; use `json` or `text`"
            )),
        }
    }
}

/// OGX's logging categories and the ogx log targets each one sets.
pub const CATEGORY_TARGETS: &[(&str, &[&str])] = &[
    (
        "core",
        &["ogx::cli", "ogx::config", "ogx::runtime", "ogx::storage"],
    ),
    ("server", &["ogx::server", "ogx::telemetry"]),
    ("router", &["ogx::registry"]),
    ("models", &["ogx::registry"]),
    (
        "inference",
        &["ogx::server::routes::inference", "ogx::runtime"],
    ),
    ("providers", &["ogx::plugin", "ogx::imports"]),
    (
        "openai_responses",
        &["ogx::responses", "ogx::server::routes::responses"],
    ),
    (
        "messages",
        &["ogx::messages", "ogx::server::routes::messages"],
    ),
    ("telemetry", &["ogx::telemetry"]),
    ("cli", &["ogx::cli"]),
];

/// OGX's other categories: accepted, but nothing in ogx logs under them.
const CATEGORIES_WITHOUT_TARGETS: &[&str] = &[
    "agents",
    "tools",
    "client",
    "openai",
    "openai_conversations",
    "testing",
    "files",
    "file_processors",
    "vector_io",
    "tool_runtime",
    "tests",
    "connectors",
    "interactions",
];

/// The `EnvFilter` directives for an `OGX_LOGGING` value, and a complaint per part that
/// could not be used.
pub fn ogx_logging_directives(spec: &str) -> (String, Vec<String>) {
    let mut default = "info".to_string();
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    for part in spec.split([',', ';']).filter(|p| !p.trim().is_empty()) {
        let Some((category, level)) = part.split_once('=') else {
            problems.push(format!(
                "OGX_LOGGING: '{}' is not `category=level`",
                part.trim()
            ));
            continue;
        };
        let category = category.trim().to_ascii_lowercase();
        let Some(level) = level_of(level) else {
            problems.push(format!(
                "OGX_LOGGING: '{}' is not a level (debug, info, warning, error, critical)",
                level.trim()
            ));
            continue;
        };
        if category == "all" {
            default = level.to_string();
        } else if let Some((_, names)) = CATEGORY_TARGETS.iter().find(|(c, _)| *c == category) {
            targets.extend(names.iter().map(|t| format!("{t}={level}")));
        } else if !CATEGORIES_WITHOUT_TARGETS.contains(&category.as_str()) {
            problems.push(format!("OGX_LOGGING: unknown category '{category}'"));
        }
    }
    let mut directives = vec![default];
    directives.extend(targets);
    (directives.join(","), problems)
}

fn level_of(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "critical" | "fatal" => "error",
        "off" | "none" => "off",
        _ => return None,
    })
}

/// Installs the process's log subscriber (stderr; `format`; `filter` directives).
pub fn install(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::secrets::log::ScrubbingStderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init(),
        LogFormat::Json => builder.event_format(JsonLines).try_init(),
    };
}

/// Formats each event as one JSON object.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", json_line(event))
    }
}

/// The JSON object of one event.
fn json_line(event: &Event<'_>) -> serde_json::Value {
    let mut timestamp = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut timestamp));
    let meta = event.metadata();
    let mut fields = JsonFields(serde_json::Map::new());
    fields.0.insert("timestamp".into(), timestamp.into());
    fields
        .0
        .insert("level".into(), meta.level().as_str().to_lowercase().into());
    fields.0.insert("target".into(), meta.target().into());
    event.record(&mut fields);
    serde_json::Value::Object(fields.0)
}

/// Collects an event's fields; numbers and booleans stay JSON numbers and booleans.
struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ogx_logging_maps_categories_and_levels() {
        for (spec, directives, problems) in [
            ("all=debug", "debug", 0),
            ("all=WARNING", "warn", 0),
            (
                "server=debug,all=error",
                "error,ogx::server=debug,ogx::telemetry=debug",
                0,
            ),
            (
                "providers=critical",
                "info,ogx::plugin=error,ogx::imports=error",
                0,
            ),
            ("vector_io=debug", "info", 0),
            ("nonsense=debug, server=loud, oops", "info", 3),
        ] {
            let (got, complaints) = ogx_logging_directives(spec);
            assert_eq!(got, directives, "{spec}");
            assert_eq!(complaints.len(), problems, "{spec}: {complaints:?}");
            tracing_subscriber::EnvFilter::try_new(&got).expect("valid directives");
        }
    }

    #[test]
    fn log_formats_parse_and_refuse_by_name() {
        assert_eq!(LogFormat::parse(None), Ok(LogFormat::Text));
        assert_eq!(LogFormat::parse(Some("JSON")), Ok(LogFormat::Json));
        let error = LogFormat::parse(Some("xml")).unwrap_err();
        assert!(error.contains("OGX_LOG_FORMAT"), "{error}");
    }

    #[test]
    fn json_lines_carry_the_fields_as_json_values() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                request_id = "r1",
                status = 200u64,
                duration_ms = 1.5,
                "POST /v1/x"
            );
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["request_id"], "r1");
        assert_eq!(line["status"], 200);
        assert_eq!(line["duration_ms"], 1.5);
        assert_eq!(line["message"], "POST /v1/x");
        assert_eq!(line["level"], "info");
        assert!(line["timestamp"].as_str().unwrap().contains('T'));
    }
}
