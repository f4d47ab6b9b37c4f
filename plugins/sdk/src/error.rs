//! The error a provider returns, and how upstream failures become one.
//!
//! [`ProviderError`] mirrors the WIT `provider-error` variant case for case; the host maps each
//! case to an HTTP status and an OpenAI error body (the status is noted on every case). Messages
//! reach the API client, so they must never contain a secret.
//!
//! [`ProviderError::from_upstream`] builds the message OGX shows for an upstream error status:
//! OGX calls upstreams through the OpenAI Python SDK, whose text is
//! `Error code: {status} - {body}` with a JSON body printed as a Python value
//! (`{'error': {'message': 'bad'}}`), the stripped text when the body is not JSON, and
//! `Error code: {status}` when it is empty.

use std::fmt;

use serde_json::Value;

/// Why a provider call failed. Each case becomes one HTTP status on the client's side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// 400: the request cannot be served as sent (a bad field, a missing API key, a rejected
    /// config).
    InvalidRequest(String),
    /// 401: the caller's credentials were missing or rejected.
    Unauthenticated(String),
    /// 403: the credentials were valid but not allowed to do this.
    PermissionDenied(String),
    /// 404: the model or resource does not exist upstream.
    NotFound(String),
    /// 429: the upstream asked us to slow down.
    RateLimited(String),
    /// The upstream answered with an error status; the client gets that `status` (400–599)
    /// and `message`.
    Upstream {
        /// The upstream's HTTP status.
        status: u16,
        /// What to tell the client; see [`ProviderError::from_upstream`].
        message: String,
    },
    /// 502: the upstream could not be reached or answered something unreadable.
    BadGateway(String),
    /// 504: the upstream did not answer in time.
    Timeout(String),
    /// 501: this provider does not implement the operation.
    Unsupported(String),
    /// 500: anything else. Prefer a more precise case.
    Internal(String),
    /// 429 with a known wait: the host sends `Retry-After` and its retries honour it. (Plain
    /// [`ProviderError::RateLimited`] is the same without a wait.)
    RetryAfter {
        /// What to tell the client.
        message: String,
        /// Seconds to wait before trying again.
        seconds: u32,
    },
    /// [`ProviderError::Upstream`] with the upstream's response headers, which the host may
    /// pass on (it forwards only those it knows to be safe, such as `retry-after`); see
    /// [`ProviderError::from_upstream_response`].
    UpstreamWithHeaders {
        /// The upstream's HTTP status.
        status: u16,
        /// What to tell the client; see [`ProviderError::from_upstream`].
        message: String,
        /// Response headers, names in lower case.
        headers: Vec<(String, String)>,
    },
}

impl ProviderError {
    /// The error for an upstream response with an error status, with the message OGX shows:
    /// `Error code: 400 - {'error': {'message': '...'}}` (see the module docs). A status
    /// outside 400–599 (a redirect the host did not follow, say) cannot be passed on to the
    /// client and becomes [`ProviderError::BadGateway`] with the same message.
    pub fn from_upstream(status: u16, body: &[u8]) -> Self {
        let message = upstream_error_message(status, body);
        if (400..=599).contains(&status) {
            ProviderError::Upstream { status, message }
        } else {
            ProviderError::BadGateway(message)
        }
    }

    /// [`ProviderError::from_upstream`] keeping the response's `headers` for the host, which
    /// may pass `retry-after` and the rate-limit headers on to the client.
    pub fn from_upstream_response(status: u16, headers: &[(String, String)], body: &[u8]) -> Self {
        match Self::from_upstream(status, body) {
            ProviderError::Upstream { status, message } => ProviderError::UpstreamWithHeaders {
                status,
                message,
                headers: headers.to_vec(),
            },
            other => other,
        }
    }

