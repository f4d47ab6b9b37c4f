//! Circuit breaking (outlier ejection) for one target: after `failures` consecutive retriable
//! failures the target is taken out ("open") for `cooldown`; then one request probes it
//! ("half-open"): an answer closes it, a failure opens it for another `cooldown`. A probe that
//! never reports (its client went away) is replaced by another after `cooldown`.
//!
//! An answer that is the client's fault (a 400, say) counts as an answer: the target works.
//! All state is atomics; a closed breaker costs one load per request.

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// One target's breaker.
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    origin: Instant,
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    /// When the breaker last opened or a probe started, in ms since `origin`.
    since: AtomicU64,
    /// Times it opened, since start.
    opened: AtomicU64,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold,
            cooldown,
            origin: Instant::now(),
            state: AtomicU8::new(CLOSED),
            consecutive_failures: AtomicU32::new(0),
            since: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    fn cooled(&self) -> bool {
        self.now().saturating_sub(self.since.load(Relaxed)) >= self.cooldown.as_millis() as u64
    }

    /// Whether the target may be tried now, without taking the probe: for choosing.
    pub fn is_available(&self) -> bool {
        match self.state.load(Relaxed) {
            CLOSED => true,
            _ => self.cooled(),
        }
    }

    /// Claims the right to send a request: always when closed; when open or half-open and
    /// cooled down, only for the one caller that becomes the probe.
    pub fn admit(&self) -> bool {
        let state = self.state.load(Relaxed);
        if state == CLOSED {
            return true;
        }
        let since = self.since.load(Relaxed);
        if self.now().saturating_sub(since) < self.cooldown.as_millis() as u64 {
            return false;
        }
        // Exactly one caller moves `since` forward and becomes the probe.
        let claimed = self
            .since
            .compare_exchange(since, self.now(), Relaxed, Relaxed)
            .is_ok();
        if claimed {
            self.state.store(HALF_OPEN, Relaxed);
        }
        claimed
    }

    /// The target answered.
    pub fn success(&self) {
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.consecutive_failures.store(0, Relaxed);
        }
        if self.state.load(Relaxed) != CLOSED {
            self.state.store(CLOSED, Relaxed);
        }
    }

    /// The target failed with a retriable failure.
    pub fn failure(&self) {
        let failures = self.consecutive_failures.fetch_add(1, Relaxed) + 1;
        let state = self.state.load(Relaxed);
        if state == HALF_OPEN || (state == CLOSED && failures >= self.threshold) {
            self.since.store(self.now(), Relaxed);
            self.state.store(OPEN, Relaxed);
            self.opened.fetch_add(1, Relaxed);
        }
    }

    /// `closed`, `open` or `half_open`.
    pub fn state(&self) -> &'static str {
        match self.state.load(Relaxed) {
            CLOSED => "closed",
            OPEN if self.cooled() => "half_open",
            OPEN => "open",
            _ => "half_open",
        }
    }

    /// How long until a probe may go, when the target is out.
    pub fn probe_in(&self) -> Duration {
        let elapsed = Duration::from_millis(self.now().saturating_sub(self.since.load(Relaxed)));
        self.cooldown.saturating_sub(elapsed)
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Relaxed)
    }

    pub fn times_opened(&self) -> u64 {
        self.opened.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_one_probe_closes_it() {
        let breaker = Breaker::new(3, Duration::from_millis(40));
        breaker.failure();
        breaker.failure();
        assert_eq!(breaker.state(), "closed");
        assert!(breaker.admit());
        breaker.failure();
        assert_eq!(breaker.state(), "open");
        assert!(!breaker.is_available() && !breaker.admit());
        std::thread::sleep(Duration::from_millis(50));
        assert!(breaker.is_available());
        assert!(breaker.admit(), "the probe");
        assert!(!breaker.admit(), "only one probe at a time");
        breaker.success();
        assert_eq!(breaker.state(), "closed");
        assert_eq!(breaker.times_opened(), 1);
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let breaker = Breaker::new(1, Duration::from_millis(20));
        breaker.failure();
        std::thread::sleep(Duration::from_millis(30));
        assert!(breaker.admit());
        breaker.failure();
        assert_eq!(breaker.state(), "open");
        assert!(!breaker.admit());
        assert_eq!(breaker.times_opened(), 2);
    }
}
