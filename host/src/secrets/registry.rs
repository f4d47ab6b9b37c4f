//! Where secrets are registered: the process-wide set ([`register`], [`global`]) for what the
//! host holds for its whole life (config secrets, AWS credentials it resolved), and one
//! [`SecretSet`] per request for what only that request carries (a provider-data key, a
//! gateway key, a token a plugin sent upstream for it).
//!
//! A request's set is *live* from the moment the server starts answering until its response
//! body is finished ([`enter`] and the [`LiveGuard`] it returns); while it is live, log lines
//! from anywhere in the process are scrubbed with it too ([`scrub_log`]), and the host imports
//! can add to it by request id ([`add_for_request`]).
//!
//! Cost: registering rebuilds the process-wide automaton only when a pattern is new. A log
//! line or body is scanned only when some set holds a secret.

use super::Scrubber;
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};

/// Most patterns the process-wide set takes; beyond it a new secret is not added (and a
/// warning says so). Far above what a config holds; it bounds tokens registered at run time.
pub const MAX_GLOBAL_PATTERNS: usize = 16 * 1024;

struct Global {
    known: Mutex<BTreeSet<Vec<u8>>>,
    current: RwLock<Arc<Scrubber>>,
}

static GLOBAL: LazyLock<Global> = LazyLock::new(|| Global {
    known: Mutex::new(BTreeSet::new()),
    current: RwLock::new(Arc::new(Scrubber::default())),
});

/// Adds secrets (each in every form [`super::forms`] gives) to the process-wide set.
pub fn register<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) {
    let patterns: Vec<Vec<u8>> = secrets
        .into_iter()
        .flat_map(|s| super::forms(s.as_ref()))
        .map(String::into_bytes)
        .collect();
    if patterns.is_empty() {
        return;
    }
    let mut known = GLOBAL.known.lock().unwrap_or_else(PoisonError::into_inner);
    let before = known.len();
    for pattern in patterns {
        if known.len() >= MAX_GLOBAL_PATTERNS {
            tracing::warn!(
                "the process-wide secret set is full ({MAX_GLOBAL_PATTERNS} patterns); a new secret is not scrubbed"
            );
            break;
        }
        known.insert(pattern);
    }
    if known.len() != before {
        let rebuilt = Arc::new(Scrubber::new(known.iter()));
        *GLOBAL
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner) = rebuilt;
    }
}

