//! Bedrock runtime exceptions (Converse, ConverseStream, InvokeModel) as the client expects
//! them.
//!
//! The exception name comes from the `x-amzn-errortype` header, normalised as smithy does
//! (anything after the first `:` and anything up to a `#` cut), else from the body's
//! `__type` / `code`; the text from the body's `message` / `Message`. Then:
//!
//! | exception | client sees |
//! | --- | --- |
//! | `ThrottlingException`, `ServiceQuotaExceededException` | 429 with Bedrock's message |
//! | `ValidationException` | 400 with Bedrock's message; the "needs an inference profile" one also names the profile id to use |
//! | `AccessDeniedException` | 403, a fixed sanitized message (Bedrock's names account and role) |
//! | `ResourceNotFoundException` | 404 with Bedrock's message |
//! | `ModelNotReadyException`, `ServiceUnavailableException` | 503 with Bedrock's message |
//! | `ModelTimeoutException` | 504 |
//! | other 401/403 (signature, unknown key, bearer token) | the sanitized 500s of [`crate::errors`] |
//! | anything else | Bedrock's status and message |
//!
//! The same names arrive mid-stream as exception frames (`:exception-type`, lower camel
//! case); [`from_exception_frame`] maps them alike. Bedrock sends no `Retry-After`, and the
//! plugin interface's `rate-limited` case has no field for one, so none is passed on.
//! No message ever contains a token, a key or a signature: Bedrock's own texts do not, and
//! the auth failures use fixed texts.

use ogx_provider_sdk::{ProviderError, Value};

use crate::auth::AuthMode;
use crate::errors;
use crate::routing;

/// 403 `AccessDeniedException` to a SigV4-signed request.
pub const ACCESS_DENIED_SIGV4: &str = "Access denied: the server's cloud credentials are not allowed to invoke this model. Ask the operator to grant model access (and, for an inference profile, access in every region it routes to).";
/// 403 `AccessDeniedException` to a bearer token.
pub const ACCESS_DENIED_BEARER: &str =
    "Access denied: the provided request credential is not allowed to invoke this model.";

/// The text Bedrock answers a foundation-model id that needs an inference profile.
const NEEDS_PROFILE: &str = "with on-demand throughput isn";

/// The exception name and message of an error answer.
pub fn parse(headers: &[(String, String)], body: &[u8]) -> (Option<String>, String) {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |names: &[&str]| {
        json.as_ref().and_then(|j| {
            names
                .iter()
                .find_map(|n| j.get(*n).and_then(Value::as_str).map(str::to_string))
        })
    };
    let name = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amzn-errortype"))
        .map(|(_, v)| v.clone())
        .or_else(|| field(&["__type", "code"]))
        .map(|raw| normalise(&raw))
        .filter(|n| !n.is_empty());
    let message = field(&["message", "Message"])
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
    (name, message)
}

