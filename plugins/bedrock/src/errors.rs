//! What the client is told when a call fails, word for word as OGX tells it.
//!
//! Authentication failures (upstream 401/403, or the host unable to resolve AWS credentials)
//! become 500s with sanitized messages: they never name the upstream, the provider-data
//! header, environment variable names or a credential, because the client may be a
//! different party than the operator. Other upstream error statuses pass through as
//! `Error code: <status> - <body>` with the upstream status.
//!
//! A rejected bearer token gets one more sentence when the region may be the cause: Bedrock
//! short-term API keys work only in the region they were generated for. Such a key is a
//! base64 presigned URL whose credential scope names that region; when it can be read and
//! names another region, or cannot be read and the upstream said 403, the sentence is added.

use ogx_provider_sdk::ProviderError;
use ogx_provider_sdk::http::HttpError;

use crate::auth::AuthMode;

/// Upstream 401/403 to a SigV4-signed request.
pub const SIGV4_REJECTED: &str = "Authentication failed because the configured cloud credentials could not authorize this request. Please verify that the credentials available to the server are valid, unexpired, and allowed to access the requested model.";
/// Upstream 401/403 to a bearer token, the upstream saying it expired.
pub const BEARER_EXPIRED: &str = "Authentication failed because the provided request credential has expired. Please refresh the credential and try again, or remove it so the server can use its configured cloud credentials.";
/// Upstream 401/403 to a bearer token, for any other reason.
pub const BEARER_REJECTED: &str = "Authentication failed because the provided request credential was rejected. Please verify that the credential is valid, unexpired, and authorized for this request.";
/// The host could not resolve AWS credentials for a SigV4 request.
pub const CREDENTIALS_UNRESOLVED: &str = "Authentication failed because the server could not resolve AWS credentials. Please verify that the server has valid AWS credentials configured.";
/// `/v1/completions`, streaming or not (501).
pub const COMPLETIONS_UNSUPPORTED: &str = "Bedrock's OpenAI-compatible API does not support /v1/completions endpoint. Only /v1/chat/completions is supported. See https://docs.aws.amazon.com/bedrock/latest/userguide/inference-chat-completions.html";

/// Prefix of Bedrock short-term API keys; the rest is a base64 presigned URL.
const SHORT_TERM_KEY_PREFIX: &str = "bedrock-api-key-";

/// The sentence added to [`BEARER_REJECTED`] when the key may belong to another region.
pub fn region_hint(region: &str) -> String {
    format!(
        " If it is a short-term API key, it must have been generated for the region this server uses ({region}): such keys are rejected in any other region."
    )
}

/// The client-facing error for an upstream error status.
pub fn upstream_error(status: u16, body: &[u8], auth: &AuthMode, region: &str) -> ProviderError {
    if status != 401 && status != 403 {
        return ProviderError::from_upstream(status, body);
    }
    match auth {
        AuthMode::SigV4 => ProviderError::Internal(SIGV4_REJECTED.into()),
        AuthMode::Bearer { token, .. } => {
            let text = String::from_utf8_lossy(body).to_lowercase();
            if text.contains("expired") {
                return ProviderError::Internal(BEARER_EXPIRED.into());
            }
            let region_may_be_the_cause = match key_region(token) {
                Some(key_region) => key_region != region,
                None => status == 403,
            };
            let mut message = BEARER_REJECTED.to_string();
            if region_may_be_the_cause {
                message.push_str(&region_hint(region));
            }
            ProviderError::Internal(message)
        }
    }
}

/// The client-facing error for a request that got no response.
pub fn transport_error(err: HttpError, auth: &AuthMode) -> ProviderError {
    match (err, auth) {
        (HttpError::Credentials(_), AuthMode::SigV4) => {
            ProviderError::Internal(CREDENTIALS_UNRESOLVED.into())
        }
        (err, _) => err.into(),
    }
}

