//! Gateway keys: API keys that ogx issues, and the model access, rate limits and budgets it
//! enforces for each, shared by every replica that uses the same `gateway_keys.store`.
//!
//! - [`key`]: a key's record and settings, its secret (shown once, stored as SHA-256).
//! - [`guard`]: the middleware that authenticates a gateway key wherever a client family sends
//!   its key (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key`), sets the request's
//!   [`Principal`](crate::auth::Principal), and on the inference routes checks the model and
//!   the limits before the call and counts the answer's tokens after it.
//! - [`limits`]: the counters behind rate limits and budgets, and how exact they are.
//! - [`usage`]: token usage read from JSON and streamed answers.
//! - [`admin`]: `/v1/admin/keys...`, for the configured admins or the bootstrap admin key.
//!
//! **Threat.** A leaked store must not leak usable keys (only hashes are stored); a caller must
//! not learn another key's secret or id from an error (errors name the limit or budget, never
//! the key); a gateway key must never reach an upstream (they authenticate only to ogx).
//!
//! **Failures.** Every refusal is a [`GatewayKeyError`], answered by
//! [`crate::server::errors`]. A store that cannot be reached refuses the request with 503.

pub mod admin;
pub mod guard;
pub mod key;
pub mod limits;
pub mod usage;

use crate::config::gateway_keys::GatewayKeysConfig;
use crate::storage::gateway_store::{GatewayStore, GatewayStoreError};
use key::{KeyRecord, Period, secret_hash};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a replica trusts a key record it read (a key disabled, rotated or deleted on
/// another replica is refused there within this time; on the replica that changed it, at once).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most records a replica keeps in its cache.
pub const KEY_CACHE_ENTRIES: usize = 10_000;

/// Seconds since the Unix epoch.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Why a request is refused; mapped to HTTP in [`crate::server::errors`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayKeyError {
    /// 401: no key where one is required.
    #[error(
        "A gateway key is required. Send it as `Authorization: Bearer <key>`, `x-api-key: <key>` or `x-goog-api-key: <key>`."
    )]
    Missing,
    /// 401: a gateway key that is unknown (or rotated away).
    #[error("Invalid gateway key. Check the key you send, or ask your gateway's admin for one.")]
    Unknown,
    /// 401: a disabled key.
    #[error("This gateway key is disabled. Ask your gateway's admin to enable it.")]
    Disabled,
    /// 401: an expired key.
    #[error("This gateway key has expired. Ask your gateway's admin for a new one.")]
    Expired,
    /// 403: the key may not call the model.
    #[error("This gateway key may not call model '{0}'. Use a model your key allows.")]
    ModelNotAllowed(String),
    /// 429: over a rate limit.
    #[error("Rate limit reached: {value} {limit} for this key. Try again in {retry_after}s.")]
    RateLimited {
        limit: &'static str,
        value: u64,
        retry_after: u64,
    },
    /// 429 or 402 (`gateway_keys.over_budget_status`): the budget is spent.
    #[error("Budget exceeded: the {} budget of {amount} for this key is spent{}.", period.adjective(), match retry_after { Some(s) => format!("; it resets in {s}s"), None => String::new() })]
    OverBudget {
        period: Period,
        amount: f64,
        status: u16,
        retry_after: Option<u64>,
    },
    /// 401: no admin credentials on an admin route.
    #[error(
        "The admin API needs an admin's credentials: the bootstrap admin key ($OGX_GATEWAY_ADMIN_KEY) or a principal that gateway_keys.admin names."
    )]
    AdminUnauthenticated,
    /// 403: a principal that is not an admin.
    #[error("Principal '{0}' is not a gateway keys admin (see gateway_keys.admin).")]
    NotAdmin(String),
    /// 404 on an admin route.
    #[error("Gateway key '{0}' not found. List the keys with GET /v1/admin/keys.")]
    KeyNotFound(String),
    /// 404: the config has no `gateway_keys` section.
    #[error("Gateway keys are not configured: add a `gateway_keys:` section to the run config.")]
    NotConfigured,
    /// 400: admin input that does not parse.
    #[error("{0}")]
    Invalid(String),
    /// 503: the store failed; the text is for the log only.
    #[error("{0}")]
    Store(String),
}

