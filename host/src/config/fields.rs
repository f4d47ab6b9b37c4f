//! Reading typed fields out of one mapping of the substituted document, the way pydantic's lax
//! mode would, and reporting what is wrong with the dotted key path and the fix.
//!
//! Leniency, on purpose: a string field also accepts a number or a bool (written as text), because
//! substitution turns `${env.PASSWORD}` = `1234` into a number and OGX would then refuse to start
//! over a type detail. Integers accept numeric strings (`"8321"`) and whole floats; bools accept
//! pydantic's words (`yes`/`no`, `on`/`off`, `1`/`0`, `t`/`f`, `y`/`n`).

use serde_json::{Map, Value};

use super::coerce::{PythonInt, python_int};

/// One validation failure, before the file path is attached (see `ConfigError::Invalid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted key path, e.g. `registered_resources.models[0].provider_id`.
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// What to change.
    pub fix: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// The JSON type name used in messages.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A mapping at a known key path.
#[derive(Clone, Copy)]
pub struct Section<'a> {
    pub map: &'a Map<String, Value>,
    pub path: &'a str,
}

impl<'a> Section<'a> {
    /// `value` at `path` as a mapping; null or absent is an empty section.
    pub fn of(value: Option<&'a Value>, path: &'a str) -> Result<Option<Self>, Invalid> {
        match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Self { map, path })),
            Some(other) => Err(Invalid::new(
                path,
                format!(
                    "expected a mapping of keys to values, found {}",
                    type_name(other)
                ),
                "Write it as indented `key: value` lines.",
            )),
        }
    }

    pub fn key(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw value, with null treated as absent.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, Invalid> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(Invalid::new(
                self.key(key),
                format!("expected a string, found {}", type_name(other)),
                "Write a single value, e.g. `key: some-text`.",
            )),
        }
    }

    pub fn required_string(&self, key: &str, fix: &str) -> Result<String, Invalid> {
        self.string(key)?
            .ok_or_else(|| Invalid::new(self.key(key), "is required but missing", fix))
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, Invalid> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let parsed = match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
            Value::String(s) => match python_int(s) {
                PythonInt::Fits(n) => n.as_i64(),
                _ => None,
            },
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| {
            Invalid::new(
                self.key(key),
                format!("expected an integer, found {v}"),
                "Write a whole number, e.g. `8321`.",
            )
        })
    }

    /// An integer within `min..=max`.
    pub fn int_in(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>, Invalid> {
        match self.int(key)? {
            Some(n) if n < min || n > max => Err(Invalid::new(
                self.key(key),
                format!("{n} is out of range"),
                format!("Use a value from {min} to {max}."),
            )),
            other => Ok(other),
        }
    }

    /// An integer within `min..=i64::MAX`, as a `u64` (a count, a size, a duration).
    pub fn u64_at_least(&self, key: &str, min: u32) -> Result<Option<u64>, Invalid> {
        Ok(self.int_in(key, min.into(), i64::MAX)?.map(|n| n as u64))
    }

    /// An integer within `min..=u32::MAX`, as a `u32`.
    pub fn u32_at_least(&self, key: &str, min: u32) -> Result<Option<u32>, Invalid> {
        Ok(self
            .int_in(key, min.into(), u32::MAX.into())?
            .map(|n| n as u32))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, Invalid> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let parsed = match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::String(s) => match s.to_lowercase().as_str() {
                "true" | "yes" | "on" | "1" | "t" | "y" => Some(true),
                "false" | "no" | "off" | "0" | "f" | "n" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| {
            Invalid::new(
                self.key(key),
                format!("expected true or false, found {v}"),
                "Write `true` or `false`.",
            )
        })
    }

    pub fn string_list(&self, key: &str) -> Result<Vec<String>, Invalid> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(Invalid::new(
                        format!("{}[{i}]", self.key(key)),
                        format!("expected a string, found {}", type_name(other)),
                        "Each list entry must be a single text value.",
                    )),
                })
                .collect(),
            Some(other) => Err(Invalid::new(
                self.key(key),
                format!("expected a list, found {}", type_name(other)),
                "Write it as a YAML list (`- item` lines).",
            )),
        }
    }

    /// Appends `unknown key '<path>' (ignored)` for each key not in `known`.
    pub fn warn_unknown(&self, known: &[&str], warnings: &mut Vec<String>) {
        warnings.extend(
            self.unknown_keys(known)
                .into_iter()
                .map(|k| format!("unknown key '{k}' (ignored)")),
        );
    }

    /// The keys of this mapping that are not in `known`, as dotted paths.
    pub fn unknown_keys(&self, known: &[&str]) -> Vec<String> {
        self.map
            .keys()
            .filter(|k| !known.contains(&k.as_str()))
            .map(|k| self.key(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lax_reading_of_scalars() {
        let doc =
            json!({"p": "8321", "f": 2.0, "b": "yes", "n": 0, "s": 5, "bad": "x", "nul": null});
        let s = Section::of(Some(&doc), "server").unwrap().unwrap();
        assert_eq!(s.int("p").unwrap(), Some(8321));
        assert_eq!(s.int("f").unwrap(), Some(2));
        assert_eq!(s.bool("b").unwrap(), Some(true));
        assert_eq!(s.bool("n").unwrap(), Some(false));
        assert_eq!(s.string("s").unwrap(), Some("5".into()));
        assert_eq!(s.string("nul").unwrap(), None);
        assert_eq!(s.int("bad").unwrap_err().key, "server.bad");
        assert_eq!(
            s.int_in("p", 1024, 8000).unwrap_err().problem,
            "8321 is out of range"
        );
        assert_eq!(
            s.unknown_keys(&["p", "f", "b", "n", "s"]),
            vec!["server.bad", "server.nul"]
        );
    }

    #[test]
    fn unsigned_readers_are_int_in_with_the_type_s_maximum() {
        let doc =
            json!({"big": 4_294_967_296_i64, "neg": -1, "zero": "0", "max": 4_294_967_295_i64});
        let s = Section::of(Some(&doc), "limits").unwrap().unwrap();
        assert_eq!(s.u32_at_least("max", 1).unwrap(), Some(u32::MAX));
        assert_eq!(s.u32_at_least("zero", 0).unwrap(), Some(0));
        assert_eq!(s.u32_at_least("absent", 1).unwrap(), None);
        assert_eq!(
            s.u32_at_least("big", 1).unwrap_err(),
            s.int_in("big", 1, u32::MAX.into()).unwrap_err()
        );
        assert_eq!(
            s.u32_at_least("big", 1).unwrap_err().fix,
            "Use a value from 1 to 4294967295."
        );
        assert_eq!(s.u64_at_least("big", 1).unwrap(), Some(4_294_967_296));
        assert_eq!(s.u64_at_least("zero", 0).unwrap(), Some(0));
        assert_eq!(
            s.u64_at_least("zero", 1).unwrap_err(),
            s.int_in("zero", 1, i64::MAX).unwrap_err()
        );
        assert_eq!(
            s.u64_at_least("neg", 0).unwrap_err().fix,
            "Use a value from 0 to 9223372036854775807."
        );
    }
}
