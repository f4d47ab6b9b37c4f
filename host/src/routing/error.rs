//! Why routing gave up: the last attempt's failure, or a refusal of its own (a provider's
//! limit, every target taken out). Mapped to HTTP in `server/errors.rs`.

use super::failure;
use crate::runtime::CallError;
use std::time::Duration;

/// Why routing could not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// The last attempt's failure.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The provider's concurrency limit is reached and its queue is full.
    #[error(
        "provider {provider_id} is busy: {max_concurrent} requests are running and {max_queued} waiting (its routing max_concurrent and max_queued); retry later"
    )]
    QueueFull {
        provider_id: String,
        max_concurrent: u32,
        max_queued: u32,
    },
    /// No slot of the provider's concurrency limit freed up in time.
    #[error(
        "provider {provider_id} is busy: no slot of its {max_concurrent} concurrent requests freed up within {waited:?} (its routing queue_timeout); retry later"
    )]
    QueueTimeout {
        provider_id: String,
        max_concurrent: u32,
        waited: Duration,
    },
    /// Every target of a routed model is taken out by its circuit breaker.
    #[error(
        "every target of model {model} is taken out after repeated failures; the next one is probed in {probe_in:?}"
    )]
    NoTarget { model: String, probe_in: Duration },
}

impl RoutingError {
    pub(super) fn retry_after(&self) -> Option<Duration> {
        match self {
            RoutingError::Call(error) => failure::retry_after(error),
            _ => None,
        }
    }

    pub(super) fn is_refusal(&self) -> bool {
        !matches!(self, RoutingError::Call(_))
    }
}
