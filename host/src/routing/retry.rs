//! When to try again: exponential backoff with jitter, and a retry budget so that retries
//! cannot multiply an outage.
//!
//! Backoff: retry `n` (from 0) waits `min(max_backoff, backoff * 2^n)`, of which a random half
//! is taken off ("equal jitter", so clients that failed together do not retry together). An
//! upstream's `Retry-After` up to `max_retry_after` is waited out instead when it is longer; a
//! longer one is not retried (the client gets the 429 and the `Retry-After`).
//!
//! Budget: retries in the current window (10 s; a new window starts with the first retry after
//! the previous one ended, its request count restarting) may be at most `retry_budget` times
//! the requests of the window, and at least [`MIN_RETRIES_PER_WINDOW`] are always allowed so a
//! quiet provider still retries.
//! Counting a request is one relaxed atomic add; nothing else runs until a call fails.

use super::config::ProviderPolicy;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The window the budget's shares are counted over.
pub const BUDGET_WINDOW: Duration = Duration::from_secs(10);
/// Retries always allowed per window, whatever the share.
pub const MIN_RETRIES_PER_WINDOW: u64 = 10;

/// The wait before retry `retry` (0 for the first), without an upstream hint.
pub fn backoff(policy: &ProviderPolicy, retry: u32) -> Duration {
    let full = policy
        .backoff
        .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX))
        .min(policy.max_backoff);
    let half = full / 2;
    half + half.mul_f64(fastrand::f64())
}

/// The wait before the next retry, or `None` when the upstream asked for longer than
/// `max_retry_after` (then the failure is answered as it is).
pub fn wait_before(
    policy: &ProviderPolicy,
    retry: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let backoff = backoff(policy, retry);
    match retry_after {
        Some(asked) if asked > policy.max_retry_after => None,
        Some(asked) => Some(asked.max(backoff)),
        None => Some(backoff),
    }
}

/// The share of recent requests that may be retries (see the module docs).
pub struct RetryBudget {
    ratio: f64,
    origin: Instant,
    /// Start of the current window, in milliseconds since `origin`.
    window_start: AtomicU64,
    requests: AtomicU64,
    retries: AtomicU64,
    /// Retries refused for want of budget, since start.
    exhausted: AtomicU64,
}

impl RetryBudget {
    pub fn new(ratio: f64) -> Self {
        RetryBudget {
            ratio,
            origin: Instant::now(),
            window_start: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            exhausted: AtomicU64::new(0),
        }
    }

    /// Counts one request.
    pub fn record_request(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn try_retry(&self) -> bool {
        let now = self.origin.elapsed().as_millis() as u64;
        let start = self.window_start.load(Relaxed);
        if now.saturating_sub(start) >= BUDGET_WINDOW.as_millis() as u64
            && self
                .window_start
                .compare_exchange(start, now, Relaxed, Relaxed)
                .is_ok()
        {
            // The request being retried belongs to the new window.
            self.requests.store(1, Relaxed);
            self.retries.store(0, Relaxed);
        }
        let requests = self.requests.load(Relaxed);
        let allowed = MIN_RETRIES_PER_WINDOW.max((requests as f64 * self.ratio) as u64);
        if self.retries.fetch_add(1, Relaxed) < allowed {
            true
        } else {
            self.retries.fetch_sub(1, Relaxed);
            self.exhausted.fetch_add(1, Relaxed);
            false
        }
    }

    /// Retries refused for want of budget, since start.
    pub fn exhausted(&self) -> u64 {
        self.exhausted.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::config::RoutingConfig;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let policy = RoutingConfig::default().policy("p");
        for (retry, full) in [(0, 100), (1, 200), (2, 400), (5, 2000), (30, 2000)] {
            for _ in 0..20 {
                let wait = backoff(&policy, retry).as_millis() as u64;
                assert!(
                    (full / 2..=full).contains(&wait),
                    "retry {retry}: {wait} ms"
                );
            }
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_its_cap() {
        let policy = RoutingConfig::default().policy("p");
        let wait = wait_before(&policy, 0, Some(Duration::from_secs(2))).unwrap();
        assert_eq!(wait, Duration::from_secs(2));
        assert_eq!(
            wait_before(&policy, 0, Some(Duration::from_secs(60))),
            None,
            "longer than max_retry_after: answered, not waited"
        );
        assert!(wait_before(&policy, 0, None).unwrap() <= policy.backoff);
    }

    #[test]
    fn the_budget_is_a_share_of_requests_with_a_floor() {
        let budget = RetryBudget::new(0.2);
        for _ in 0..100 {
            budget.record_request();
        }
        let granted = (0..50).filter(|_| budget.try_retry()).count();
        assert_eq!(granted, 20, "a fifth of 100 requests");
        for _ in 0..100 {
            budget.record_request();
        }
        let more = (0..50).filter(|_| budget.try_retry()).count();
        assert_eq!(granted + more, 40, "a fifth of 200 requests");
        assert_eq!(budget.exhausted(), 60);

        let quiet = RetryBudget::new(0.2);
        quiet.record_request();
        let granted = (0..50).filter(|_| quiet.try_retry()).count() as u64;
        assert_eq!(granted, MIN_RETRIES_PER_WINDOW, "the floor");
    }
}
