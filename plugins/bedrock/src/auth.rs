//! Which authentication a request uses, decided per request as OGX does.
//!
//! 1. A per-request token in `x-ogx-provider-data` (`aws_bedrock_bearer_token`, or the
//!    legacy `aws_bearer_token_bedrock`), trimmed and non-blank, wins: bearer with it.
//! 2. Else the configured token (non-blank): bearer with it.
//! 3. Else SigV4, signed by the host with the server's AWS credentials. An empty or
//!    whitespace-only override therefore means "use the server's identity", never
//!    `Bearer    ` (a quirk of OGX we do not copy).

use ogx_provider_sdk::{Map, Value};

/// Provider-data keys that may carry a per-request bearer token, canonical name first.
pub const OVERRIDE_KEYS: [&str; 2] = ["aws_bedrock_bearer_token", "aws_bearer_token_bedrock"];

/// How one request authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token, trimmed.
        token: String,
        /// Whether it came from the request's provider data rather than the config.
        from_request: bool,
    },
    /// AWS Signature Version 4 by the host.
    SigV4,
}

/// The per-request token, if the provider data carries a usable one.
pub fn override_token(provider_data: Option<&Map<String, Value>>) -> Option<String> {
    let data = provider_data?;
    OVERRIDE_KEYS.iter().find_map(|key| match data.get(*key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    })
}

/// Decides the auth of one request from the configured token and the provider data.
pub fn decide(config_token: Option<&str>, provider_data: Option<&Map<String, Value>>) -> AuthMode {
    if let Some(token) = override_token(provider_data) {
        return AuthMode::Bearer {
            token,
            from_request: true,
        };
    }
    match config_token.map(str::trim).filter(|t| !t.is_empty()) {
        Some(token) => AuthMode::Bearer {
            token: token.to_string(),
            from_request: false,
        },
        None => AuthMode::SigV4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn decision_table() {
        let bearer = |t: &str, from_request: bool| AuthMode::Bearer {
            token: t.into(),
            from_request,
        };
        let cases: Vec<(Option<&str>, Option<Value>, AuthMode)> = vec![
            (None, None, AuthMode::SigV4),
            (None, Some(json!({})), AuthMode::SigV4),
            (
                None,
                Some(json!({"aws_bedrock_bearer_token": ""})),
                AuthMode::SigV4,
            ),
            (
                None,
                Some(json!({"aws_bedrock_bearer_token": "   "})),
                AuthMode::SigV4,
            ),
            (
                None,
                Some(json!({"aws_bearer_token_bedrock": "\t\n"})),
                AuthMode::SigV4,
            ),
            (
                None,
                Some(json!({"aws_bedrock_bearer_token": null})),
                AuthMode::SigV4,
            ),
            (
                None,
                Some(json!({"aws_bedrock_bearer_token": 42})),
                AuthMode::SigV4,
            ),
            (None, Some(json!({"openai_api_key": "sk"})), AuthMode::SigV4),
            (
                None,
                Some(json!({"aws_bedrock_bearer_token": " tok "})),
                bearer("tok", true),
            ),
            (
                None,
                Some(json!({"aws_bearer_token_bedrock": "old"})),
                bearer("old", true),
            ),
            (
                None,
                Some(json!({"aws_bedrock_bearer_token": "new", "aws_bearer_token_bedrock": "old"})),
                bearer("new", true),
            ),
            (
                None,
                Some(json!({"aws_bedrock_bearer_token": " ", "aws_bearer_token_bedrock": "old"})),
                bearer("old", true),
            ),
            (Some("cfg"), None, bearer("cfg", false)),
            (Some("  "), None, AuthMode::SigV4),
            (
                Some(""),
                Some(json!({"aws_bedrock_bearer_token": ""})),
                AuthMode::SigV4,
            ),
            (
                Some("cfg"),
                Some(json!({"aws_bedrock_bearer_token": "req"})),
                bearer("req", true),
            ),
            (
                Some("cfg"),
                Some(json!({"aws_bedrock_bearer_token": "  "})),
                bearer("cfg", false),
            ),
        ];
        for (config, provider_data, want) in cases {
            let provider_data = provider_data.map(data);
            assert_eq!(
                decide(config, provider_data.as_ref()),
                want,
                "{config:?} {provider_data:?}"
            );
        }
    }
}