impl From<GatewayStoreError> for GatewayKeyError {
    fn from(error: GatewayStoreError) -> Self {
        GatewayKeyError::Store(error.to_string())
    }
}

/// The gateway keys of a running server: config, store and the cache of key records.
pub struct GatewayKeys {
    pub config: GatewayKeysConfig,
    pub store: GatewayStore,
    /// SHA-256 of `$OGX_GATEWAY_ADMIN_KEY`, when set.
    bootstrap_admin_hash: Option<String>,
    cache: Mutex<HashMap<String, (Instant, Option<KeyRecord>)>>,
}

impl GatewayKeys {
    pub fn new(
        config: GatewayKeysConfig,
        store: GatewayStore,
        bootstrap_admin_key: Option<String>,
    ) -> Self {
        GatewayKeys {
            config,
            store,
            bootstrap_admin_hash: bootstrap_admin_key.as_deref().map(secret_hash),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `credential` is the bootstrap admin key.
    pub fn is_bootstrap_admin_key(&self, credential: &str) -> bool {
        self.bootstrap_admin_hash
            .as_deref()
            .is_some_and(|hash| hash == secret_hash(credential))
    }

    /// The record of the valid key whose secret is `secret`, or why there is none.
    pub async fn authenticate(&self, secret: &str) -> Result<KeyRecord, GatewayKeyError> {
        let hash = secret_hash(secret);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .filter(|(at, _)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(_, record)| record.clone());
        let record = match cached {
            Some(record) => record,
            None => {
                let record = match self.store.key_by_hash(&hash).await? {
                    Some(text) => Some(parse_record(&text)?),
                    None => None,
                };
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= KEY_CACHE_ENTRIES {
                    cache.clear();
                }
                cache.insert(hash, (Instant::now(), record.clone()));
                record
            }
        };
        let record = record.ok_or(GatewayKeyError::Unknown)?;
        if record.settings.disabled {
            return Err(GatewayKeyError::Disabled);
        }
        if record
            .settings
            .expires_at
            .is_some_and(|at| at <= now_seconds())
        {
            return Err(GatewayKeyError::Expired);
        }
        Ok(record)
    }

    /// Writes the keys the config declares (`gateway_keys.keys`) to the store, each replacing
    /// the stored record of its id; the message of a failure names the entry.
    pub async fn seed_declared_keys(&self) -> Result<(), String> {
        for declared in &self.config.keys {
            let at = |error: GatewayKeyError| format!("{}: {error}", declared.path);
            let settings = key::KeySettings::from_json(&declared.settings).map_err(at)?;
            let stored = self
                .store
                .key(&declared.id)
                .await
                .map_err(|e| at(e.into()))?;
            let record = KeyRecord {
                id: declared.id.clone(),
                secret_hash: declared.secret_sha256.clone(),
                secret_hint: format!("{}...", key::GATEWAY_KEY_PREFIX),
                created_at: now_seconds(),
                settings,
            };
            let text = serde_json::to_string(&record).expect("a key record serializes");
            let written = match stored {
                Some(old) => {
                    let old = parse_record(&old).map_err(at)?;
                    self.store
                        .replace_key(&record.id, &old.secret_hash, &record.secret_hash, &text)
                        .await
                        .map(drop)
                }
                None => {
                    self.store
                        .insert_key(&record.id, &record.secret_hash, &text)
                        .await
                }
            };
            written.map_err(|e| at(e.into()))?;
        }
        Ok(())
    }

    /// Forgets cached records (after an admin changed one on this replica).
    pub fn forget_cached(&self) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// A stored record, parsed; a record ogx cannot read is the store's fault (503).
pub fn parse_record(text: &str) -> Result<KeyRecord, GatewayKeyError> {
    serde_json::from_str(text)
        .map_err(|e| GatewayKeyError::Store(format!("a stored key record does not parse: {e}")))
}
