//! Traces: the W3C `traceparent` a request arrives with and sends upstream, the sampler that
//! decides whether a trace is recorded, and the [`Span`]s ogx records (a server span per
//! request, a span per plugin call, a client span per outbound exchange).
//!
//! Tracing is on when start-up installs a [`Tracer`] ([`install`], from
//! `super::export::TraceSettings`); until then [`tracer`] is `None` and no span is made: the
//! cost per request is that check. A finished span is handed to the exporter through a
//! bounded channel with `try_send`: when the exporter is behind, the span is dropped and
//! counted ([`Tracer::dropped`]), never waited for. Nothing here fails a request.
//!
//! What travels with a provider call down to the outbound HTTP client is a [`Propagation`]:
//! the span context the exchange is a child of (tracing on), or the client's own
//! `traceparent`, forwarded unchanged (tracing off).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// The W3C trace-context header.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// A valid W3C `traceparent`: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanContext {
    pub trace_id: u128,
    pub span_id: u64,
    /// The `sampled` flag (bit 0 of the trace flags).
    pub sampled: bool,
}

impl SpanContext {
    /// Parses a `traceparent` header; `None` when it is not valid (version `ff`, ids of zeros,
    /// wrong lengths or non-hex digits), in which case a new trace starts.
    pub fn parse(header: &str) -> Option<SpanContext> {
        let mut parts = header.trim().split('-');
        let (version, trace, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let well_formed = hex(version, 2)
            && version != "ff"
            && hex(trace, 32)
            && hex(parent, 16)
            && hex(flags, 2);
        if !well_formed || (version == "00" && parts.next().is_some()) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(parent, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(SpanContext {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The context as a version-00 `traceparent` value.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }

    /// The trace id as 32 hex digits (the request's log line carries it).
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// A new span of the same trace (its id is new, its sampling decision inherited).
    pub fn child(&self) -> SpanContext {
        SpanContext {
            span_id: new_span_id(),
            ..*self
        }
    }
}

/// A random non-zero span id.
pub fn new_span_id() -> u64 {
    loop {
        let id = uuid::Uuid::new_v4().as_u64_pair().0;
        if id != 0 {
            return id;
        }
    }
}

/// A random non-zero trace id.
pub fn new_trace_id() -> u128 {
    // Each half is the first 64 bits of a v4 UUID: random but for the version nibble (bits
    // 12-15). Not the UUID's last 64 bits, whose top bits are the fixed variant: the ratio
    // sampler compares the low half's value, so its top bits must be random.
    (u128::from(new_span_id()) << 64) | u128::from(new_span_id())
}

/// The root sampler's decision (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    AlwaysOn,
    AlwaysOff,
    /// `traceidratio`: this share of traces, chosen by trace id.
    Ratio(f64),
}

/// Which traces are recorded: `root` decides for a trace ogx starts; with `parent_based`, a
/// trace a client started follows the client's `sampled` flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    pub root: Root,
    pub parent_based: bool,
}

impl Default for Sampler {
    /// The OpenTelemetry default: `parentbased_always_on`.
    fn default() -> Self {
        Sampler {
            root: Root::AlwaysOn,
            parent_based: true,
        }
    }
}

impl Sampler {
    /// `OTEL_TRACES_SAMPLER` (`name`) and `OTEL_TRACES_SAMPLER_ARG` (`arg`); `ratio` is the
    /// config's `sample_ratio`, used by the ratio samplers when `arg` is unset. The error names
    /// the variable and the values allowed.
    pub fn parse(name: Option<&str>, arg: Option<&str>, ratio: f64) -> Result<Sampler, String> {
        let ratio = match arg {
            None => ratio,
            Some(arg) => arg
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    format!("OTEL_TRACES_SAMPLER_ARG={arg:?} is not a ratio from 0 to 1")
                })?,
        };
        let (root, parent_based) = match name.map(|n| n.trim().to_ascii_lowercase()).as_deref() {
            None if ratio >= 1.0 => (Root::AlwaysOn, true),
            None => (Root::Ratio(ratio), true),
            Some("always_on") => (Root::AlwaysOn, false),
            Some("always_off") => (Root::AlwaysOff, false),
            Some("traceidratio") => (Root::Ratio(ratio), false),
            Some("parentbased_always_on") => (Root::AlwaysOn, true),
            Some("parentbased_always_off") => (Root::AlwaysOff, true),
            Some("parentbased_traceidratio") => (Root::Ratio(ratio), true),
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER={other:?} is not a sampler ogx knows; use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                ));
            }
        };
        Ok(Sampler { root, parent_based })
    }

    /// Whether to record the trace `trace_id`, whose remote parent (if any) is `parent`.
    pub fn sample(&self, trace_id: u128, parent: Option<&SpanContext>) -> bool {
        if self.parent_based
            && let Some(parent) = parent
        {
            return parent.sampled;
        }
        match self.root {
            Root::AlwaysOn => true,
            Root::AlwaysOff => false,
            Root::Ratio(ratio) if ratio >= 1.0 => true,
            Root::Ratio(ratio) if ratio <= 0.0 => false,
            // The low 64 bits of the id against the ratio's share of 2^64, as the
            // OpenTelemetry SDKs do.
            Root::Ratio(ratio) => (trace_id as u64) < (ratio * u64::MAX as f64) as u64,
        }
    }
}

