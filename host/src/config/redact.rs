//! Hiding secrets before a config is printed at start-up or returned by `/v1/providers`.
//!
//! OGX's rule (`redact_sensitive_fields`, `src/ogx/core/utils/config.py`), case-insensitive on
//! the key: a key containing `chunk_size_tokens`, `max_tokens`, `default_chunk_overlap_tokens`
//! or `max_document_tokens` is kept (and looked into); otherwise a key containing `api_key`,
//! `api_token`, `password`, `secret` or `token` has its whole value replaced by `********`, and
//! so has `connection_string` (OGX 1.5.0 types it `SecretStr`).
//! Callers add the exact key names their plugins declare secret ([`redact_with`]); those are
//! hidden even where the substring rule would not hide them.
//!
//! One deliberate difference: a null value stays null (nothing to hide, and it shows the secret
//! is unset); OGX prints `********` for it too. Redaction cannot fail.

use serde_json::{Map, Value};

/// What a hidden value is replaced with.
pub const REDACTED: &str = "********";

/// OGX's list, plus `connection_string` (a `SecretStr` in OGX 1.5.0: it holds the password).
const SENSITIVE: &[&str] = &[
    "api_key",
    "api_token",
    "password",
    "secret",
    "token",
    "connection_string",
];
const SAFE_TOKEN_FIELDS: &[&str] = &[
    "chunk_size_tokens",
    "max_tokens",
    "default_chunk_overlap_tokens",
    "max_document_tokens",
];

/// `value` with secrets hidden by OGX's rule.
pub fn redact(value: &Value) -> Value {
    redact_with(value, &[] as &[&str])
}

/// `value` with secrets hidden by OGX's rule and every key named in `extra_secret_keys`
/// (compared case-insensitively).
pub fn redact_with<S: AsRef<str>>(value: &Value, extra_secret_keys: &[S]) -> Value {
    let extra: Vec<String> = extra_secret_keys
        .iter()
        .map(|k| k.as_ref().to_lowercase())
        .collect();
    redact_value(value, &extra)
}

fn redact_value(value: &Value, extra: &[String]) -> Value {
    match value {
        Value::Object(map) => Value::Object(redact_map(map, extra)),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact_value(v, extra)).collect()),
        other => other.clone(),
    }
}

fn redact_map(map: &Map<String, Value>, extra: &[String]) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let hidden = !v.is_null() && is_secret_key(k, extra);
            (
                k.clone(),
                if hidden {
                    Value::String(REDACTED.into())
                } else {
                    redact_value(v, extra)
                },
            )
        })
        .collect()
}

/// Whether a key's value is hidden.
pub fn is_secret_key(key: &str, extra: &[String]) -> bool {
    let key = key.to_lowercase();
    if extra.contains(&key) {
        return true;
    }
    if SAFE_TOKEN_FIELDS.iter().any(|safe| key.contains(safe)) {
        return false;
    }
    SENSITIVE.iter().any(|pattern| key.contains(pattern))
}

/// The YAML text of a (redacted) document, for the start-up print.
pub fn to_yaml_string(value: &Value) -> String {
    serde_yaml_ng::to_string(value)
        .unwrap_or_else(|e| format!("# could not render the config as YAML: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_table() {
        let rows: &[(&str, Value, Value)] = &[
            ("api_key", json!("sk-1"), json!(REDACTED)),
            ("OPENAI_API_KEY", json!("sk-1"), json!(REDACTED)),
            ("api_token", json!("t"), json!(REDACTED)),
            ("password", json!(1234), json!(REDACTED)),
            ("client_secret", json!("s"), json!(REDACTED)),
            ("aws_secret_access_key", json!("s"), json!(REDACTED)),
            ("aws_session_token", json!("s"), json!(REDACTED)),
            ("aws_bedrock_bearer_token", json!("s"), json!(REDACTED)),
            (
                "token",
                json!({"nested": "whole value hidden"}),
                json!(REDACTED),
            ),
            ("max_tokens", json!(100), json!(100)),
            ("default_max_tokens", json!(100), json!(100)),
            ("max_tokens_in_context", json!(4000), json!(4000)),
            ("chunk_size_tokens", json!(512), json!(512)),
            ("max_document_tokens", json!(512), json!(512)),
            ("tokenizer", json!("x"), json!(REDACTED)),
            ("api_key", Value::Null, Value::Null),
            ("region_name", json!("us-west-2"), json!("us-west-2")),
            ("access_key_id", json!("AKIA"), json!("AKIA")),
        ];
        for (key, input, expected) in rows {
            let doc = json!({ *key: input });
            assert_eq!(redact(&doc), json!({ *key: expected }), "key {key}");
        }
    }

    #[test]
    fn redaction_recurses_and_takes_extra_names() {
        let doc = json!({"providers": {"inference": [{"config": {"api_key": "k", "access_key_id": "AKIA", "url": "u"}}]}});
        assert_eq!(
            redact_with(&doc, &["Access_Key_Id"]),
            json!({"providers": {"inference": [{"config": {"api_key": REDACTED, "access_key_id": REDACTED, "url": "u"}}]}})
        );
    }

    #[test]
    fn yaml_rendering() {
        assert_eq!(to_yaml_string(&json!({"a": [1, "b"]})), "a:\n- 1\n- b\n");
    }
}
