//! Turning a request into a [`Principal`] with the configured `server.auth.provider_config`.
//!
//! Bearer-type providers (all but `upstream_header`) read only `Authorization: Bearer <token>`
//! (never `x-api-key` or `x-goog-api-key`, as in OGX). A failure is an [`AuthFailure`]: 401
//! with OGX's message (the provider's own when no token was sent, "Invalid Authorization
//! header format" for a non-Bearer header), 403 for a proxy outside `trusted_proxy_cidrs`,
//! 503 when the auth service cannot be reached or times out. Auth services get
//! [`SERVICE_TIMEOUT`] (connect [`SERVICE_CONNECT_TIMEOUT`]), OGX's 10 s / 5 s. Tokens are
//! never logged.

use super::config::{ProviderConfig, TlsSettings};
use super::oauth2::OAuth2Provider;
use super::services::ServiceProvider;
use super::upstream_header::UpstreamHeaderProvider;
use super::{Principal, PrincipalSource};
use axum::http::{HeaderMap, Uri};
use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

/// How long a call to an authentication service may take.
pub const SERVICE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to an authentication service may take.
pub const SERVICE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request was not authenticated; the message is the client's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// 401 with this message.
    Unauthorized(String),
    /// 403 with this message (`upstream_header`'s untrusted proxy).
    Forbidden(String),
    /// 503 "Authentication service unavailable".
    Unavailable,
    /// 503 "Authentication service timeout".
    Timeout,
}

/// Who a request comes from, once authenticated.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    /// The tenant the provider resolved (`tenant_claim`, `tenant_field`, `tenant_header`).
    pub tenant: Option<String>,
}

/// What a provider may read of a request.
pub struct RequestFacts<'a> {
    pub headers: &'a HeaderMap,
    pub uri: &'a Uri,
    /// The peer's address, when the server knows it.
    pub client: Option<IpAddr>,
}

/// A principal established by `server.auth`.
pub fn principal_with(
    id: String,
    attributes: BTreeMap<String, Vec<String>>,
    provider_type: &str,
) -> Principal {
    Principal {
        id,
        attributes,
        source: PrincipalSource::ServerAuth {
            provider_type: provider_type.to_owned(),
        },
    }
}

/// The HTTP client a provider calls its service with.
#[derive(Clone)]
pub struct ServiceClient(reqwest::Client);

