//! The `x-ogx-provider-data` header: per-request provider settings such as a caller's own API
//! key, as a JSON object.
//!
//! As in OGX, a header that is not valid JSON, or not a JSON object, is ignored with a warning
//! and the request goes on without provider data. The warning never repeats the header's value:
//! it usually carries credentials.
//!
//! **The generic key.** As OGX 1.5.0 (`_normalize_provider_data_key`), a client may send
//! `<provider_id>_api_key` (the provider id matched case-insensitively) instead of the type's own
//! key: before a provider is called, [`for_provider`] copies its value onto the type's key
//! (e.g. `vllm_api_token` for a `remote::vllm` provider named `gpu`), so every plugin sees the
//! key it already reads and the WIT does not change. The type's key comes from OGX 1.5.0's table
//! ([`crate::config::provider_types::provider_data_key`]); for a type OGX does not define, the
//! object is passed as sent, and the plugin may read `<provider_id>_api_key` itself (it knows
//! its provider id from `init`).

use crate::config::provider_types;
use axum::http::HeaderMap;

/// The header's name (HTTP header names are case-insensitive).
pub const PROVIDER_DATA_HEADER: &str = "x-ogx-provider-data";

/// The header's JSON object as text, or `None` when absent or unusable.
pub fn from_headers(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(PROVIDER_DATA_HEADER)?;
    let Ok(text) = value.to_str() else {
        tracing::warn!("ignoring the {PROVIDER_DATA_HEADER} header: it is not valid UTF-8 text");
        return None;
    };
    parse(text)
}

/// Checks that `text` is a JSON object; otherwise warns (without the value) and gives `None`.
pub fn parse(text: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(_)) => Some(text.to_string()),
        Ok(other) => {
            let kind = match other {
                serde_json::Value::Null => "null",
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::String(_) => "a string",
                _ => "a list",
            };
            tracing::warn!(
                "ignoring the {PROVIDER_DATA_HEADER} header: it must be a JSON object, got {kind}"
            );
            None
        }
        Err(error) => {
            tracing::warn!(
                "ignoring the {PROVIDER_DATA_HEADER} header: it is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            );
            None
        }
    }
}

/// The provider data as `provider_id` (of `provider_type`) sees it: the generic
/// `<provider_id>_api_key` copied onto the type's own key (see the module documentation).
pub fn for_provider(
    data: Option<String>,
    provider_id: &str,
    provider_type: &str,
) -> Option<String> {
    let data = data?;
    let Some(type_key) = provider_types::provider_data_key(provider_type) else {
        return Some(data);
    };
    let generic = format!("{provider_id}_api_key").to_lowercase();
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(&data) else {
        return Some(data);
    };
    let Some(client_key) = object.keys().find(|k| k.to_lowercase() == generic).cloned() else {
        return Some(data);
    };
    if client_key == type_key {
        return Some(data);
    }
    let value = object[&client_key].clone();
    object.insert(type_key.to_string(), value);
    Some(serde_json::Value::Object(object).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generic_key_reaches_the_type_key() {
        let cases: &[(&str, &str, &str, serde_json::Value)] = &[
            // The provider id, any case, onto the type's key; the client's key stays.
            (
                r#"{"GPU_api_key": "k"}"#,
                "gpu",
                "remote::vllm",
                serde_json::json!({"GPU_api_key": "k", "vllm_api_token": "k"}),
            ),
            // The generic key wins over the type's key, as in OGX.
            (
                r#"{"openai_api_key": "old", "main_API_KEY": "new"}"#,
                "main",
                "remote::openai",
                serde_json::json!({"openai_api_key": "new", "main_API_KEY": "new"}),
            ),
            // A provider named like its type: nothing to copy.
            (
                r#"{"openai_api_key": "k"}"#,
                "openai",
                "remote::openai",
                serde_json::json!({"openai_api_key": "k"}),
            ),
            // Another provider's key, or a type without a key field: unchanged.
            (
                r#"{"other_api_key": "k"}"#,
                "gpu",
                "remote::vllm",
                serde_json::json!({"other_api_key": "k"}),
            ),
            (
                r#"{"local_api_key": "k"}"#,
                "local",
                "remote::ollama",
                serde_json::json!({"local_api_key": "k"}),
            ),
        ];
        for (data, id, provider_type, expected) in cases {
            let out = for_provider(Some(data.to_string()), id, provider_type).unwrap();
            let out: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(&out, expected, "{data} for {id}");
        }
        assert_eq!(for_provider(None, "gpu", "remote::vllm"), None);
    }

    #[test]
    fn only_json_objects_are_kept() {
        let cases = [
            (r#"{"openai_api_key": "k"}"#, true),
            (r#"{}"#, true),
            (r#"{"__test_id": "t", "x": 1}"#, true),
            ("null", false),
            ("[1, 2]", false),
            (r#""text""#, false),
            ("42", false),
            ("not json", false),
            (r#"{"unterminated": "#, false),
            ("", false),
        ];
        for (text, kept) in cases {
            assert_eq!(parse(text).is_some(), kept, "{text}");
        }
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        headers.insert("X-OGX-Provider-Data", r#"{"k": "v"}"#.parse().unwrap());
        assert_eq!(from_headers(&headers).as_deref(), Some(r#"{"k": "v"}"#));
        assert_eq!(from_headers(&HeaderMap::new()), None);
    }
}
