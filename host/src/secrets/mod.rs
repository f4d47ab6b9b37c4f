//! No secret ever leaves: the secrets the host knows, and scrubbing them from every body,
//! header and log line before it leaves the process.
//!
//! **Why.** An upstream may repeat the credential it was sent (some echo the `Authorization`
//! header in a 401's message). Passed on as is, the operator's configured key would reach a
//! client who never had it, and the log. The host cannot recognise a secret by its look, but
//! it knows every secret it injects or holds, so it replaces exactly those.
//!
//! **What is registered.**
//! - Process-wide ([`register`]): config values under secret keys (the redaction rule of
//!   [`crate::config::redact`], plus `*access_key*`), credential values of a provider's
//!   `network.headers`, the values of the secret environment variables a plugin declares, and
//!   the AWS credentials the host resolves (access key id, secret key, session token).
//! - Per request ([`SecretSet`], live while the request is answered): the string values of
//!   `X-OGX-Provider-Data` under secret keys, the credentials a plugin sends upstream for the
//!   request (a bearer token, a credential header), and whatever another layer adds (gateway
//!   keys: `request.extensions().get::<SecretSet>()`, then [`SecretSet::add`]).
//!
//! **Forms** ([`forms`]): the value as given and trimmed, its JSON-escaped form, and for an
//! HTTP credential `Bearer <token>` / `Basic <base64>`, the token, and for Basic the base64
//! text, the decoded `user:password` and the password.
//!
//! **Where scrubbed.** Response bodies and headers (the server's scrubbing layer, streamed
//! bodies chunk by chunk with secrets straddling chunks caught), every log line (the log
//! writer, [`log`]), and panic messages ([`log::install_panic_hook`]). Each occurrence becomes
//! [`MARKER`].
//!
//! **Not scrubbed.** A secret shorter than [`MIN_SECRET_BYTES`]: replacing a short value would
//! mangle ordinary text. Cost when nothing is registered: none (no scan).

pub mod log;
mod registry;
mod scrubber;

pub use registry::{
    LiveGuard, MAX_GLOBAL_PATTERNS, SecretSet, add_for_request, enter, global, register, scrub_log,
};
pub use scrubber::{Scrubber, StreamScrubber};

use base64::Engine;
use serde_json::Value;

/// What a secret is replaced with: the config redaction marker.
pub const MARKER: &str = crate::config::redact::REDACTED;

/// Shortest secret scrubbed, in bytes. Real credentials are far longer (OpenAI keys about 50
/// bytes, AWS secret keys 40, access key ids 20).
pub const MIN_SECRET_BYTES: usize = 8;

/// Every form of `secret` an upstream might echo (see the module documentation); forms shorter
/// than [`MIN_SECRET_BYTES`] are left out.
pub fn forms(secret: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |form: &str| {
        if form.len() >= MIN_SECRET_BYTES && !out.iter().any(|f| f == form) {
            out.push(form.to_owned());
        }
    };
    let trimmed = secret.trim();
    push(secret);
    push(trimmed);
    if let Ok(quoted) = serde_json::to_string(trimmed) {
        push(&quoted[1..quoted.len() - 1]);
    }
    let credential = trimmed
        .split_once(char::is_whitespace)
        .map(|(scheme, rest)| (scheme.to_ascii_lowercase(), rest.trim()));
    match credential {
        Some((scheme, token)) if scheme == "bearer" => push(token),
        Some((scheme, encoded)) if scheme == "basic" => {
            push(encoded);
            if let Some(decoded) = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
            {
                push(&decoded);
                if let Some((_, password)) = decoded.split_once(':') {
                    push(password);
                }
            }
        }
        _ => {}
    }
    out
}

/// Whether a config or provider-data key holds a secret: the redaction rule, plus access key
/// ids (which OGX shows, but the host scrubs, as AWS treats them as half a credential).
pub fn is_secret_key(key: &str) -> bool {
    crate::config::redact::is_secret_key(key, &[])
        || key.to_ascii_lowercase().contains("access_key")
}

/// Whether an HTTP header carries a credential: `authorization`, `cookie`, or a name with
/// `key`, `token`, `secret`, `auth` or `password` in it (`x-api-key`, `x-goog-api-key`, ...).
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "cookie"
        || ["key", "token", "secret", "auth", "password"]
            .iter()
            .any(|word| name.contains(word))
}

/// The secret string values of a config block or a provider-data object: every string (or
/// number) at or under a key [`is_secret_key`] names.
pub fn secret_values(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(value, false, &mut out);
    out
}

fn collect(value: &Value, secret: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                collect(value, secret || is_secret_key(key), out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect(v, secret, out)),
        Value::String(text) if secret => out.push(text.clone()),
        Value::Number(number) if secret => out.push(number.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_of_a_secret() {
        assert_eq!(forms("short"), Vec::<String>::new());
        assert_eq!(forms(" sk-abcdefgh "), [" sk-abcdefgh ", "sk-abcdefgh"]);
        assert_eq!(forms("ab\"cdefgh"), ["ab\"cdefgh", "ab\\\"cdefgh"]);
        assert_eq!(
            forms("Bearer tok-12345678"),
            ["Bearer tok-12345678", "tok-12345678"]
        );
        // user:hunter2-pass
        let basic = base64::engine::general_purpose::STANDARD.encode("user:hunter2-pass");
        assert_eq!(
            forms(&format!("Basic {basic}")),
            [
                format!("Basic {basic}"),
                basic.clone(),
                "user:hunter2-pass".to_owned(),
                "hunter2-pass".to_owned()
            ]
        );
    }

    #[test]
    fn secret_values_follow_the_redaction_rule() {
        let config = json!({
            "url": "http://127.0.0.1:1/v1",
            "api_key": "sk-config-key-1",
            "max_tokens": 4096,
            "aws_access_key_id": "AKIAEXAMPLE000",
            "nested": {"client_secret": {"value": "nested-secret-1"}},
            "tokens": ["list-token-0001"],
        });
        assert_eq!(
            secret_values(&config),
            [
                "sk-config-key-1",
                "AKIAEXAMPLE000",
                "nested-secret-1",
                "list-token-0001"
            ]
        );
    }

    #[test]
    fn credential_headers() {
        for name in [
            "Authorization",
            "x-api-key",
            "api-key",
            "X-Goog-Api-Key",
            "cookie",
            "x-auth-token",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in ["content-type", "user-agent", "x-request-id", "accept"] {
            assert!(!is_credential_header(name), "{name}");
        }
    }
}