impl ServiceClient {
    /// A client trusting the system roots plus `tls.cafile`, or nothing with `verify: false`.
    pub fn new(tls: Option<&TlsSettings>) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(SERVICE_TIMEOUT)
            .connect_timeout(SERVICE_CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("ogx");
        if let Some(tls) = tls {
            if let Some(cafile) = &tls.cafile {
                let pem = std::fs::read(cafile)
                    .map_err(|e| format!("cannot read tls_cafile {}: {e}", cafile.display()))?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    format!(
                        "tls_cafile {} holds no PEM certificate: {e}",
                        cafile.display()
                    )
                })?;
                builder = builder.tls_certs_merge(certs);
            }
            builder = builder.danger_accept_invalid_certs(!tls.verify);
        }
        builder
            .build()
            .map(Self)
            .map_err(|e| format!("cannot start the authentication HTTP client: {e}"))
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.0
    }

    /// 503 for a service that cannot be reached (timeout or connection), else 401.
    pub fn failure(error: &reqwest::Error) -> AuthFailure {
        if error.is_timeout() {
            AuthFailure::Timeout
        } else if error.is_connect() || error.is_request() {
            AuthFailure::Unavailable
        } else {
            AuthFailure::Unauthorized("Authentication service error".into())
        }
    }

    /// Sends `request` to `service` (named in the log); one that cannot be reached is 503.
    pub async fn send(
        request: reqwest::RequestBuilder,
        service: &str,
    ) -> Result<reqwest::Response, AuthFailure> {
        request.send().await.map_err(|error| {
            tracing::warn!("Failed to reach {service}: {}", Self::describe(&error));
            Self::failure(&error)
        })
    }

    /// A JSON answer's body (auth services answer small documents).
    pub async fn json_of<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, String> {
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        serde_json::from_slice(&bytes).map_err(|e| e.to_string())
    }

    /// `builder` with `body` as its JSON body.
    pub fn with_json(
        builder: reqwest::RequestBuilder,
        body: &serde_json::Value,
    ) -> reqwest::RequestBuilder {
        builder
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    /// The error with its causes, for the log (URLs carry no secrets here).
    pub fn describe(error: &reqwest::Error) -> String {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// The configured provider.
pub enum Authenticator {
    LocalApiKey(HashSet<String>),
    OAuth2(Box<OAuth2Provider>),
    Service(ServiceProvider),
    UpstreamHeader(UpstreamHeaderProvider),
}

impl Authenticator {
    /// The provider for `config`; fails only when a `tls_cafile` cannot be read.
    pub fn new(config: &ProviderConfig) -> Result<Self, String> {
        Ok(match config {
            ProviderConfig::LocalApiKey { api_keys } => {
                Authenticator::LocalApiKey(api_keys.iter().cloned().collect())
            }
            ProviderConfig::OAuth2(oauth) => Authenticator::OAuth2(Box::new(OAuth2Provider::new(
                oauth.clone(),
                ServiceClient::new(Some(&oauth.tls))?,
            ))),
            ProviderConfig::UpstreamHeader(upstream) => {
                Authenticator::UpstreamHeader(UpstreamHeaderProvider::new(upstream.clone()))
            }
            ProviderConfig::Kubernetes { tls, .. } => Authenticator::Service(ServiceProvider::new(
                config.clone(),
                ServiceClient::new(Some(tls))?,
            )),
            ProviderConfig::GitHub { .. } | ProviderConfig::Custom { .. } => {
                Authenticator::Service(ServiceProvider::new(
                    config.clone(),
                    ServiceClient::new(None)?,
                ))
            }
        })
    }

    /// Authenticates one request.
    pub async fn authenticate(
        &self,
        request: &RequestFacts<'_>,
    ) -> Result<Authenticated, AuthFailure> {
        if let Authenticator::UpstreamHeader(provider) = self {
            return provider.authenticate(request);
        }
        let token = match request.headers.get(axum::http::header::AUTHORIZATION) {
            None => return Err(AuthFailure::Unauthorized(self.missing_token_message())),
            Some(value) => match value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) {
                Some(token) => token,
                None if value.is_empty() => {
                    return Err(AuthFailure::Unauthorized(self.missing_token_message()));
                }
                None => {
                    return Err(AuthFailure::Unauthorized(
                        "Invalid Authorization header format".into(),
                    ));
                }
            },
        };
        match self {
            Authenticator::LocalApiKey(keys) => {
                if !keys.contains(token) {
                    return Err(AuthFailure::Unauthorized(
                        "Invalid or missing API key".into(),
                    ));
                }
                Ok(Authenticated {
                    principal: principal_with(
                        token.to_owned(),
                        BTreeMap::from([
                            (
                                "roles".to_owned(),
                                vec!["admin".to_owned(), "owner".to_owned()],
                            ),
                            ("teams".to_owned(), vec![token.to_owned()]),
                        ]),
                        "local_api_key",
                    ),
                    tenant: None,
                })
            }
            Authenticator::OAuth2(provider) => provider.validate(token).await,
            Authenticator::Service(provider) => provider.validate(token, request).await,
            Authenticator::UpstreamHeader(_) => unreachable!("handled above"),
        }
    }

    /// OGX's message for a request that sent no token.
    fn missing_token_message(&self) -> String {
        match self {
            Authenticator::OAuth2(provider) => provider.missing_token_message(),
            Authenticator::Service(provider) => provider.missing_token_message(),
            Authenticator::LocalApiKey(_) | Authenticator::UpstreamHeader(_) => {
                "Authentication required".into()
            }
        }
    }
}
