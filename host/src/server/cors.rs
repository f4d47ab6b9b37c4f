//! `server.cors`: answering browsers' cross-origin requests as OGX 0.7 did (Starlette's
//! `CORSMiddleware`; OGX 1.5.0 dropped it, ogx keeps it). It runs before authentication, so a
//! preflight needs no credentials.
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here:
//! 200 "OK", or 400 "Disallowed CORS origin, method, headers" naming what is not allowed.
//! Other requests with an `Origin` get `Access-Control-Allow-Origin` (the origin, or `*` for
//! wildcard origins without credentials), `-Allow-Credentials`, `-Expose-Headers` and
//! `Vary: Origin`. Origins match exactly, `*`, or `allow_origin_regex` (the whole origin).
//! `allow_methods` / `allow_headers` may be `*`; the CORS-safelisted headers are always allowed.

use crate::config::schema::CorsConfig;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use regex::Regex;
use std::sync::Arc;

/// Methods `allow_methods: ["*"]` stands for (Starlette's).
const ALL_METHODS: [&str; 7] = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"];
/// Headers always allowed (Starlette's `SAFELISTED_HEADERS`).
const SAFELISTED_HEADERS: [&str; 4] = [
    "Accept",
    "Accept-Language",
    "Content-Language",
    "Content-Type",
];

/// `server.cors`, ready to answer.
pub struct Cors {
    origins: Vec<String>,
    all_origins: bool,
    origin_regex: Option<Regex>,
    methods: Vec<String>,
    /// Lowercased, safelisted ones included, sorted.
    headers: Vec<String>,
    all_headers: bool,
    credentials: bool,
    expose: Option<String>,
    max_age: u64,
}

impl Cors {
    /// Fails when `allow_origin_regex` is not a valid regular expression.
    pub fn new(config: &CorsConfig) -> Result<Self, String> {
        let origin_regex = config
            .allow_origin_regex
            .as_deref()
            .map(|re| {
                Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| format!("server.cors.allow_origin_regex: {e}"))
            })
            .transpose()?;
        let methods = if config.allow_methods.iter().any(|m| m == "*") {
            ALL_METHODS.map(String::from).to_vec()
        } else {
            config
                .allow_methods
                .iter()
                .map(|m| m.to_uppercase())
                .collect()
        };
        let mut headers: Vec<String> = SAFELISTED_HEADERS
            .iter()
            .map(|h| h.to_string())
            .chain(config.allow_headers.iter().cloned())
            .map(|h| h.to_lowercase())
            .collect();
        headers.sort();
        headers.dedup();
        Ok(Self {
            origins: config.allow_origins.clone(),
            all_origins: config.allow_origins.iter().any(|o| o == "*"),
            origin_regex,
            methods,
            all_headers: config.allow_headers.iter().any(|h| h == "*"),
            headers,
            credentials: config.allow_credentials,
            expose: (!config.expose_headers.is_empty()).then(|| config.expose_headers.join(", ")),
            max_age: config.max_age,
        })
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.all_origins
            || self
                .origin_regex
                .as_ref()
                .is_some_and(|re| re.is_match(origin))
            || self.origins.iter().any(|o| o == origin)
    }

    /// Whether the preflight must name the origin (instead of `*`).
    fn explicit_origin(&self) -> bool {
        !self.all_origins || self.credentials
    }

    fn preflight(&self, request: &HeaderMap, origin: &str) -> Response {
        let mut headers = HeaderMap::new();
        let mut failures = Vec::new();
        if self.explicit_origin() {
            set(&mut headers, header::VARY, "Origin");
        } else {
            set(&mut headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
        }
        set(
            &mut headers,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &self.methods.join(", "),
        );
        set(
            &mut headers,
            header::ACCESS_CONTROL_MAX_AGE,
            &self.max_age.to_string(),
        );
        if !self.all_headers {
            set(
                &mut headers,
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                &self.headers.join(", "),
            );
        }
        if self.credentials {
            set(
                &mut headers,
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                "true",
            );
        }
        if self.origin_allowed(origin) {
            if self.explicit_origin() {
                set(&mut headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            }
        } else {
            failures.push("origin");
        }
        let method = text(request, &header::ACCESS_CONTROL_REQUEST_METHOD).unwrap_or_default();
        if !self.methods.iter().any(|m| m == method) {
            failures.push("method");
        }
        if let Some(requested) = text(request, &header::ACCESS_CONTROL_REQUEST_HEADERS) {
            if self.all_headers {
                set(
                    &mut headers,
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    requested,
                );
            } else if requested
                .split(',')
                .map(|h| h.trim().to_lowercase())
                .any(|h| !self.headers.contains(&h))
            {
                failures.push("headers");
            }
        }
        let (status, body) = if failures.is_empty() {
            (StatusCode::OK, "OK".to_owned())
        } else {
            (
                StatusCode::BAD_REQUEST,
                format!("Disallowed CORS {}", failures.join(", ")),
            )
        };
        (status, headers, body).into_response()
    }

    fn decorate(&self, request_has_cookie: bool, origin: &str, response: &mut Response) {
        let headers = response.headers_mut();
        if self.all_origins && !(self.credentials || request_has_cookie) {
            set(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
        } else if self.origin_allowed(origin) {
            set(headers, header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if self.credentials {
            set(headers, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        if let Some(expose) = &self.expose {
            set(headers, header::ACCESS_CONTROL_EXPOSE_HEADERS, expose);
        }
    }
}

fn text<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn set(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The middleware: preflights answered, other cross-origin answers decorated.
pub async fn handle(State(cors): State<Arc<Cors>>, request: Request, next: Next) -> Response {
    let Some(origin) = text(request.headers(), &header::ORIGIN).map(str::to_owned) else {
        return next.run(request).await;
    };
    if request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return cors.preflight(request.headers(), &origin);
    }
    let cookie = request.headers().contains_key(header::COOKIE);
    let mut response = next.run(request).await;
    cors.decorate(cookie, &origin, &mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preflight(cors: &Cors, origin: &str, method: &str, headers: &str) -> Response {
        let mut request = HeaderMap::new();
        set(&mut request, header::ACCESS_CONTROL_REQUEST_METHOD, method);
        set(
            &mut request,
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            headers,
        );
        cors.preflight(&request, origin)
    }

    #[test]
    fn cors_true_allows_localhost_origins_only() {
        let cors = Cors::new(&CorsConfig::localhost_development()).unwrap();
        let ok = preflight(
            &cors,
            "http://localhost:3000",
            "POST",
            "content-type, authorization",
        );
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(
            ok.headers()["access-control-allow-origin"],
            "http://localhost:3000"
        );
        assert_eq!(ok.headers()["vary"], "Origin");
        let denied = preflight(&cors, "https://evil.example", "PATCH", "x-custom");
        assert_eq!(denied.status(), StatusCode::BAD_REQUEST);
        assert!(
            denied
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        let denied = preflight(&cors, "http://localhost:3000.evil.example", "GET", "");
        assert_eq!(denied.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn wildcards_answer_star_unless_credentials() {
        let config = CorsConfig {
            allow_origins: vec!["*".into()],
            allow_methods: vec!["*".into()],
            allow_headers: vec!["*".into()],
            ..CorsConfig::localhost_development()
        };
        let cors = Cors::new(&config).unwrap();
        let ok = preflight(&cors, "https://any.example", "PATCH", "x-anything");
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()["access-control-allow-origin"], "*");
        assert_eq!(ok.headers()["access-control-allow-headers"], "x-anything");
        let mut response = StatusCode::OK.into_response();
        cors.decorate(false, "https://any.example", &mut response);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
    }
}
