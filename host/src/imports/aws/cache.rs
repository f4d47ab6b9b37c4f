//! The process-wide credential cache: one entry per distinct credential source, refreshed
//! before expiry like botocore's `RefreshableCredentials`.
//!
//! - Credentials with more than the **advisory** window left are served as they are.
//! - Inside the advisory window one caller refreshes; others keep using the current
//!   credentials meanwhile, and if the refresh fails they stay in use (with a warning).
//! - Inside the **mandatory** window (or expired, or never loaded) callers wait for the one
//!   refresh under way and share its outcome; if it fails they get its error. Credentials that
//!   have expired are never returned.
//! - Credentials without expiry (static keys) are never refreshed.
//!
//! One refresh runs at a time per entry (a `tokio::sync::Mutex` around the loader, with a
//! generation counter so that callers who waited take the result of the refresh they waited
//! for instead of starting another), bounded by [`CREDENTIAL_LOAD_TIMEOUT`]. Entries are never
//! evicted: there is one per (provider, region, source) in use, a handful per process.
//!
//! Logs at info when credentials are obtained: the source kind, the first four characters of
//! the access key id and the expiry, nothing else. Credentials obtained are registered with
//! [`crate::secrets`], so that no output of the process can repeat them.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;

use super::credentials::{Loader, ResolvedSource, SourceKey, key_id_prefix};
use crate::environment::Environment;
use crate::imports::http::HttpError;

/// Refresh this long before expiry, serving the current credentials meanwhile (botocore's
/// `_DEFAULT_ADVISORY_REFRESH_TIMEOUT`).
pub const DEFAULT_ADVISORY_REFRESH: Duration = Duration::from_secs(15 * 60);
/// Refresh this long before expiry, waiting for the new credentials (botocore's
/// `_DEFAULT_MANDATORY_REFRESH_TIMEOUT`).
pub const DEFAULT_MANDATORY_REFRESH: Duration = Duration::from_secs(10 * 60);
/// Overrides [`DEFAULT_ADVISORY_REFRESH`], in whole seconds.
pub const ADVISORY_REFRESH_ENV: &str = "OGX_AWS_REFRESH_ADVISORY_SECS";
/// Overrides [`DEFAULT_MANDATORY_REFRESH`], in whole seconds.
pub const MANDATORY_REFRESH_ENV: &str = "OGX_AWS_REFRESH_MANDATORY_SECS";
/// Time allowed to obtain credentials once (default chain or STS, retries included).
pub const CREDENTIAL_LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long before expiry credentials are refreshed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshWindows {
    pub advisory: Duration,
    pub mandatory: Duration,
}

impl Default for RefreshWindows {
    fn default() -> Self {
        RefreshWindows {
            advisory: DEFAULT_ADVISORY_REFRESH,
            mandatory: DEFAULT_MANDATORY_REFRESH,
        }
    }
}

impl RefreshWindows {
    /// The defaults, overridden by [`ADVISORY_REFRESH_ENV`] / [`MANDATORY_REFRESH_ENV`]; a
    /// value that is not a whole number of seconds is ignored with a warning. The advisory
    /// window is never shorter than the mandatory one.
    pub fn from_env(env: &Environment) -> Self {
        let read = |var: &str, default: Duration| match env.get(var) {
            None => default,
            Some(value) => match value.trim().parse::<u64>() {
                Ok(secs) => Duration::from_secs(secs),
                Err(_) => {
                    tracing::warn!(var, "not a whole number of seconds; using the default");
                    default
                }
            },
        };
        let mandatory = read(MANDATORY_REFRESH_ENV, DEFAULT_MANDATORY_REFRESH);
        let advisory = read(ADVISORY_REFRESH_ENV, DEFAULT_ADVISORY_REFRESH).max(mandatory);
        RefreshWindows {
            advisory,
            mandatory,
        }
    }
}

/// Credentials per credential source, shared by all providers of the process.
#[derive(Debug)]
pub struct CredentialCache {
    windows: RefreshWindows,
    slots: Mutex<HashMap<SourceKey, Arc<Slot>>>,
    sts_calls: Arc<AtomicU64>,
}

impl CredentialCache {
    pub fn new(windows: RefreshWindows) -> Self {
        CredentialCache {
            windows,
            slots: Mutex::new(HashMap::new()),
            sts_calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The process-wide cache, its windows read from the process environment at first use.
    pub fn global() -> Arc<CredentialCache> {
        static GLOBAL: OnceLock<Arc<CredentialCache>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                Arc::new(CredentialCache::new(RefreshWindows::from_env(
                    &Environment::Process,
                )))
            })
            .clone()
    }

    pub fn windows(&self) -> RefreshWindows {
        self.windows
    }

    /// How many STS calls (`AssumeRole*`) this cache has made.
    pub fn sts_calls(&self) -> u64 {
        self.sts_calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) async fn credentials(
        &self,
        source: ResolvedSource,
    ) -> Result<Credentials, HttpError> {
        let key = source.key();
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots
                .entry(key)
                .or_insert_with(|| Arc::new(Slot::new(source)))
                .clone()
        };
        slot.get(self).await
    }
}

/// Where credentials are, relative to the refresh windows.
#[derive(Debug, PartialEq, Eq)]
enum Freshness {
    Fresh,
    Advisory,
    Mandatory,
}

fn freshness(creds: &Credentials, now: SystemTime, windows: RefreshWindows) -> Freshness {
    let Some(expiry) = creds.expiry() else {
        return Freshness::Fresh;
    };
    let left = expiry.duration_since(now).unwrap_or(Duration::ZERO);
    if left > windows.advisory {
        Freshness::Fresh
    } else if left > windows.mandatory {
        Freshness::Advisory
    } else {
        Freshness::Mandatory
    }
}

