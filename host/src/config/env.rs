//! `${env...}` substitution on the raw config document, with OGX's exact semantics
//! (`replace_env_vars` in `src/ogx/core/stack.py`), applied before any validation.
//!
//! - `${env.X}`: X's value; an error naming X and the key path when X is unset or empty.
//! - `${env.X:=default}`: X's value if set (present and non-empty), else `default`.
//! - `${env.X:+value}`: `value` if X is set, else `""`.
//! - Variable names are `[A-Z0-9_]+`; a default cannot contain `}`; any other form (`${env.X:-d}`)
//!   does not match and stays literal text. Several substitutions may appear in one string.
//! - Each substituted value gets a leading `~` expanded to `$HOME` (`~user` is left as is).
//! - A string that substitution changed is coerced (see [`super::coerce`]); one it did not change
//!   stays a string, so a literal `port: "8321"` is still a string here.
//! - In any list, a mapping whose `provider_id` resolves to `__disabled__` is dropped before its
//!   other fields are expanded; one whose `vector_store_id`, `model_id` or `shield_id` resolves to
//!   null or `""` is dropped as well. `server.auth.provider_config` becomes null, unexpanded, when
//!   its `type` resolves to null or `""`.
//!
//! The only failure is [`EnvVarError`], whose message is OGX's, word for word.

use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::{Map, Value};

use super::coerce::coerce;

/// Where variables come from: the process environment in production, a table in tests.
/// `None` and `Some("")` both mean "not set".
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A bare `${env.X}` whose variable is unset or empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Environment variable '{var_name}' not set or empty {at}. Use ${{env.{var_name}:=default_value}} \
     to provide a default value, ${{env.{var_name}:+value_if_set}} to make the field conditional, \
     or ensure the environment variable is set.",
    at = if path.is_empty() { String::new() } else { format!("at {path}") }
)]
pub struct EnvVarError {
    /// The variable's name, e.g. `AWS_DEFAULT_REGION`.
    pub var_name: String,
    /// The dotted key path, e.g. `providers.inference[0].config.api_key`.
    pub path: String,
}

/// List-item fields that drop their item when they resolve to null or `""`, in OGX's order.
const RESOURCE_ID_FIELDS: [&str; 3] = ["vector_store_id", "model_id", "shield_id"];

/// The `provider_id` value that removes a list item before expansion.
pub const DISABLED: &str = "__disabled__";

static ENV_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$\{env\.([A-Z0-9_]+)(?::([=+])([^}]*))?\}")
        .expect("the env reference pattern is valid")
});

/// A whole-number setting from the environment variable `name`, looked up with `lookup`:
/// `None` when unset or blank; an error naming the variable, its value and `fix` when it is
/// not a whole number. (The `OGX_*` overrides of limits and tuning, not `${env...}`.)
pub fn whole_number(lookup: Lookup<'_>, name: &str, fix: &str) -> anyhow::Result<Option<u64>> {
    let Some(raw) = lookup(name).filter(|value| !value.trim().is_empty()) else {
        return Ok(None);
    };
    raw.trim()
        .parse()
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{name}={raw:?} is not a whole number; {fix}"))
}

/// Substitutes a whole document.
pub fn substitute(document: &Value, lookup: Lookup<'_>) -> Result<Value, EnvVarError> {
    replace_env_vars(document, "", lookup)
}

