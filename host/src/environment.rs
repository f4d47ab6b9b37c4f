//! The one reader of the process environment.
//!
//! Every `OGX_*`, `AWS_*` and other variable the host reads (the config's `${env...}`, limits
//! and tuning overrides, the plugins' declared variables, the AWS credential chain's settings,
//! endpoint overrides, CA bundles) is read through an [`Environment`]: the process environment
//! in production, a fixed set of variables in tests, so that a test never mutates the process
//! environment and a provider set up with an injected environment sees nothing else.
//!
//! A variable set to the empty string counts as unset, as in OGX. A value that is not UTF-8
//! reads as unset. [`Environment`]'s `Debug` shows names only: values may be secrets.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// Where environment variables come from.
#[derive(Clone, Default)]
pub enum Environment {
    /// The process environment (`std::env::var`).
    #[default]
    Process,
    /// Only these variables exist.
    Vars(Arc<BTreeMap<String, String>>),
}

impl Environment {
    /// The process environment.
    pub fn process() -> Self {
        Environment::Process
    }

    /// An environment holding exactly `pairs`.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Environment::Vars(Arc::new(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }

    /// The variable's value when it is set and not empty.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match self {
            Environment::Process => std::env::var(name).ok(),
            Environment::Vars(vars) => vars.get(name).cloned(),
        };
        value.filter(|v| !v.is_empty())
    }

    /// [`Environment::get`] as a closure, for the functions that take a lookup.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<String> + Send + Sync + '_ {
        move |name| self.get(name)
    }

    /// Tells environments apart in cache keys: 0 for the process, a hash of the map otherwise.
    pub fn fingerprint(&self) -> u64 {
        match self {
            Environment::Process => 0,
            Environment::Vars(vars) => {
                let mut hasher = DefaultHasher::new();
                vars.hash(&mut hasher);
                hasher.finish() | 1
            }
        }
    }
}

impl std::fmt::Debug for Environment {
    // Values may be secrets (`AWS_SECRET_ACCESS_KEY`): show names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Environment::Process => f.write_str("Environment::Process"),
            Environment::Vars(vars) => f
                .debug_tuple("Environment::Vars")
                .field(&vars.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_unset_and_debug_shows_names_only() {
        let env = Environment::from_pairs([("SET", "value"), ("EMPTY", ""), ("KEY", "s3cret")]);
        assert_eq!(env.get("SET").as_deref(), Some("value"));
        assert_eq!(env.get("EMPTY"), None);
        assert_eq!(env.get("MISSING"), None);
        let text = format!("{env:?}");
        assert!(text.contains("KEY") && !text.contains("s3cret"), "{text}");
        assert_ne!(env.fingerprint(), Environment::process().fingerprint());
    }

    #[test]
    fn the_process_environment_is_read_as_it_is() {
        // PATH is set in every test environment.
        assert_eq!(
            Environment::process().get("PATH"),
            std::env::var("PATH").ok().filter(|v| !v.is_empty())
        );
    }
}