/// The region a Bedrock short-term API key was generated for, when the token is one.
pub fn key_region(token: &str) -> Option<String> {
    let encoded = token.strip_prefix(SHORT_TERM_KEY_PREFIX)?;
    let url = String::from_utf8(crate::base64::decode(encoded)?).ok()?;
    let start = url.find("X-Amz-Credential=")? + "X-Amz-Credential=".len();
    let credential = url[start..]
        .split('&')
        .next()?
        .replace("%2F", "/")
        .replace("%2f", "/");
    // AKID/date/region/service/aws4_request
    let region = credential.split('/').nth(2)?;
    (!region.is_empty()).then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORBIDDEN: [&str; 4] = [
        "Bedrock",
        "x-ogx-provider-data",
        "AWS_ROLE_ARN",
        "AWS_BEARER_TOKEN_BEDROCK",
    ];

    fn bearer(token: &str) -> AuthMode {
        AuthMode::Bearer {
            token: token.into(),
            from_request: true,
        }
    }

    fn short_term_key(region: &str) -> String {
        // The shape of a real key: base64 of a presigned CallWithBearerToken URL.
        let url = format!(
            "bedrock.amazonaws.com/?Action=CallWithBearerToken&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAEXAMPLE%2F20261124%2F{region}%2Fbedrock%2Faws4_request&X-Amz-Date=20261124T000000Z&X-Amz-Expires=43200&X-Amz-SignedHeaders=host&X-Amz-Signature=abc&Version=1"
        );
        format!("bedrock-api-key-{}", crate::base64::encode(url.as_bytes()))
    }

    #[test]
    fn auth_failures_become_sanitized_500s() {
        let hint = region_hint("us-west-2");
        let rejected_with_hint = format!("{BEARER_REJECTED}{hint}");
        let cases: Vec<(u16, &str, AuthMode, String)> = vec![
            (
                403,
                r#"{"message":"The request signature we calculated does not match"}"#,
                AuthMode::SigV4,
                SIGV4_REJECTED.into(),
            ),
            (401, "", AuthMode::SigV4, SIGV4_REJECTED.into()),
            (
                403,
                r#"{"message":"The security token included in the request is expired"}"#,
                AuthMode::SigV4,
                SIGV4_REJECTED.into(),
            ),
            (
                401,
                r#"{"message":"Bearer Token has expired"}"#,
                bearer("tok"),
                BEARER_EXPIRED.into(),
            ),
            (
                403,
                r#"{"Message":"EXPIRED key"}"#,
                bearer("tok"),
                BEARER_EXPIRED.into(),
            ),
            (
                401,
                r#"{"message":"Invalid API Key format"}"#,
                bearer("tok"),
                BEARER_REJECTED.into(),
            ),
            (
                403,
                r#"{"message":"Authentication failed"}"#,
                bearer("tok"),
                rejected_with_hint.clone(),
            ),
            (
                401,
                "{}",
                bearer(&short_term_key("us-east-2")),
                rejected_with_hint.clone(),
            ),
            (
                403,
                "{}",
                bearer(&short_term_key("us-west-2")),
                BEARER_REJECTED.into(),
            ),
        ];
        for (status, body, auth, want) in cases {
            let got = upstream_error(status, body.as_bytes(), &auth, "us-west-2");
            assert_eq!(
                got,
                ProviderError::Internal(want.clone()),
                "{status} {body}"
            );
            for word in FORBIDDEN {
                assert!(!got.message().contains(word), "{word} in {got}");
            }
            if let AuthMode::Bearer { token, .. } = &auth {
                assert!(!got.message().contains(token.as_str()));
            }
        }
        assert!(BEARER_REJECTED.starts_with(
            "Authentication failed because the provided request credential was rejected."
        ));
    }

    #[test]
    fn other_statuses_pass_through() {
        let got = upstream_error(
            429,
            br#"{"message":"slow down"}"#,
            &AuthMode::SigV4,
            "us-east-2",
        );
        assert_eq!(
            got,
            ProviderError::Upstream {
                status: 429,
                message: "Error code: 429 - {'message': 'slow down'}".into()
            }
        );
        let got = upstream_error(
            400,
            br#"{"error":{"message":"bad"}}"#,
            &bearer("t"),
            "us-east-2",
        );
        assert!(matches!(got, ProviderError::Upstream { status: 400, .. }));
    }

    #[test]
    fn unresolvable_credentials_in_sigv4_mode() {
        let err = transport_error(
            HttpError::Credentials("no providers in chain".into()),
            &AuthMode::SigV4,
        );
        assert_eq!(err, ProviderError::Internal(CREDENTIALS_UNRESOLVED.into()));
        let err = transport_error(HttpError::Connect("refused".into()), &AuthMode::SigV4);
        assert!(matches!(err, ProviderError::BadGateway(_)));
        let err = transport_error(HttpError::Timeout("t".into()), &bearer("x"));
        assert!(matches!(err, ProviderError::Timeout(_)));
    }

    #[test]
    fn short_term_key_regions() {
        assert_eq!(
            key_region(&short_term_key("eu-central-1")).as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(key_region("ABSKlongtermkey"), None);
        assert_eq!(key_region("bedrock-api-key-!!!"), None);
        assert_eq!(key_region("bedrock-api-key-"), None);
    }
}