/// Substitutes `value`, found at the dotted key `path` (`""` for the document root).
pub fn replace_env_vars(
    value: &Value,
    path: &str,
    lookup: Lookup<'_>,
) -> Result<Value, EnvVarError> {
    match value {
        Value::Object(map) => replace_in_map(map, path, lookup),
        Value::Array(items) => replace_in_list(items, path, lookup),
        Value::String(s) => replace_in_string(s, path, lookup),
        other => Ok(other.clone()),
    }
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn is_null_or_empty(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_str() == Some("")
}

fn replace_in_map(
    map: &Map<String, Value>,
    path: &str,
    lookup: Lookup<'_>,
) -> Result<Value, EnvVarError> {
    if path == "server.auth"
        && let Some(Value::Object(provider_config)) = map.get("provider_config")
        && let Some(auth_type) = provider_config.get("type")
    {
        // An unresolvable `type` falls through to normal expansion, which reports it.
        let type_path = format!("{path}.provider_config.type");
        if let Ok(resolved) = replace_env_vars(auth_type, &type_path, lookup)
            && is_null_or_empty(&resolved)
        {
            let mut out = Map::new();
            for (k, v) in map.iter().filter(|(k, _)| *k != "provider_config") {
                out.insert(
                    k.clone(),
                    replace_env_vars(v, &child_path(path, k), lookup)?,
                );
            }
            out.insert("provider_config".into(), Value::Null);
            return Ok(Value::Object(out));
        }
    }
    let mut out = Map::new();
    for (k, v) in map {
        out.insert(
            k.clone(),
            replace_env_vars(v, &child_path(path, k), lookup)?,
        );
    }
    Ok(Value::Object(out))
}

fn replace_in_list(items: &[Value], path: &str, lookup: Lookup<'_>) -> Result<Value, EnvVarError> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        if let Value::Object(map) = item
            && is_dropped(map, &item_path, lookup)
        {
            continue;
        }
        out.push(replace_env_vars(item, &item_path, lookup)?);
    }
    Ok(Value::Array(out))
}

/// Whether a list item is removed before expansion. A field whose variable is missing does not
/// drop the item: normal expansion then reports the error.
fn is_dropped(map: &Map<String, Value>, item_path: &str, lookup: Lookup<'_>) -> bool {
    if let Some(provider_id) = map.get("provider_id") {
        let resolved = replace_env_vars(provider_id, &format!("{item_path}.provider_id"), lookup);
        if matches!(resolved, Ok(Value::String(ref s)) if s == DISABLED) {
            return true;
        }
    }
    RESOURCE_ID_FIELDS.iter().any(|field| {
        map.get(*field).is_some_and(|raw| {
            replace_env_vars(raw, &format!("{item_path}.{field}"), lookup)
                .is_ok_and(|v| is_null_or_empty(&v))
        })
    })
}

fn replace_in_string(s: &str, path: &str, lookup: Lookup<'_>) -> Result<Value, EnvVarError> {
    let mut error = None;
    let replaced = ENV_REFERENCE.replace_all(s, |caps: &Captures<'_>| {
        if error.is_some() {
            return String::new();
        }
        match resolve_reference(caps, lookup) {
            Ok(v) => v,
            Err(var_name) => {
                error = Some(EnvVarError {
                    var_name,
                    path: path.to_owned(),
                });
                String::new()
            }
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    if replaced == s {
        return Ok(Value::String(s.to_owned()));
    }
    Ok(coerce(&replaced))
}

/// The text one `${env...}` reference stands for, or the name of the missing variable.
fn resolve_reference(caps: &Captures<'_>, lookup: Lookup<'_>) -> Result<String, String> {
    let name = &caps[1];
    let set_value = lookup(name).filter(|v| !v.is_empty());
    let operand = caps.get(3).map_or("", |m| m.as_str());
    let value = match caps.get(2).map(|m| m.as_str()) {
        Some("=") => set_value.unwrap_or_else(|| operand.to_owned()),
        Some(_) => {
            if set_value.is_some() {
                operand.to_owned()
            } else {
                String::new()
            }
        }
        None => set_value.ok_or_else(|| name.to_owned())?,
    };
    Ok(expand_user(&value, lookup))
}

/// `os.path.expanduser` for the current user: a leading `~` followed by `/` or nothing becomes
/// `$HOME` (trailing slashes trimmed). `~other` and an unset `$HOME` leave the value unchanged.
pub fn expand_user(value: &str, lookup: Lookup<'_>) -> String {
    let Some(rest) = value.strip_prefix('~') else {
        return value.to_owned();
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return value.to_owned();
    }
    let Some(home) = lookup("HOME").filter(|h| !h.is_empty()) else {
        return value.to_owned();
    };
    let joined = format!("{}{rest}", home.trim_end_matches('/'));
    if joined.is_empty() {
        "/".to_owned()
    } else {
        joined
    }
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
