//! The threads that serve plain HTTP: one single-threaded tokio runtime per core, all
//! accepting from the one listening socket.
//!
//! **Why.** A request crosses several tasks: its connection, the plugin call, the pooled
//! upstream connection, the response. On tokio's work-stealing runtime each hand-over between
//! them may wake a parked worker on the other core (a futex wake and two context switches)
//! and move the request between cores. On a runtime of its own, a connection's request, its
//! plugin instance and its upstream connection stay on one thread: about 2 context switches
//! per request instead of 4, and 10 % less CPU per request, measured with `perf stat` one
//! request at a time. Each thread also has its own upstream connection pool (see
//! [`current`], used by `imports::http`), so the upstream connection's task runs on the
//! thread that uses it.
//!
//! **How many.** [`count`]: `$OGX_SERVER_THREADS`, else the cores the process may use.
//! [`configure`] reads it once at start-up and names the variable when it is not a positive
//! whole number.
//!
//! **Failures.** A thread whose runtime cannot be built stops start-up with the reason. HTTPS
//! is served on the multi-threaded start-up runtime (see `server::listen`).

use std::cell::Cell;
use std::num::NonZeroUsize;
use std::sync::OnceLock;

/// Overrides the number of serving threads.
pub const SERVER_THREADS_ENV: &str = "OGX_SERVER_THREADS";
/// Most serving threads accepted from [`SERVER_THREADS_ENV`].
pub const MAX_SERVER_THREADS: usize = 256;

static COUNT: OnceLock<usize> = OnceLock::new();

thread_local! {
    /// 1-based index of the serving thread this is; 0 on every other thread.
    static CURRENT: Cell<usize> = const { Cell::new(0) };
}

/// Reads [`SERVER_THREADS_ENV`] (through `env`) and fixes [`count`] for the process.
/// Returns the count. A later call returns the count already fixed.
pub fn configure(env: impl Fn(&str) -> Option<String>) -> anyhow::Result<usize> {
    let fix = "unset it to use one thread per core";
    let wanted = match crate::config::env::whole_number(&env, SERVER_THREADS_ENV, fix)? {
        None => default_count(),
        Some(n) => match usize::try_from(n) {
            Ok(n) if (1..=MAX_SERVER_THREADS).contains(&n) => n,
            _ => anyhow::bail!(
                "{SERVER_THREADS_ENV}=\"{n}\" must be from 1 to {MAX_SERVER_THREADS}; {fix}"
            ),
        },
    };
    Ok(*COUNT.get_or_init(|| wanted))
}

/// How many serving threads there are (or will be): the configured count, else one per core.
pub fn count() -> usize {
    *COUNT.get_or_init(default_count)
}

fn default_count() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// 1-based index of the serving thread the caller runs on, 0 when it is not one (start-up,
/// background tasks, blocking threads). Always at most [`count`].
pub fn current() -> usize {
    CURRENT.with(Cell::get).min(count())
}

/// Marks the calling thread as serving thread `index` (1-based).
pub(crate) fn enter(index: usize) {
    CURRENT.with(|current| current.set(index));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_counted_from_the_environment_or_the_cores() {
        let env = |value: &'static str| {
            move |name: &str| (name == SERVER_THREADS_ENV).then(|| value.to_owned())
        };
        for bad in ["0", "-1", "two", "257"] {
            let error = configure(env(bad)).unwrap_err().to_string();
            assert!(error.contains(SERVER_THREADS_ENV), "{error}");
            assert!(error.contains(&format!("{bad:?}")), "{error}");
        }
        let fixed = configure(env("3")).unwrap();
        assert_eq!(fixed, count());
        // Fixed once per process: a second configuration keeps the first count.
        assert_eq!(configure(env("5")).unwrap(), fixed);
    }

    #[test]
    fn only_serving_threads_have_an_index() {
        assert_eq!(std::thread::spawn(current).join().unwrap(), 0);
        let index = std::thread::spawn(|| {
            enter(1);
            current()
        })
        .join()
        .unwrap();
        assert_eq!(index, 1);
    }
}
