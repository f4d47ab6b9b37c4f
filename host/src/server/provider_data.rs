//! The `x-ogx-provider-data` header: per-request provider settings such as a caller's own API
//! key, as a JSON object.
//!
//! As in OGX, a header that is not valid JSON, or not a JSON object, is ignored with a warning
//! and the request goes on without provider data. The warning never repeats the header's value:
//! it usually carries credentials.

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

#[cfg(test)]
mod tests {
    use super::*;

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
