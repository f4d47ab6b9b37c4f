//! Which failed calls are worth another attempt, and how long the upstream asked to wait.
//!
//! The kind of a failure comes from the plugin's typed error (the WIT `provider-error`), which
//! the SDK builds from the host's HTTP import: a refused or reset connection and an unreadable
//! answer are `bad-gateway` (502), an outbound timeout is `timeout` (504), an upstream error
//! status is `upstream` with that status and the upstream's headers (`retry-after` among
//! them), a throttle is `rate-limited` with its wait. Around the plugin, the runtime adds its
//! own call timeout and "no instance slot" ([`CallError::Unavailable`]).
//!
//! Retried (and failed over): 429, 502, 503, 504 and 529 (Anthropic's "overloaded"), however
//! they arrive; connection failures; timeouts; no instance slot. Never retried: the client's
//! mistakes (400, 401, 403, 404, 413...), a plugin crash, an unsupported operation.

use crate::runtime::{CallError, ProviderError};
use std::time::Duration;

/// Upstream statuses that mean "try again, maybe elsewhere".
const RETRIED_STATUSES: &[u16] = &[429, 502, 503, 504, 529];

/// Whether another attempt (here or at another target) may succeed where `error` failed.
pub fn is_retriable(error: &CallError) -> bool {
    match error {
        CallError::Provider(provider) => match provider {
            ProviderError::RateLimited(_)
            | ProviderError::BadGateway(_)
            | ProviderError::Timeout(_) => true,
            ProviderError::Upstream { status, .. } => RETRIED_STATUSES.contains(status),
            ProviderError::InvalidRequest(_)
            | ProviderError::Unauthenticated(_)
            | ProviderError::PermissionDenied(_)
            | ProviderError::NotFound(_)
            | ProviderError::Unsupported(_)
            | ProviderError::Internal(_) => false,
        },
        CallError::Timeout(_) | CallError::Unavailable(_) => true,
        CallError::Trap { .. } => false,
    }
}

/// How long the provider asked to wait: a plugin's rate limit with a known wait, or an
/// upstream 429/503 whose `retry-after` header gives whole seconds (an HTTP date is ignored).
pub fn retry_after(error: &CallError) -> Option<Duration> {
    match error {
        CallError::Provider(ProviderError::RateLimited(limit)) => limit.retry_after,
        CallError::Provider(ProviderError::Upstream {
            status: 429 | 503,
            headers,
            ..
        }) => headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, value)| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RateLimit;

    fn upstream(status: u16, headers: &[(&str, &str)]) -> CallError {
        ProviderError::Upstream {
            status,
            message: "m".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
        .into()
    }

    #[test]
    fn transient_failures_are_retried_and_the_clients_mistakes_are_not() {
        let cases: Vec<(CallError, bool)> = vec![
            (upstream(429, &[]), true),
            (upstream(502, &[]), true),
            (upstream(503, &[]), true),
            (upstream(504, &[]), true),
            (upstream(529, &[]), true),
            (upstream(500, &[]), false),
            (upstream(400, &[]), false),
            (upstream(404, &[]), false),
            (ProviderError::RateLimited("slow".into()).into(), true),
            (
                ProviderError::BadGateway("could not connect".into()).into(),
                true,
            ),
            (ProviderError::Timeout("late".into()).into(), true),
            (ProviderError::InvalidRequest("bad".into()).into(), false),
            (ProviderError::Unauthenticated("who".into()).into(), false),
            (ProviderError::Unsupported("no".into()).into(), false),
            (CallError::Timeout(Duration::from_secs(1)), true),
            (CallError::Unavailable("busy".into()), true),
            (
                CallError::Trap {
                    plugin: "p".into(),
                    detail: "d".into(),
                },
                false,
            ),
        ];
        for (error, retried) in cases {
            assert_eq!(is_retriable(&error), retried, "{error:?}");
        }
    }

    #[test]
    fn the_wait_comes_from_the_rate_limit_or_the_retry_after_header() {
        let limited = CallError::from(ProviderError::RateLimited(RateLimit {
            message: "slow".into(),
            retry_after: Some(Duration::from_millis(1500)),
        }));
        assert_eq!(retry_after(&limited), Some(Duration::from_millis(1500)));
        assert_eq!(
            retry_after(&upstream(429, &[("Retry-After", " 3 ")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&upstream(503, &[("retry-after", "1")])),
            Some(Duration::from_secs(1))
        );
        assert_eq!(retry_after(&upstream(502, &[("retry-after", "1")])), None);
        assert_eq!(
            retry_after(&upstream(
                429,
                &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]
            )),
            None
        );
    }
}
