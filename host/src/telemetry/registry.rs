//! The building blocks of [`super::metrics`]: counters, gauges and histograms kept in atomics,
//! grouped in label families, and their Prometheus text exposition (format 0.0.4).
//!
//! Recording a sample takes a read lock on its family's table (shared, uncontended once the
//! series exists) and a few relaxed atomic operations; only the first sample of a new label set
//! takes the write lock. Label values are escaped as the format requires; the caller keeps
//! them bounded (see `super::metrics` for how each label is bounded).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram over fixed upper bounds (the `+Inf` bucket is implied).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// The sum of the observations, as `f64` bits.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// What a family holds, and how it is exposed.
pub trait Series: Send + Sync + 'static {
    const TYPE: &'static str;
    fn create(bounds: &'static [f64]) -> Self;
    /// Appends the sample lines of one series; `labels` is already rendered (`a="x",b="y"`).
    fn expose(&self, name: &str, labels: &str, out: &mut String);
}

impl Series for Counter {
    const TYPE: &'static str = "counter";
    fn create(_: &'static [f64]) -> Self {
        Counter::default()
    }
    fn expose(&self, name: &str, labels: &str, out: &mut String) {
        let _ = writeln!(out, "{} {}", sample(name, labels), self.get());
    }
}

impl Series for Gauge {
    const TYPE: &'static str = "gauge";
    fn create(_: &'static [f64]) -> Self {
        Gauge::default()
    }
    fn expose(&self, name: &str, labels: &str, out: &mut String) {
        let _ = writeln!(out, "{} {}", sample(name, labels), self.get());
    }
}

impl Series for Histogram {
    const TYPE: &'static str = "histogram";
    fn create(bounds: &'static [f64]) -> Self {
        Histogram::new(bounds)
    }
    fn expose(&self, name: &str, labels: &str, out: &mut String) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Ordering::Relaxed);
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = f64::from_bits(self.sum.load(Ordering::Relaxed));
        let _ = writeln!(out, "{} {sum}", sample(&format!("{name}_sum"), labels));
        let _ = writeln!(
            out,
            "{} {cumulative}",
            sample(&format!("{name}_count"), labels)
        );
    }
}

type Entries<M, const N: usize> = Vec<([Box<str>; N], Arc<M>)>;

/// One metric name and its series, one per set of `N` label values.
pub struct Family<M: Series, const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
    bounds: &'static [f64],
    /// By a hash of the label values; collisions share the vector.
    series: RwLock<HashMap<u64, Entries<M, N>>>,
}

impl<M: Series, const N: usize> Family<M, N> {
    pub fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self::with_buckets(name, help, labels, &[])
    }

    pub fn with_buckets(
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
        bounds: &'static [f64],
    ) -> Self {
        Family {
            name,
            help,
            labels,
            bounds,
            series: RwLock::new(HashMap::new()),
        }
    }

    /// The series of these label values, made at its first use.
    pub fn get(&self, values: [&str; N]) -> Arc<M> {
        let mut hasher = DefaultHasher::new();
        values.hash(&mut hasher);
        let key = hasher.finish();
        let same = |stored: &[Box<str>; N]| stored.iter().zip(values).all(|(a, b)| **a == *b);
        {
            let table = self.series.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, series)) = table
                .get(&key)
                .and_then(|e| e.iter().find(|(l, _)| same(l)))
            {
                return series.clone();
            }
        }
        let mut table = self.series.write().unwrap_or_else(|e| e.into_inner());
        let entries = table.entry(key).or_default();
        if let Some((_, series)) = entries.iter().find(|(l, _)| same(l)) {
            return series.clone();
        }
        let series = Arc::new(M::create(self.bounds));
        entries.push((values.map(Box::from), series.clone()));
        series
    }

    /// Appends `# HELP`, `# TYPE` and every series, sorted by label values.
    pub fn expose(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, M::TYPE);
        let table = self.series.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<&([Box<str>; N], Arc<M>)> = table.values().flatten().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        for (values, series) in all {
            let mut labels = String::new();
            for (name, value) in self.labels.iter().zip(values.iter()) {
                if !labels.is_empty() {
                    labels.push(',');
                }
                let _ = write!(labels, "{name}=\"{}\"", escape(value));
            }
            series.expose(self.name, &labels, out);
        }
    }
}

/// A sample's name and labels: `name{labels}`, or `name` alone without labels.
fn sample(name: &str, labels: &str) -> String {
    if labels.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{labels}}}")
    }
}

/// A label value as the text format writes it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return value.into();
    }
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_expose_their_series_in_the_text_format() {
        let requests: Family<Counter, 2> =
            Family::new("x_requests_total", "Requests.", ["route", "status"]);
        requests.get(["/a", "200"]).add(2);
        requests.get(["/a", "500"]).add(1);
        requests.get(["/a", "200"]).add(1);
        requests.get(["say \"hi\"\n", "200"]).add(1);
        let mut out = String::new();
        requests.expose(&mut out);
        assert_eq!(
            out,
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\n\
             x_requests_total{route=\"/a\",status=\"200\"} 3\n\
             x_requests_total{route=\"/a\",status=\"500\"} 1\n\
             x_requests_total{route=\"say \\\"hi\\\"\\n\",status=\"200\"} 1\n"
        );
    }

    #[test]
    fn histograms_are_cumulative_with_sum_and_count() {
        let latency: Family<Histogram, 1> =
            Family::with_buckets("x_seconds", "Latency.", ["route"], &[0.1, 1.0]);
        let series = latency.get(["/a"]);
        for value in [0.05, 0.1, 0.5, 3.0] {
            series.observe(value);
        }
        assert_eq!(series.count(), 4);
        let mut out = String::new();
        latency.expose(&mut out);
        assert!(
            out.contains("x_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"),
            "{out}"
        );
        assert!(out.contains("x_seconds_sum{route=\"/a\"} 3.65\n"), "{out}");
        assert!(out.contains("x_seconds_count{route=\"/a\"} 4\n"), "{out}");
    }

    #[test]
    fn gauges_go_both_ways_and_series_are_shared() {
        let in_flight: Family<Gauge, 1> = Family::new("x_in_flight", "In flight.", ["api"]);
        in_flight.get(["inference"]).add(1);
        in_flight.get(["inference"]).add(1);
        in_flight.get(["inference"]).add(-1);
        assert_eq!(in_flight.get(["inference"]).get(), 1);
        assert!(Arc::ptr_eq(
            &in_flight.get(["inference"]),
            &in_flight.get(["inference"])
        ));
    }
}
