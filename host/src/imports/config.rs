//! `config`: the host environment as far as a plugin may see it.
//!
//! **Provides.** [`EnvView::get`], the value of an environment variable the plugin declared
//! in `describe` (its `env-vars`, e.g. `AWS_DEFAULT_REGION`, `AWS_BEDROCK_BEARER_TOKEN`).
//!
//! **Refuses.** Every name the plugin did not declare: the rest of the host's environment
//! (other providers' keys, the operator's cloud credentials) stays invisible. An undeclared
//! name, an unset variable and an empty one all read as `None`, so a plugin cannot probe
//! which variables exist. Names are matched exactly (environment variables are
//! case-sensitive on Unix).
//!
//! **Limits and failures.** None of its own: values are read when asked (so a variable
//! changed by the operator is seen by the next instance), through the host's one
//! environment reader ([`Environment`]) the runtime was given: the process environment in
//! production, where a value that is not UTF-8 reads as `None`.

use crate::environment::Environment;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

/// The environment variables one plugin may read.
#[derive(Clone)]
pub struct EnvView {
    declared: Arc<BTreeSet<String>>,
    env: Environment,
}

impl EnvView {
    /// A view of the variables named in `declared`, read from `env`.
    pub fn new<I, S>(declared: I, env: Environment) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EnvView {
            declared: Arc::new(declared.into_iter().map(Into::into).collect()),
            env,
        }
    }

    /// A view of the variables named in `declared`, read from the process environment.
    pub fn from_process_env<I, S>(declared: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(declared, Environment::process())
    }

    /// The value of `name` if the plugin declared it and it is set and non-empty.
    pub fn get(&self, name: &str) -> Option<String> {
        if !self.declared.contains(name) {
            return None;
        }
        self.env.get(name)
    }

    /// The declared names, in order.
    pub fn declared(&self) -> impl Iterator<Item = &str> {
        self.declared.iter().map(String::as_str)
    }
}

impl fmt::Debug for EnvView {
    // Names only: the values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvView")
            .field("declared", &self.declared)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(declared: &[&str]) -> EnvView {
        let env = Environment::from_pairs([
            ("AWS_DEFAULT_REGION", "us-west-2"),
            ("AWS_BEDROCK_BEARER_TOKEN", "secret-token"),
            ("EMPTY", ""),
            ("SPACE", " "),
            ("OPENAI_API_KEY", "sk-other-provider"),
        ]);
        EnvView::new(declared.iter().copied(), env)
    }

    #[test]
    fn only_declared_set_non_empty_variables_are_visible() {
        let env = view(&[
            "AWS_DEFAULT_REGION",
            "AWS_BEDROCK_BEARER_TOKEN",
            "EMPTY",
            "SPACE",
            "UNSET",
        ]);
        let cases = [
            ("AWS_DEFAULT_REGION", Some("us-west-2")),
            ("AWS_BEDROCK_BEARER_TOKEN", Some("secret-token")),
            ("EMPTY", None),
            ("SPACE", Some(" ")),
            ("UNSET", None),
            ("OPENAI_API_KEY", None),
            ("aws_default_region", None),
            ("", None),
        ];
        for (name, expected) in cases {
            assert_eq!(env.get(name).as_deref(), expected, "{name}");
        }
    }

    #[test]
    fn nothing_declared_means_nothing_visible() {
        assert_eq!(view(&[]).get("AWS_DEFAULT_REGION"), None);
    }

    #[test]
    fn debug_shows_names_not_values() {
        let text = format!("{:?}", view(&["AWS_BEDROCK_BEARER_TOKEN"]));
        assert!(text.contains("AWS_BEDROCK_BEARER_TOKEN"), "{text}");
        assert!(!text.contains("secret-token"), "{text}");
        let env = view(&["B", "A"]);
        assert_eq!(env.declared().collect::<Vec<_>>(), ["A", "B"]);
    }

    #[test]
    fn process_environment() {
        // PATH is set in every test environment; it is visible only when declared.
        let declared = EnvView::from_process_env(["PATH"]);
        assert_eq!(
            declared.get("PATH"),
            std::env::var("PATH").ok().filter(|v| !v.is_empty())
        );
        assert_eq!(
            EnvView::from_process_env(Vec::<String>::new()).get("PATH"),
            None
        );
    }
}
