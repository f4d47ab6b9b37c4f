//! Turning YAML text into the JSON document the rest of `config` works on.
//!
//! YAML allows what JSON does not; each case is handled rather than refused:
//! - a non-text mapping key (`8080: x`, `true: y`, `null: z`) becomes its text (`"8080"`,
//!   `"true"`, `"null"`); only a list or mapping used as a key is an error;
//! - a tagged value (`!foo bar`) is read as the plain value;
//! - a non-finite float (`.inf`, `.nan`) becomes the text `inf`, `-inf` or `nan`.
//!
//! Known differences from OGX's PyYAML (YAML 1.1): `yes`/`no`/`on`/`off` stay text here (typed
//! bool fields still accept them), `010` is ten (PyYAML: octal eight), and a repeated key is an
//! error (PyYAML keeps the last one).

use serde_json::{Map, Number, Value};
use serde_yaml_ng::Value as Yaml;

/// YAML that could not be read; `line`/`column` are 1-based when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlProblem {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

/// Parses one YAML document into JSON.
pub fn parse_yaml(text: &str) -> Result<Value, YamlProblem> {
    let yaml: Yaml = serde_yaml_ng::from_str(text).map_err(|e| {
        let location = e.location();
        YamlProblem {
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message: e.to_string(),
        }
    })?;
    to_json(yaml, "")
}

fn to_json(yaml: Yaml, path: &str) -> Result<Value, YamlProblem> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => number(&n),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| to_json(item, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(mapping) => {
            let mut out = Map::new();
            for (k, v) in mapping {
                let key = key_text(k, path)?;
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                out.insert(key, to_json(v, &child)?);
            }
            Value::Object(out)
        }
        Yaml::Tagged(tagged) => to_json(tagged.value, path)?,
    })
}

fn number(n: &serde_yaml_ng::Number) -> Value {
    if let Some(i) = n.as_i64() {
        return Value::Number(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Value::Number(u.into());
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    match Number::from_f64(f) {
        Some(num) => Value::Number(num),
        None if f.is_nan() => Value::String("nan".into()),
        None if f > 0.0 => Value::String("inf".into()),
        None => Value::String("-inf".into()),
    }
}

fn key_text(key: Yaml, path: &str) -> Result<String, YamlProblem> {
    match key {
        Yaml::String(s) => Ok(s),
        Yaml::Null => Ok("null".into()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Number(n) => Ok(match number(&n) {
            Value::String(s) => s,
            other => other.to_string(),
        }),
        Yaml::Tagged(tagged) => key_text(tagged.value, path),
        Yaml::Sequence(_) | Yaml::Mapping(_) => Err(YamlProblem {
            line: None,
            column: None,
            message: format!(
                "a list or mapping is used as a key under '{}'; keys must be plain text",
                if path.is_empty() { "(top level)" } else { path }
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_oddities_become_json() {
        let doc = parse_yaml(
            "8080: a\ntrue: b\n~: c\nf: .inf\ng: -.inf\nh: .nan\nt: !custom x\nn: 1.5\n",
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({"8080": "a", "true": "b", "null": "c", "f": "inf", "g": "-inf", "h": "nan", "t": "x", "n": 1.5})
        );
    }

    #[test]
    fn complex_keys_are_refused_with_their_place() {
        let err = parse_yaml("a:\n  ? [1, 2]\n  : x\n").unwrap_err();
        assert!(err.message.contains("under 'a'"), "{}", err.message);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse_yaml("a: 1\nb: [1, 2\n").unwrap_err();
        assert!(err.line.is_some(), "{err:?}");
    }
}