/// What a provider call carries down to its outbound exchanges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Propagation {
    /// Tracing on: the exchanges' spans are children of `parent`; `resend` is how many
    /// attempts of this request's provider call came before this one (retries).
    Traced { parent: SpanContext, resend: u32 },
    /// Tracing off: the client's `traceparent`, sent upstream as it came.
    Forward(Arc<str>),
}

impl Propagation {
    /// The same propagation under a new parent span (a forwarded header stays as it is).
    pub fn under(&self, span: &Span) -> Propagation {
        match self {
            Propagation::Traced { resend, .. } => Propagation::Traced {
                parent: span.context,
                resend: *resend,
            },
            Propagation::Forward(header) => Propagation::Forward(header.clone()),
        }
    }
}

/// A span's kind, with OTLP's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Str(value.to_owned())
    }
}
impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Str(value)
    }
}
impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}
impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Bool(value)
    }
}

/// A finished span, as exported.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanData {
    pub trace_id: u128,
    pub span_id: u64,
    pub parent_span_id: Option<u64>,
    pub name: String,
    pub kind: Kind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<(&'static str, Value)>,
    /// `Some` marks the span an error (OTLP status code 2) with this message.
    pub error: Option<String>,
}

/// A span in progress. It is exported when dropped (or [`Span::end`]ed), if its trace is
/// sampled and tracing is on; otherwise it only carries a context for propagation.
#[derive(Debug)]
pub struct Span {
    context: SpanContext,
    data: Option<Box<SpanData>>,
}

impl Span {
    /// A span with `context` (its own id already chosen), child of `parent_span_id`.
    pub fn with_context(
        context: SpanContext,
        parent_span_id: Option<u64>,
        name: impl Into<String>,
        kind: Kind,
    ) -> Span {
        let recording = context.sampled && tracer().is_some();
        Span {
            context,
            data: recording.then(|| {
                Box::new(SpanData {
                    trace_id: context.trace_id,
                    span_id: context.span_id,
                    parent_span_id,
                    name: name.into(),
                    kind,
                    start_unix_nanos: unix_nanos(),
                    end_unix_nanos: 0,
                    attributes: Vec::with_capacity(8),
                    error: None,
                })
            }),
        }
    }

    /// A new span, child of `parent`.
    pub fn child_of(parent: &SpanContext, name: impl Into<String>, kind: Kind) -> Span {
        Span::with_context(parent.child(), Some(parent.span_id), name, kind)
    }

    /// This span's context: what its children and the `traceparent` it sends carry.
    pub fn context(&self) -> SpanContext {
        self.context
    }

    /// Whether the span will be exported (attributes worth computing).
    pub fn is_recording(&self) -> bool {
        self.data.is_some()
    }

