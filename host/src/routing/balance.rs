//! Choosing among a model's targets: ordered fallback, weighted, or least latency (peak EWMA).
//!
//! Each target keeps its outstanding requests and a peak-EWMA of its latency (time to the
//! answer, or to a stream's first event): a slower observation replaces the average at once,
//! a faster one is blended in, and the average decays toward zero while the target is not
//! observed (time constant [`DECAY`]), so a target that was slow is tried again after a while.
//! `least_latency` picks the lowest `latency * (outstanding + 1)`; a target never measured
//! scores 0 and is tried first. Only targets not yet tried for this request and whose breaker
//! lets them through are candidates.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How fast an unobserved latency decays, and how much history a new observation weighs
/// against.
pub const DECAY: Duration = Duration::from_secs(10);

/// A target's load: outstanding requests and latency.
pub struct Load {
    origin: Instant,
    outstanding: AtomicU32,
    /// The peak-EWMA latency in microseconds, as `f64` bits.
    ewma_us: AtomicU64,
    /// When it was last updated, in µs since `origin`.
    updated_us: AtomicU64,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            origin: Instant::now(),
            outstanding: AtomicU32::new(0),
            ewma_us: AtomicU64::new(0f64.to_bits()),
            updated_us: AtomicU64::new(0),
        }
    }
}

impl Load {
    pub fn start(&self) {
        self.outstanding.fetch_add(1, Relaxed);
    }

    pub fn finish(&self) {
        self.outstanding.fetch_sub(1, Relaxed);
    }

    pub fn outstanding(&self) -> u32 {
        self.outstanding.load(Relaxed)
    }

    fn now_us(&self) -> u64 {
        self.origin.elapsed().as_micros() as u64
    }

    /// The latency estimate now, decayed since its last update.
    pub fn latency_us(&self) -> f64 {
        let ewma = f64::from_bits(self.ewma_us.load(Relaxed));
        let idle = self.now_us().saturating_sub(self.updated_us.load(Relaxed)) as f64;
        ewma * (-idle / DECAY.as_micros() as f64).exp()
    }

    /// Takes in one observed latency.
    pub fn observe(&self, latency: Duration) {
        let sample = latency.as_micros() as f64;
        let now = self.now_us();
        let idle = now.saturating_sub(self.updated_us.swap(now, Relaxed)) as f64;
        let old = f64::from_bits(self.ewma_us.load(Relaxed));
        let next = if sample > old {
            sample
        } else {
            let weight = (-idle / DECAY.as_micros() as f64).exp();
            old * weight + sample * (1.0 - weight)
        };
        self.ewma_us.store(next.to_bits(), Relaxed);
    }

    fn score(&self) -> f64 {
        self.latency_us() * f64::from(self.outstanding() + 1)
    }
}

/// What the chooser knows of one target.
pub trait Candidate {
    fn available(&self) -> bool;
    fn weight(&self) -> u32;
    fn load(&self) -> &Load;
}

/// The next target for a request, by strategy, among those not in `tried` (a bit per index).
/// `first` is true for the request's first pick (weighted draws then; after a failure, the
/// remaining targets go in order).
pub fn choose<C: Candidate>(
    strategy: super::config::Strategy,
    targets: &[C],
    tried: u32,
    first: bool,
) -> Option<usize> {
    use super::config::Strategy;
    let mut candidates = targets
        .iter()
        .enumerate()
        .filter(|(i, t)| tried & (1 << i) == 0 && t.available());
    match strategy {
        Strategy::Weighted if first => {
            let total: u64 = targets
                .iter()
                .filter(|t| t.available())
                .map(|t| u64::from(t.weight()))
                .sum();
            if total == 0 {
                return candidates.next().map(|(i, _)| i);
            }
            let mut draw = fastrand::u64(0..total);
            for (i, t) in candidates {
                let w = u64::from(t.weight());
                if draw < w {
                    return Some(i);
                }
                draw -= w;
            }
            None
        }
        Strategy::LeastLatency => candidates
            .min_by(|(_, a), (_, b)| a.load().score().total_cmp(&b.load().score()))
            .map(|(i, _)| i),
        _ => candidates.next().map(|(i, _)| i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::config::Strategy;

    struct T {
        up: bool,
        weight: u32,
        load: Load,
    }
    impl Candidate for T {
        fn available(&self) -> bool {
            self.up
        }
        fn weight(&self) -> u32 {
            self.weight
        }
        fn load(&self) -> &Load {
            &self.load
        }
    }
    fn t(up: bool, weight: u32) -> T {
        T {
            up,
            weight,
            load: Load::default(),
        }
    }

    #[test]
    fn fallback_takes_the_first_untried_available_target() {
        let targets = [t(true, 1), t(false, 1), t(true, 1)];
        assert_eq!(choose(Strategy::Fallback, &targets, 0, true), Some(0));
        assert_eq!(choose(Strategy::Fallback, &targets, 0b001, false), Some(2));
        assert_eq!(choose(Strategy::Fallback, &targets, 0b101, false), None);
    }

    #[test]
    fn weighted_draws_follow_the_weights() {
        let targets = [t(true, 3), t(true, 1), t(true, 0)];
        let mut counts = [0u32; 3];
        for _ in 0..4000 {
            counts[choose(Strategy::Weighted, &targets, 0, true).unwrap()] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!((2700..3300).contains(&counts[0]), "{counts:?}");
        assert_eq!(choose(Strategy::Weighted, &targets, 0b001, false), Some(1));
    }

    #[test]
    fn least_latency_prefers_the_fast_and_the_idle() {
        let targets = [t(true, 1), t(true, 1)];
        targets[0].load.observe(Duration::from_millis(300));
        targets[1].load.observe(Duration::from_millis(10));
        assert_eq!(choose(Strategy::LeastLatency, &targets, 0, true), Some(1));
        for _ in 0..40 {
            targets[1].load.start();
        }
        assert_eq!(
            choose(Strategy::LeastLatency, &targets, 0, true),
            Some(0),
            "40 outstanding at 10 ms weigh more than one idle at 300 ms"
        );
        // A faster sample is blended in, a slower one replaces the average.
        targets[0].load.observe(Duration::from_millis(500));
        assert!(targets[0].load.latency_us() > 450_000.0);
    }
}