/// The process-wide scrubber.
pub fn global() -> Arc<Scrubber> {
    GLOBAL
        .current
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The secrets of one request. Cloning shares the set: any layer that learns a secret of
/// the request (a gateway key, an upstream token) adds it with [`SecretSet::add`], and the
/// response and the log are scrubbed of it.
#[derive(Debug, Clone, Default)]
pub struct SecretSet {
    inner: Arc<SetInner>,
}

#[derive(Debug, Default)]
struct SetInner {
    state: Mutex<SetState>,
}

#[derive(Debug, Default)]
struct SetState {
    patterns: Vec<Vec<u8>>,
    /// Built on demand, dropped when a pattern is added.
    scrubber: Option<Arc<Scrubber>>,
    /// Registrations under [`enter`] still alive.
    live: usize,
}

/// Live sets that hold at least one pattern: when 0, log lines skip the live sets.
static LIVE_WITH_SECRETS: AtomicUsize = AtomicUsize::new(0);

impl SetState {
    fn counts_as_live_secret(&self) -> bool {
        self.live > 0 && !self.patterns.is_empty()
    }
}

impl SecretSet {
    fn state(&self) -> std::sync::MutexGuard<'_, SetState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a secret, in every form [`super::forms`] gives; one shorter than
    /// [`super::MIN_SECRET_BYTES`] is ignored.
    pub fn add(&self, secret: &str) {
        let forms = super::forms(secret);
        if forms.is_empty() {
            return;
        }
        let mut state = self.state();
        let was = state.counts_as_live_secret();
        let mut added = false;
        for form in forms {
            let form = form.into_bytes();
            if !state.patterns.contains(&form) {
                state.patterns.push(form);
                added = true;
            }
        }
        if added {
            state.scrubber = None;
        }
        if !was && state.counts_as_live_secret() {
            LIVE_WITH_SECRETS.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Whether it holds no secret.
    pub fn is_empty(&self) -> bool {
        self.state().patterns.is_empty()
    }

    /// A scrubber for this set's secrets alone.
    pub fn scrubber(&self) -> Arc<Scrubber> {
        let mut state = self.state();
        if let Some(scrubber) = &state.scrubber {
            return scrubber.clone();
        }
        let built = Arc::new(Scrubber::new(state.patterns.iter()));
        state.scrubber = Some(built.clone());
        built
    }

    /// A scrubber for this set's secrets and the process-wide ones.
    pub fn with_global(&self) -> Arc<Scrubber> {
        let global = global();
        let own = self.state().patterns.clone();
        if own.is_empty() {
            return global;
        }
        Arc::new(Scrubber::new(global.patterns().iter().chain(own.iter())))
    }
}

/// Live sets by request id. Two requests with the same client-chosen id share one set (both
/// are scrubbed of both's secrets, which hides more, never less).
static LIVE: LazyLock<Mutex<HashMap<String, SecretSet>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn live() -> std::sync::MutexGuard<'static, HashMap<String, SecretSet>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps a request's set live until dropped.
#[derive(Debug)]
pub struct LiveGuard {
    request_id: String,
    set: SecretSet,
}

/// Makes the set of request `request_id` live and returns it: the one already live under
/// that id, else a new one.
pub fn enter(request_id: &str) -> (SecretSet, LiveGuard) {
    let set = live().entry(request_id.to_owned()).or_default().clone();
    {
        let mut state = set.state();
        let was = state.counts_as_live_secret();
        state.live += 1;
        if !was && state.counts_as_live_secret() {
            LIVE_WITH_SECRETS.fetch_add(1, Ordering::SeqCst);
        }
    }
    let guard = LiveGuard {
        request_id: request_id.to_owned(),
        set: set.clone(),
    };
    (set, guard)
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut map = live();
        let mut state = self.set.state();
        let was = state.counts_as_live_secret();
        state.live = state.live.saturating_sub(1);
        if was && !state.counts_as_live_secret() {
            LIVE_WITH_SECRETS.fetch_sub(1, Ordering::SeqCst);
        }
        if state.live == 0 {
            map.remove(&self.request_id);
        }
    }
}

/// Adds a secret to the live set of request `request_id`; with no live set (a call made
/// outside an API request), to the process-wide set. Does nothing if the process-wide set
/// already knows it.
pub fn add_for_request(request_id: &str, secret: &str) {
    if secret.len() < super::MIN_SECRET_BYTES
        || global()
            .patterns()
            .iter()
            .any(|p| p.as_slice() == secret.as_bytes())
    {
        return;
    }
    let set = live().get(request_id).cloned();
    match set {
        Some(set) => set.add(secret),
        None => register([secret]),
    }
}

/// A log line scrubbed of the process-wide secrets and of every live request's.
pub fn scrub_log(text: &[u8]) -> Cow<'_, [u8]> {
    let mut out = match global().scrub(text) {
        Cow::Borrowed(_) => Cow::Borrowed(text),
        Cow::Owned(owned) => Cow::Owned(owned),
    };
    if LIVE_WITH_SECRETS.load(Ordering::SeqCst) == 0 {
        return out;
    }
    let sets: Vec<SecretSet> = live().values().cloned().collect();
    for set in sets {
        if set.is_empty() {
            continue;
        }
        if let Cow::Owned(scrubbed) = set.scrubber().scrub(&out) {
            out = Cow::Owned(scrubbed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_request_set_scrubs_log_lines_until_it_ends() {
        let (set, guard) = enter("req-registry-test");
        set.add("pd-key-registry-0001");
        let line = b"upstream said: bad key pd-key-registry-0001";
        assert_eq!(scrub_log(line).as_ref(), b"upstream said: bad key ********");
        add_for_request("req-registry-test", "bearer-registry-0002");
        assert_eq!(
            scrub_log(b"bearer-registry-0002").as_ref(),
            super::super::MARKER.as_bytes()
        );
        drop(guard);
        assert_eq!(scrub_log(line).as_ref(), line);
    }

    #[test]
    fn process_wide_secrets_and_request_secrets_combine() {
        register(["config-key-registry-0003"]);
        let (set, _guard) = enter("req-registry-test-2");
        set.add("pd-key-registry-0004");
        let scrubber = set.with_global();
        assert_eq!(
            scrubber.scrub_str("config-key-registry-0003 pd-key-registry-0004"),
            "******** ********"
        );
        assert!(
            global()
                .scrub_str("config-key-registry-0003")
                .contains("****")
        );
    }
}
