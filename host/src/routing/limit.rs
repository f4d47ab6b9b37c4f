//! A provider's concurrency limit (`max_concurrent`): up to that many calls run at once; the
//! next `max_queued` wait for a slot, each at most `queue_timeout`; any more are refused at
//! once. A refusal is a 429 when the queue is full and a 503 when the wait ran out (see
//! `server/errors.rs`), and like an upstream 429/503 it sends a routed model to its next
//! target. The slot is held until the answer is complete: for a stream, until it ends.

use super::RoutingError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One provider's limit.
pub struct Limit {
    slots: Arc<Semaphore>,
    max_concurrent: u32,
    max_queued: u32,
    queue_timeout: Duration,
    queued: AtomicU32,
    refused_full: AtomicU64,
    refused_timeout: AtomicU64,
}

/// Takes a waiter off the queue count however its wait ends (the client may go away).
struct Waiting<'a>(&'a AtomicU32);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl Limit {
    pub fn new(max_concurrent: u32, max_queued: u32, queue_timeout: Duration) -> Self {
        Limit {
            slots: Arc::new(Semaphore::new(max_concurrent as usize)),
            max_concurrent,
            max_queued,
            queue_timeout,
            queued: AtomicU32::new(0),
            refused_full: AtomicU64::new(0),
            refused_timeout: AtomicU64::new(0),
        }
    }

    /// A slot for one call of provider `provider_id`.
    pub async fn acquire(&self, provider_id: &str) -> Result<OwnedSemaphorePermit, RoutingError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.queued.fetch_add(1, Relaxed) >= self.max_queued {
            self.queued.fetch_sub(1, Relaxed);
            self.refused_full.fetch_add(1, Relaxed);
            return Err(RoutingError::QueueFull {
                provider_id: provider_id.to_string(),
                max_concurrent: self.max_concurrent,
                max_queued: self.max_queued,
            });
        }
        let _waiting = Waiting(&self.queued);
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                self.refused_timeout.fetch_add(1, Relaxed);
                Err(RoutingError::QueueTimeout {
                    provider_id: provider_id.to_string(),
                    max_concurrent: self.max_concurrent,
                    waited: self.queue_timeout,
                })
            }
        }
    }

    /// `{max_concurrent, max_queued, in_flight, queued, refused_queue_full, refused_queue_timeout}`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "max_concurrent": self.max_concurrent,
            "max_queued": self.max_queued,
            "in_flight": self.max_concurrent as usize - self.slots.available_permits(),
            "queued": self.queued.load(Relaxed),
            "refused_queue_full": self.refused_full.load(Relaxed),
            "refused_queue_timeout": self.refused_timeout.load(Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn excess_waits_up_to_the_queue_bound_then_is_refused() {
        let limit = Arc::new(Limit::new(2, 1, Duration::from_millis(50)));
        let a = limit.acquire("p").await.unwrap();
        let _b = limit.acquire("p").await.unwrap();
        let waiter = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.acquire("p").await.map(drop) })
        };
        tokio::task::yield_now().await;
        while limit.queued.load(Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        let full = limit.acquire("p").await.unwrap_err();
        assert!(matches!(full, RoutingError::QueueFull { .. }), "{full}");
        drop(a);
        waiter
            .await
            .unwrap()
            .expect("the waiter got the freed slot");
        let _c = limit.acquire("p").await.unwrap();
        let timed_out = limit.acquire("p").await.unwrap_err();
        assert!(matches!(timed_out, RoutingError::QueueTimeout { .. }));
        let status = limit.status();
        assert_eq!(status["in_flight"], 2);
        assert_eq!(status["refused_queue_full"], 1);
        assert_eq!(status["refused_queue_timeout"], 1);
    }
}