fn expired(creds: &Credentials, now: SystemTime) -> bool {
    creds.expiry().is_some_and(|expiry| expiry <= now)
}

#[derive(Debug, Default)]
struct SlotState {
    current: Option<Credentials>,
    /// Incremented when a refresh ends, successful or not.
    generation: u64,
    /// The error of the last refresh, if it failed.
    last_error: Option<HttpError>,
}

/// One credential source's credentials.
struct Slot {
    source: ResolvedSource,
    /// The STS session name: configured, or random hex chosen once for this entry.
    session_name: String,
    state: Mutex<SlotState>,
    /// Held while refreshing: the single flight. Built at the first refresh.
    loader: tokio::sync::Mutex<Option<Loader>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("kind", &self.source.kind())
            .finish_non_exhaustive()
    }
}

impl Slot {
    fn new(source: ResolvedSource) -> Self {
        let session_name = source
            .role
            .as_ref()
            .and_then(|role| role.session_name.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let mut state = SlotState::default();
        if let Some(creds) = source.direct_static() {
            tracing::info!(
                source = "static",
                access_key = key_id_prefix(creds),
                "using AWS credentials from the provider config"
            );
            state.current = Some(creds.clone());
        }
        Slot {
            source,
            session_name,
            state: Mutex::new(state),
            loader: tokio::sync::Mutex::new(None),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn get(&self, cache: &CredentialCache) -> Result<Credentials, HttpError> {
        let now = SystemTime::now();
        let (generation, usable) = {
            let state = self.state();
            match &state.current {
                Some(creds) => match freshness(creds, now, cache.windows) {
                    Freshness::Fresh => return Ok(creds.clone()),
                    Freshness::Advisory => (state.generation, Some(creds.clone())),
                    Freshness::Mandatory => (state.generation, None),
                },
                None => (state.generation, None),
            }
        };
        let loader = match usable {
            Some(current) => match self.loader.try_lock() {
                Ok(loader) => loader,
                // A refresh is under way and the current credentials are good until the
                // mandatory window: no need to wait.
                Err(_) => return Ok(current),
            },
            None => self.loader.lock().await,
        };
        self.refresh(loader, generation, cache).await
    }

    async fn refresh(
        &self,
        mut loader: tokio::sync::MutexGuard<'_, Option<Loader>>,
        seen_generation: u64,
        cache: &CredentialCache,
    ) -> Result<Credentials, HttpError> {
        {
            let state = self.state();
            if state.generation != seen_generation {
                // A refresh ended while this caller waited for the lock: share its outcome.
                return self.outcome(&state, SystemTime::now(), cache.windows);
            }
        }
        let load = async {
            if loader.is_none() {
                let built = Loader::build(&self.source, &self.session_name, &cache.sts_calls);
                *loader = Some(built.await?);
            }
            match loader.as_ref() {
                Some(loader) => loader.load().await,
                None => Err(HttpError::Credentials("no credential loader".into())),
            }
        };
        let result = tokio::time::timeout(CREDENTIAL_LOAD_TIMEOUT, load)
            .await
            .unwrap_or_else(|_| {
                Err(HttpError::Credentials(
                    "timed out resolving AWS credentials".into(),
                ))
            });
        let now = SystemTime::now();
        crate::telemetry::metrics::credential_refresh(
            "aws",
            result.as_ref().is_ok_and(|creds| !expired(creds, now)),
        );
        let mut state = self.state();
        state.generation += 1;
        match result {
            Ok(creds) if !expired(&creds, now) => {
                // Whatever the source, the host now holds these: scrub them from all output.
                crate::secrets::register(
                    [
                        Some(creds.access_key_id()),
                        Some(creds.secret_access_key()),
                        creds.session_token(),
                    ]
                    .into_iter()
                    .flatten(),
                );
                tracing::info!(
                    source = self.source.kind(),
                    access_key = key_id_prefix(&creds),
                    expires_in_secs = creds
                        .expiry()
                        .and_then(|e| e.duration_since(now).ok())
                        .map(|d| d.as_secs()),
                    refreshed = state.current.is_some(),
                    "obtained AWS credentials"
                );
                state.current = Some(creds);
                state.last_error = None;
            }
            Ok(_) => {
                state.last_error = Some(HttpError::Credentials(
                    "the credentials obtained had already expired".into(),
                ));
            }
            Err(error) => {
                let keeps_current = state
                    .current
                    .as_ref()
                    .is_some_and(|c| freshness(c, now, cache.windows) == Freshness::Advisory);
                if keeps_current {
                    tracing::warn!(
                        source = self.source.kind(),
                        %error,
                        "refreshing AWS credentials failed; the current ones stay in use until \
                         the mandatory refresh window"
                    );
                }
                state.last_error = Some(error);
            }
        }
        self.outcome(&state, now, cache.windows)
    }

    /// What the refresh that ended last means for a caller at `now`.
    fn outcome(
        &self,
        state: &SlotState,
        now: SystemTime,
        windows: RefreshWindows,
    ) -> Result<Credentials, HttpError> {
        match (&state.last_error, &state.current) {
            (None, Some(creds)) if !expired(creds, now) => Ok(creds.clone()),
            (Some(_), Some(creds)) if freshness(creds, now, windows) != Freshness::Mandatory => {
                Ok(creds.clone())
            }
            (Some(error), _) => Err(error.clone()),
            (None, _) => Err(HttpError::Credentials(
                "the AWS credentials have expired".into(),
            )),
        }
    }
}
