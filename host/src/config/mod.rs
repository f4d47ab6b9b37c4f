//! The OGX run config (version 2): reading the YAML, `${env...}` substitution with OGX's exact
//! semantics, typed views of the parts ogx acts on, warnings for keys it ignores, and redaction
//! of secrets for printing.
//!
//! [`load`] fails with a [`ConfigError`] whose message names the file, the dotted key path, what
//! is wrong and how to fix it. Keys it does not know never fail: they become `warnings`.
//!
//! Pipeline: [`document`] (YAML → JSON) → [`env`] (substitution, coercion by [`coerce`]) →
//! [`validate`] (typed [`RunConfig`], with [`storage`] and [`server`]) → `LoadedConfig`.

pub mod backends;
pub mod coerce;
pub mod distributions;
pub mod document;
pub mod env;
pub mod fields;
pub mod gateway_keys;
pub mod messages;
pub mod metrics;
pub mod network;
pub mod plugin_policy;
pub mod postgres_uri;
pub mod provider_types;
pub mod redact;
pub mod responses;
pub mod schema;
pub mod server;
pub mod storage;
pub mod traces;
pub mod validate;

pub use redact::{redact, redact_with, to_yaml_string};
pub use schema::{
    Backend, CorsConfig, ModelEntry, PluginLimits, PluginsConfig, ProviderEntry, QuotaConfig,
    RunConfig, ServerConfig, SqlStoreRef, StorageConfig, StoreRef, StoresConfig,
};

use std::path::{Path, PathBuf};

use serde_json::Value;

use env::{EnvVarError, Lookup};
use fields::Invalid;

/// A config read from disk, substituted and validated.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// Where it was read from.
    pub path: PathBuf,
    /// The typed view.
    pub config: RunConfig,
    /// The whole document after substitution, with disabled providers removed (for printing
    /// redacted and for `/v1/providers`).
    pub document: Value,
    /// One line per key ogx ignores, naming its path.
    pub warnings: Vec<String>,
}

/// Why a config could not be loaded. `Display` names the file, the key path and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config file '{}' does not exist. Check the path, or pass the run config to use, e.g. `ogx run ./config.yaml`.",
        path.display()
    )]
    NotFound { path: PathBuf },
    #[error("cannot read config file '{}': {source}. Check that it is a readable file.", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "config file '{}' is not valid YAML{}: {message}. Fix the syntax there: indent with spaces, write `key: value`.",
        path.display(),
        position(*line, *column)
    )]
    Yaml {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("config file '{}': {source}", path.display())]
    Env { path: PathBuf, source: EnvVarError },
    #[error("config file '{}', key '{key}': {}{fix}", path.display(), sentence(problem))]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
        fix: String,
    },
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    }
}

/// `problem` ending in a full stop and a space, ready for the fix.
fn sentence(problem: &str) -> String {
    if problem.ends_with('.') {
        format!("{problem} ")
    } else {
        format!("{problem}. ")
    }
}

impl ConfigError {
    /// A key of the file at `path` that cannot be used.
    pub fn invalid(path: &Path, invalid: Invalid) -> Self {
        ConfigError::Invalid {
            path: path.to_owned(),
            key: invalid.key,
            problem: invalid.problem,
            fix: invalid.fix,
        }
    }
}

/// Reads, substitutes and validates the config at `path`, taking variables from `lookup`
/// (the process environment in production).
pub fn load(
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound {
            path: path.to_owned(),
        },
        _ => ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        },
    })?;
    parse(&text, path, lookup)
}

/// [`load`] for text already read; `path` is used in messages and to resolve `plugins:` paths.
pub fn parse(text: &str, path: &Path, lookup: Lookup<'_>) -> Result<LoadedConfig, ConfigError> {
    let raw = document::parse_yaml(text).map_err(|p| ConfigError::Yaml {
        path: path.to_owned(),
        line: p.line,
        column: p.column,
        message: p.message,
    })?;
    let mut document = env::substitute(&raw, lookup).map_err(|source| ConfigError::Env {
        path: path.to_owned(),
        source,
    })?;
    let config_dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let (config, warnings) = validate::validate(&document, config_dir, lookup)
        .map_err(|i| ConfigError::invalid(path, i))?;
    remove_disabled_providers(&mut document);
    Ok(LoadedConfig {
        path: path.to_owned(),
        config,
        document,
        warnings,
    })
}

/// Drops provider entries whose `provider_id` is null or empty (`__disabled__` ones are already
/// gone after substitution), as OGX does when it prints the config.
fn remove_disabled_providers(document: &mut Value) {
    let Some(Value::Object(providers)) = document.get_mut("providers") else {
        return;
    };
    for list in providers.values_mut() {
        if let Value::Array(items) = list {
            items.retain(|item| match item.get("provider_id") {
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Null) | None => false,
                Some(_) => true,
            });
        }
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod load_tests;