    /// The error an Anthropic stream `error` event (`{"type": "error", "error": {"type",
    /// "message"}}`) reports, with the HTTP status Anthropic gives its error type (500 for an
    /// unknown one), for plugins that relay native Messages streams.
    pub fn from_anthropic_error_event(data: &Value) -> Self {
        let error = data.get("error");
        let kind = error
            .and_then(|e| e.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("api_error");
        let message = error
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("the upstream reported an error inside the stream")
            .to_string();
        let status = match kind {
            "invalid_request_error" => 400,
            "authentication_error" => 401,
            "permission_error" => 403,
            "not_found_error" => 404,
            "request_too_large" => 413,
            "rate_limit_error" => 429,
            "overloaded_error" => 529,
            _ => 500,
        };
        ProviderError::Upstream { status, message }
    }

    /// The error for an operation the provider does not implement:
    /// `<provider type> does not support <operation>` (501).
    pub fn unsupported(provider_type: &str, operation: &str) -> Self {
        ProviderError::Unsupported(format!("{provider_type} does not support {operation}"))
    }

    /// The text of the error, whatever its case.
    pub fn message(&self) -> &str {
        match self {
            ProviderError::InvalidRequest(m)
            | ProviderError::Unauthenticated(m)
            | ProviderError::PermissionDenied(m)
            | ProviderError::NotFound(m)
            | ProviderError::RateLimited(m)
            | ProviderError::BadGateway(m)
            | ProviderError::Timeout(m)
            | ProviderError::Unsupported(m)
            | ProviderError::Internal(m) => m,
            ProviderError::Upstream { message, .. }
            | ProviderError::UpstreamWithHeaders { message, .. }
            | ProviderError::RetryAfter { message, .. } => message,
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ProviderError {}

/// The client-facing message for an upstream error status, as the OpenAI Python SDK words it.
pub fn upstream_error_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("Error code: {status}");
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value) => format!("Error code: {status} - {}", python_repr(&value)),
        Err(_) => text.to_string(),
    }
}

/// `value` printed the way Python prints the result of `json.loads` (`{'a': [True, None]}`).
/// OGX embeds such text in several client-facing messages; use this to match them.
pub fn python_repr(value: &Value) -> String {
    let mut out = String::new();
    write_python_repr(value, &mut out);
    out
}

fn write_python_repr(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (_, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&format!("{f:?}")),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => write_python_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_str(key, out);
                out.push_str(": ");
                write_python_repr(item, out);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(str)`: single quotes unless the text holds `'` and no `"`.
fn write_python_str(s: &str, out: &mut String) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..=0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_anthropic_error_event_gets_the_status_of_its_type() {
        let event = serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(
            ProviderError::from_anthropic_error_event(&event),
            ProviderError::Upstream {
                status: 529,
                message: "Overloaded".into()
            }
        );
        assert_eq!(
            ProviderError::from_anthropic_error_event(&serde_json::json!({})),
            ProviderError::Upstream {
                status: 500,
                message: "the upstream reported an error inside the stream".into()
            }
        );
    }

    #[test]
    fn upstream_messages_read_like_the_openai_python_sdk() {
        let cases: &[(u16, &str, &str)] = &[
            (
                400,
                r#"{"error":{"message":"bad model","type":"invalid_request_error","param":null,"code":null}}"#,
                "Error code: 400 - {'error': {'message': 'bad model', 'type': 'invalid_request_error', 'param': None, 'code': None}}",
            ),
            (
                429,
                r#"  {"error": {"message": "slow down", "retry": true, "after": 1.5, "n": 3}} "#,
                "Error code: 429 - {'error': {'message': 'slow down', 'retry': True, 'after': 1.5, 'n': 3}}",
            ),
            (
                500,
                r#"{"detail":"it's broken"}"#,
                r#"Error code: 500 - {'detail': "it's broken"}"#,
            ),
            (
                502,
                r#"{"detail":"say \"hi\"\n and it's \\ ok"}"#,
                r#"Error code: 502 - {'detail': 'say "hi"\n and it\'s \\ ok'}"#,
            ),
            (503, "  upstream down \n", "upstream down"),
            (504, "", "Error code: 504"),
            (404, "[1, \"a\"]", "Error code: 404 - [1, 'a']"),
        ];
        for (status, body, want) in cases {
            assert_eq!(
                upstream_error_message(*status, body.as_bytes()),
                *want,
                "{body}"
            );
        }
    }

    #[test]
    fn from_upstream_keeps_error_statuses_only() {
        let err = ProviderError::from_upstream(418, b"{}");
        assert_eq!(
            err,
            ProviderError::Upstream {
                status: 418,
                message: "Error code: 418 - {}".into()
            }
        );
        let err = ProviderError::from_upstream(302, b"");
        assert_eq!(err, ProviderError::BadGateway("Error code: 302".into()));
    }
}