/// `aws.protocols#ThrottlingException:http://…` → `ThrottlingException`.
fn normalise(raw: &str) -> String {
    let raw = raw.split(':').next().unwrap_or_default();
    raw.rsplit('#')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The client-facing error of a Bedrock runtime error answer for `model`.
pub fn from_response(
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    auth: &AuthMode,
    region: &str,
    model: &str,
) -> ProviderError {
    let (name, message) = parse(headers, body);
    match name.as_deref() {
        Some("AccessDeniedException") if status == 403 => access_denied(auth, region),
        _ if status == 401 || status == 403 => errors::upstream_error(status, body, auth, region),
        Some(name) => by_name(name, message, status, region, model),
        None => ProviderError::from_upstream(status, body),
    }
}

/// The error an exception frame in the middle of a ConverseStream answer stands for.
pub fn from_exception_frame(
    name: &str,
    payload: &[u8],
    region: &str,
    model: &str,
) -> ProviderError {
    let (_, message) = parse(&[], payload);
    let mut chars = name.chars();
    let pascal: String = chars
        .next()
        .map(|c| c.to_ascii_uppercase())
        .into_iter()
        .chain(chars)
        .collect();
    let name = normalise(&pascal);
    match name.as_str() {
        "AccessDeniedException" => ProviderError::PermissionDenied(ACCESS_DENIED_SIGV4.into()),
        _ => by_name(&name, message, 500, region, model),
    }
}

fn access_denied(auth: &AuthMode, region: &str) -> ProviderError {
    match auth {
        AuthMode::SigV4 => ProviderError::PermissionDenied(ACCESS_DENIED_SIGV4.into()),
        AuthMode::Bearer { token, .. } => {
            let mut message = ACCESS_DENIED_BEARER.to_string();
            if errors::key_region(token).is_some_and(|r| r != region) {
                message.push_str(&errors::region_hint(region));
            }
            ProviderError::PermissionDenied(message)
        }
    }
}

fn by_name(name: &str, message: String, status: u16, region: &str, model: &str) -> ProviderError {
    match name {
        "ThrottlingException" | "ServiceQuotaExceededException" => {
            ProviderError::RateLimited(message)
        }
        "ValidationException" => {
            ProviderError::InvalidRequest(with_profile_hint(message, region, model))
        }
        "ResourceNotFoundException" => ProviderError::NotFound(message),
        "ModelNotReadyException" | "ServiceUnavailableException" => ProviderError::Upstream {
            status: 503,
            message,
        },
        "ModelTimeoutException" => ProviderError::Timeout(message),
        _ => {
            let status = if (400..=599).contains(&status) {
                status
            } else {
                502
            };
            ProviderError::Upstream {
                status,
                message: format!("{name}: {message}"),
            }
        }
    }
}

/// Bedrock's "needs an inference profile" message, with the profile id to use appended.
pub fn with_profile_hint(message: String, region: &str, model: &str) -> String {
    if !message.contains(NEEDS_PROFILE) {
        return message;
    }
    match routing::profile_for(model, region) {
        Some(profile) => format!(
            "{message} Use the inference profile `{profile}` as the model's provider_model_id (or `global.{model}` where a global profile exists)."
        ),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str) -> Vec<(String, String)> {
        vec![("x-amzn-errortype".into(), name.into())]
    }

    #[test]
    fn exception_names_are_normalised() {
        let cases = [
            ("ThrottlingException", "ThrottlingException"),
            (
                "ThrottlingException:http://internal.amazon.com/coral/",
                "ThrottlingException",
            ),
            ("aws.protocols#ValidationException", "ValidationException"),
            (
                "com.amazon#AccessDeniedException:x",
                "AccessDeniedException",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse(&header(raw), b"{}").0.as_deref(), Some(want));
        }
        let (name, message) = parse(
            &[],
            br#"{"__type":"x#ModelTimeoutException","Message":"slow"}"#,
        );
        assert_eq!(
            (name.as_deref(), message.as_str()),
            (Some("ModelTimeoutException"), "slow")
        );
        assert_eq!(parse(&[], b"oops"), (None, "oops".into()));
    }

    #[test]
    fn exceptions_map_to_client_statuses() {
        let body = |m: &str| format!(r#"{{"message":"{m}"}}"#).into_bytes();
        let model = "anthropic.claude-3-5-haiku-20241022-v1:0";
        let map = |status, name: &str, message: &str| {
            from_response(
                status,
                &header(name),
                &body(message),
                &AuthMode::SigV4,
                "us-west-2",
                model,
            )
        };
        assert_eq!(
            map(429, "ThrottlingException", "Too many"),
            ProviderError::RateLimited("Too many".into())
        );
        assert_eq!(
            map(400, "ValidationException", "bad"),
            ProviderError::InvalidRequest("bad".into())
        );
        assert_eq!(
            map(
                403,
                "AccessDeniedException",
                "User arn:aws:iam::1:user/x is not authorized"
            ),
            ProviderError::PermissionDenied(ACCESS_DENIED_SIGV4.into())
        );
        assert_eq!(
            map(403, "InvalidSignatureException", "sig"),
            ProviderError::Internal(errors::SIGV4_REJECTED.into())
        );
        assert_eq!(
            map(429, "ModelNotReadyException", "warming"),
            ProviderError::Upstream {
                status: 503,
                message: "warming".into()
            }
        );
        assert_eq!(
            map(503, "ServiceUnavailableException", "down"),
            ProviderError::Upstream {
                status: 503,
                message: "down".into()
            }
        );
        assert_eq!(
            map(404, "ResourceNotFoundException", "nope"),
            ProviderError::NotFound("nope".into())
        );
        assert_eq!(
            map(408, "ModelTimeoutException", "t"),
            ProviderError::Timeout("t".into())
        );
        assert_eq!(
            map(424, "ModelErrorException", "m"),
            ProviderError::Upstream {
                status: 424,
                message: "ModelErrorException: m".into()
            }
        );
        let bearer = AuthMode::Bearer {
            token: "secret-token".into(),
            from_request: true,
        };
        let got = from_response(
            403,
            &header("AccessDeniedException"),
            &body("x"),
            &bearer,
            "us-west-2",
            model,
        );
        assert_eq!(
            got,
            ProviderError::PermissionDenied(ACCESS_DENIED_BEARER.into())
        );
        assert!(!got.message().contains("secret-token"));
    }

    #[test]
    fn the_inference_profile_message_names_the_profile() {
        let model = "anthropic.claude-3-5-haiku-20241022-v1:0";
        let message = format!(
            "Invocation of model ID {model} with on-demand throughput isn't supported. Retry your request with the ID or ARN of an inference profile that contains this model."
        );
        let got = with_profile_hint(message.clone(), "us-west-2", model);
        assert!(got.starts_with(&message));
        assert!(
            got.contains("`us.anthropic.claude-3-5-haiku-20241022-v1:0`"),
            "{got}"
        );
        assert_eq!(
            with_profile_hint("other".into(), "us-west-2", model),
            "other"
        );
    }

    #[test]
    fn exception_frames() {
        let payload = br#"{"message":"Too many requests, please wait before trying again."}"#;
        assert_eq!(
            from_exception_frame("throttlingException", payload, "us-west-2", "m"),
            ProviderError::RateLimited(
                "Too many requests, please wait before trying again.".into()
            )
        );
        assert!(matches!(
            from_exception_frame(
                "modelStreamErrorException",
                br#"{"message":"boom"}"#,
                "r",
                "m"
            ),
            ProviderError::Upstream { status: 500, .. }
        ));
        assert!(matches!(
            from_exception_frame("validationException", b"{}", "r", "m"),
            ProviderError::InvalidRequest(_)
        ));
    }
}