    /// Sets an attribute (replacing one of the same key).
    pub fn set(&mut self, key: &'static str, value: impl Into<Value>) {
        if let Some(data) = &mut self.data {
            let value = value.into();
            match data.attributes.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => data.attributes.push((key, value)),
            }
        }
    }

    /// Marks the span failed with `message` (no secret, no content: a status or error kind).
    pub fn fail(&mut self, message: impl Into<String>) {
        if let Some(data) = &mut self.data {
            data.error = Some(message.into());
        }
    }

    /// Ends the span now (dropping it does the same).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut data) = self.data.take()
            && let Some(tracer) = tracer()
        {
            data.end_unix_nanos = unix_nanos();
            tracer.submit(*data);
        }
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The process's tracing: its sampler and the channel to the exporter.
#[derive(Debug)]
pub struct Tracer {
    pub sampler: Sampler,
    spans: mpsc::Sender<SpanData>,
    dropped: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

impl Tracer {
    pub fn new(sampler: Sampler, spans: mpsc::Sender<SpanData>) -> Self {
        Tracer {
            sampler,
            spans,
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Counts spans the collector accepted.
    pub fn note_exported(&self, spans: u64) {
        self.exported.fetch_add(spans, Ordering::Relaxed);
    }

    /// Counts spans lost to a failed export.
    pub fn note_failed(&self, spans: u64) {
        self.failed.fetch_add(spans, Ordering::Relaxed);
    }

    /// Spans exported, and spans lost to failed exports, so far.
    pub fn export_counts(&self) -> (u64, u64) {
        (
            self.exported.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Hands a finished span to the exporter; drops (and counts) it when the queue is full.
    pub fn submit(&self, span: SpanData) {
        if self.spans.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spans dropped because the exporter's queue was full or closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The server span of a request whose client sent the valid `traceparent` `remote` (if
    /// any): a child of the client's span, else the root of a new trace.
    pub fn server_span(&self, remote: Option<SpanContext>, name: String) -> Span {
        let trace_id = remote.map_or_else(new_trace_id, |r| r.trace_id);
        let context = SpanContext {
            trace_id,
            span_id: new_span_id(),
            sampled: self.sampler.sample(trace_id, remote.as_ref()),
        };
        Span::with_context(context, remote.map(|r| r.span_id), name, Kind::Server)
    }
}

static TRACER: OnceLock<Tracer> = OnceLock::new();

/// Turns tracing on for the process (the first call wins).
pub fn install(tracer: Tracer) {
    let _ = TRACER.set(tracer);
}

/// The process's tracer, when tracing is on.
pub fn tracer() -> Option<&'static Tracer> {
    TRACER.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn traceparents_parse_when_valid_and_format_back() {
        let parsed = SpanContext::parse(&format!(" 00-{TRACE}-00f067aa0ba902b7-01 ")).unwrap();
        assert_eq!(parsed.trace_id_hex(), TRACE);
        assert_eq!(parsed.span_id, 0x00f0_67aa_0ba9_02b7);
        assert!(parsed.sampled);
        assert_eq!(
            parsed.traceparent(),
            format!("00-{TRACE}-00f067aa0ba902b7-01")
        );
        let unsampled = SpanContext::parse(&format!("00-{TRACE}-00f067aa0ba902b7-00")).unwrap();
        assert!(!unsampled.sampled);
        // A future version may append fields; version 00 may not.
        assert!(SpanContext::parse(&format!("01-{TRACE}-00f067aa0ba902b7-01-extra")).is_some());
        for bad in [
            format!("ff-{TRACE}-00f067aa0ba902b7-01"),
            format!("00-{}-00f067aa0ba902b7-01", "0".repeat(32)),
            format!("00-{TRACE}-0000000000000000-01"),
            format!("00-{TRACE}-00f067aa0ba902b7"),
            format!("00-{TRACE}-00f067aa0ba902b7-01-extra"),
            format!("00-{TRACE}-00f067aa0ba902b7-0g"),
            "00-xyz-00f067aa0ba902b7-01".to_string(),
        ] {
            assert_eq!(SpanContext::parse(&bad), None, "{bad}");
        }
        let child = parsed.child();
        assert_eq!(child.trace_id, parsed.trace_id);
        assert_ne!(child.span_id, parsed.span_id);
    }

    #[test]
    fn samplers_follow_their_names_and_parents() {
        let remote = |sampled| SpanContext {
            trace_id: 1,
            span_id: 2,
            sampled,
        };
        let default = Sampler::parse(None, None, 1.0).unwrap();
        assert_eq!(default, Sampler::default());
        assert!(default.sample(5, None));
        assert!(!default.sample(5, Some(&remote(false))));
        let on = Sampler::parse(Some("always_on"), None, 1.0).unwrap();
        assert!(on.sample(5, Some(&remote(false))));
        let off = Sampler::parse(Some("parentbased_always_off"), None, 1.0).unwrap();
        assert!(!off.sample(5, None) && off.sample(5, Some(&remote(true))));
        let ratio = Sampler::parse(Some("traceidratio"), Some("0.5"), 1.0).unwrap();
        assert!(ratio.sample(1, None));
        assert!(!ratio.sample(u128::from(u64::MAX - 1), None));
        let sampled = (0..2000)
            .filter(|_| ratio.sample(new_trace_id(), None))
            .count();
        assert!((700..1300).contains(&sampled), "{sampled}");
        assert!(
            !Sampler::parse(Some("traceidratio"), None, 0.0)
                .unwrap()
                .sample(1, None)
        );
        let error = Sampler::parse(Some("sometimes"), None, 1.0).unwrap_err();
        assert!(error.contains("OTEL_TRACES_SAMPLER"), "{error}");
        let error = Sampler::parse(None, Some("2"), 1.0).unwrap_err();
        assert!(error.contains("OTEL_TRACES_SAMPLER_ARG"), "{error}");
    }

    #[test]
    fn a_span_without_a_tracer_records_nothing_but_propagates() {
        let parent = SpanContext::parse(&format!("00-{TRACE}-00f067aa0ba902b7-01")).unwrap();
        let mut span = Span::child_of(&parent, "x", Kind::Client);
        span.set("k", 1);
        assert!(!span.is_recording());
        assert_eq!(span.context().trace_id, parent.trace_id);
        let propagation = Propagation::Traced { parent, resend: 1 }.under(&span);
        assert_eq!(
            propagation,
            Propagation::Traced {
                parent: span.context(),
                resend: 1
            }
        );
    }
}
