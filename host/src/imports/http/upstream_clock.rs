//! [`UpstreamClock`]: the time one API request spent waiting on its outbound exchanges, so that
//! the server can tell what the gateway itself added (the request's total minus this).
//!
//! The server makes one clock per API request and hands it down with each provider call; the
//! client adds the time from sending a request until its response (buffered) or head
//! (streamed) is in, and a [`super::BodyStream`] adds each wait for the next chunk. Signing
//! and credential resolution happen before the clock starts: they are the gateway's work.
//! Atomics only: exchanges of one request may run on several threads.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Time spent in one API request's outbound exchanges, and how many there were.
#[derive(Debug, Default)]
pub struct UpstreamClock {
    nanos: AtomicU64,
    exchanges: AtomicU32,
}

impl UpstreamClock {
    /// Adds a wait on the upstream (a response, a head or a chunk).
    pub fn add(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts one exchange sent (a retry is another exchange).
    pub fn count_exchange(&self) {
        self.exchanges.fetch_add(1, Ordering::Relaxed);
    }

    /// The time added so far.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::Relaxed))
    }

    /// The exchanges sent so far.
    pub fn exchanges(&self) -> u32 {
        self.exchanges.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_and_exchanges_add_up() {
        let clock = UpstreamClock::default();
        clock.count_exchange();
        clock.add(Duration::from_millis(3));
        clock.count_exchange();
        clock.add(Duration::from_micros(1500));
        assert_eq!(clock.waited(), Duration::from_micros(4500));
        assert_eq!(clock.exchanges(), 2);
    }
}
