//! `server.quota`: request quotas per caller per day, as OGX 0.7 had them (OGX 1.5.0 dropped
//! them; ogx keeps them).
//!
//! Each request but the public probes (`/v1/health`, `/v1/version`), after authentication,
//! counts against its caller: an authenticated principal
//! gets `authenticated_max_requests` per period, anyone else (by client address)
//! `anonymous_max_requests`. Over the limit is 429 "Quota exceeded"; a counter store that
//! fails is 500 "Quota service error". Counters live in the configured kv backend under the
//! namespace given, keyed by a SHA-256 of the principal (a `local_api_key` principal is the
//! key itself, which never lands in the store) and the period's number; a new period's first
//! request removes the previous period's counter.
//!
//! **Exactness.** A count is a read then a write (as in 0.7): on one replica requests are
//! serialised by [`QuotaGuard`]'s lock, so the limit is exact; replicas sharing a PostgreSQL kv
//! backend can each let through a request the other was counting at the same instant.

use crate::auth::Principal;
use crate::auth::middleware::PUBLIC_ROUTES;
use crate::config::schema::QuotaConfig;
use crate::server::errors::ApiError;
use crate::storage::kv::KvNamespace;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The length of the only period OGX 0.7 has, `day`.
pub const DAY_SECONDS: u64 = 24 * 60 * 60;

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaError {
    /// 429 "Quota exceeded".
    Exceeded,
    /// 500 "Quota service error" (the store failed; the reason is logged).
    Unavailable,
}

/// The configured quota with its counter store.
pub struct QuotaGuard {
    counters: KvNamespace,
    anonymous_max: u64,
    authenticated_max: u64,
    period_seconds: u64,
    /// Serialises read-then-write of the counters within this process.
    counting: Mutex<()>,
}

impl QuotaGuard {
    /// `counters` is the namespace `server.quota.kvstore` names.
    pub fn new(config: &QuotaConfig, counters: KvNamespace) -> Self {
        Self {
            counters,
            anonymous_max: config.anonymous_max_requests,
            authenticated_max: config.authenticated_max_requests,
            period_seconds: DAY_SECONDS,
            counting: Mutex::new(()),
        }
    }

    /// Counts one request of `caller` at `now` (seconds since the epoch).
    pub async fn count(&self, caller: &Caller, now: u64) -> Result<(), QuotaError> {
        let (who, limit) = match caller {
            Caller::Principal(id) => (format!("p:{id}"), self.authenticated_max),
            Caller::Address(addr) => (format!("a:{addr}"), self.anonymous_max),
        };
        let digest = hex::encode(&Sha256::digest(who.as_bytes())[..16]);
        let period = now / self.period_seconds;
        let key = format!("quota:{digest}:{period}");
        let failed = |error: crate::storage::kv::KvError| {
            tracing::error!("the quota counters could not be read or written: {error}");
            QuotaError::Unavailable
        };
        let _counting = self.counting.lock().await;
        let previous = match self.counters.get(&key).await.map_err(failed)? {
            Some(bytes) => String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0),
            None => 0,
        };
        let count = previous + 1;
        self.counters
            .set(&key, count.to_string().into_bytes())
            .await
            .map_err(failed)?;
        if count == 1 && period > 0 {
            let stale = format!("quota:{digest}:{}", period - 1);
            self.counters.delete(&stale).await.map_err(failed)?;
        }
        if count > limit {
            tracing::warn!("quota exceeded ({limit} requests per period)");
            return Err(QuotaError::Exceeded);
        }
        Ok(())
    }
}

/// Whom a request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Principal(String),
    Address(String),
}

/// The middleware: counts each request once it is authenticated.
pub async fn enforce(
    State(guard): State<Arc<QuotaGuard>>,
    request: Request,
    next: Next,
) -> Response {
    let probe = PUBLIC_ROUTES
        .iter()
        .any(|(m, p)| request.method().as_str() == *m && request.uri().path() == *p);
    if probe {
        return next.run(request).await;
    }
    let caller = match request.extensions().get::<Principal>() {
        Some(principal) => Caller::Principal(principal.id.clone()),
        None => Caller::Address(
            request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "anonymous".to_owned(), |c| c.0.ip().to_string()),
        ),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match guard.count(&caller, now).await {
        Ok(()) => next.run(request).await,
        Err(error) => ApiError::Quota(error).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::KvStoreRef;
    use crate::storage::kv::KvStore;

    #[tokio::test]
    async fn each_caller_has_its_own_count_per_period() {
        let kv = Arc::new(KvStore::open_host(None).unwrap());
        let config = QuotaConfig {
            kvstore: KvStoreRef {
                backend: "kv_default".into(),
                namespace: "quota".into(),
            },
            anonymous_max_requests: 1,
            authenticated_max_requests: 2,
            period: "day".into(),
        };
        let guard = QuotaGuard::new(&config, kv.namespace("quota"));
        let alice = Caller::Principal("alice".into());
        let somebody = Caller::Address("127.0.0.1".into());
        let day = 20_000 * DAY_SECONDS;
        assert_eq!(guard.count(&alice, day).await, Ok(()));
        assert_eq!(guard.count(&alice, day + 5).await, Ok(()));
        assert_eq!(
            guard.count(&alice, day + 9).await,
            Err(QuotaError::Exceeded)
        );
        assert_eq!(guard.count(&somebody, day).await, Ok(()));
        assert_eq!(guard.count(&somebody, day).await, Err(QuotaError::Exceeded));
        // The next day starts over, and the old counter is gone.
        assert_eq!(guard.count(&alice, day + DAY_SECONDS).await, Ok(()));
        let keys = kv.namespace("quota").list_keys("quota:").await.unwrap();
        assert!(keys.iter().all(|k| !k.contains("alice")), "{keys:?}");
        assert_eq!(keys.len(), 2, "{keys:?}");
    }
}
