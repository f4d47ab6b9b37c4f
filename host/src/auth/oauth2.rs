//! `oauth2_token`: a bearer JWT verified against the issuer's JWKS, or an opaque token checked
//! at an RFC 7662 introspection endpoint.
//!
//! **Threats refused.** Tokens over [`MAX_TOKEN_BYTES`]; `alg: none` and every symmetric
//! algorithm (only RS/PS/ES 256/384/512, OGX's FIPS list, and the key's own type, so an RSA
//! public key can never verify an HMAC; ES512, on OGX's list, is not supported by the JWT
//! library and refused); expired or not-yet-valid tokens (no leeway); a wrong
//! `aud` or `iss`; a signature no current key verifies. Each is 401 "Invalid JWT token".
//!
//! **Keys.** The key set is fetched on first use and kept for `key_recheck_period` seconds
//! (default 3600); a token whose `kid` is not in the set refetches it (key rotation), at most
//! once per [`UNKNOWN_KID_REFETCH_INTERVAL`] so that made-up `kid`s cannot hammer the issuer.
//! An issuer that cannot be reached is 503 "Authentication service unavailable".

use super::authenticator::{AuthFailure, Authenticated, ServiceClient, principal_with};
use super::claims::attributes_from_claims;
use super::config::{OAuth2Config, TokenValidation, normalize_tenant};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

/// The longest bearer token verified as a JWT (longer ones are refused unread).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The least time between two key-set refetches caused by an unknown `kid`.
pub const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// OGX's `FIPS_APPROVED_JWT_ALGORITHMS` (asymmetric only) but ES512.
const ALLOWED_ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

const INVALID_JWT: &str = "Invalid JWT token";

/// The cached key set.
struct KeySet {
    keys: JwkSet,
    fetched: Instant,
}

/// An `oauth2_token` provider with its key cache.
pub struct OAuth2Provider {
    config: OAuth2Config,
    client: ServiceClient,
    keys: RwLock<Option<KeySet>>,
    /// Serialises fetches: concurrent requests wait for one fetch instead of each making one.
    fetching: Mutex<()>,
}

impl OAuth2Provider {
    pub fn new(config: OAuth2Config, client: ServiceClient) -> Self {
        Self {
            config,
            client,
            keys: RwLock::new(None),
            fetching: Mutex::new(()),
        }
    }

    /// OGX's message for a request without a token.
    pub fn missing_token_message(&self) -> String {
        if let Some(issuer) = &self.config.issuer {
            return format!(
                "Authentication required. Please provide a valid OAuth2 Bearer token from {issuer}"
            );
        }
        match &self.config.validation {
            TokenValidation::Introspection { url, .. } => {
                let domain = reqwest::Url::parse(url)
                    .ok()
                    .and_then(|u| {
                        u.host_str()
                            .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
                    })
                    .unwrap_or_default();
                format!(
                    "Authentication required. Please provide a valid OAuth2 Bearer token validated by {domain}"
                )
            }
            TokenValidation::Jwks { .. } => "Authentication required. Please provide a valid OAuth2 Bearer token in the Authorization header".into(),
        }
    }

    pub async fn validate(&self, token: &str) -> Result<Authenticated, AuthFailure> {
        match &self.config.validation {
            TokenValidation::Jwks { .. } => self.verify_jwt(token).await,
            TokenValidation::Introspection { .. } => self.introspect(token).await,
        }
    }

    async fn verify_jwt(&self, token: &str) -> Result<Authenticated, AuthFailure> {
        let invalid = || AuthFailure::Unauthorized(INVALID_JWT.into());
        if token.len() > MAX_TOKEN_BYTES {
            return Err(invalid());
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(invalid());
        }
        let jwk = self
            .key_for(header.kid.as_deref())
            .await?
            .ok_or_else(invalid)?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid())?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.config.audience]);
        let mut required = HashSet::from(["aud".to_owned()]);
        if let Some(issuer) = &self.config.issuer {
            validation.set_issuer(&[issuer]);
            required.insert("iss".to_owned());
        }
        validation.required_spec_claims = required;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|_| invalid())?
            .claims;
        let principal = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?
            .to_owned();
        self.authenticated(principal, &claims)
    }

    /// The key named `kid` (or the only key when the token names none), refetching the set
    /// when it is stale or does not have it.
    async fn key_for(&self, kid: Option<&str>) -> Result<Option<Jwk>, AuthFailure> {
        let TokenValidation::Jwks {
            key_recheck_period_secs,
            ..
        } = &self.config.validation
        else {
            return Ok(None);
        };
        let max_age = Duration::from_secs(*key_recheck_period_secs);
        {
            let cached = self.keys.read().await;
            if let Some(set) = cached.as_ref().filter(|s| s.fetched.elapsed() < max_age) {
                if let Some(jwk) = find_key(&set.keys, kid) {
                    return Ok(Some(jwk));
                }
                if set.fetched.elapsed() < UNKNOWN_KID_REFETCH_INTERVAL {
                    return Ok(None);
                }
            }
        }
        let _fetching = self.fetching.lock().await;
        // Another request may have refetched while this one waited.
        if let Some(set) = self.keys.read().await.as_ref()
            && set.fetched.elapsed() < UNKNOWN_KID_REFETCH_INTERVAL
        {
            return Ok(find_key(&set.keys, kid));
        }
        let keys = self.fetch_keys().await?;
        let found = find_key(&keys, kid);
        *self.keys.write().await = Some(KeySet {
            keys,
            fetched: Instant::now(),
        });
        Ok(found)
    }

    async fn fetch_keys(&self) -> Result<JwkSet, AuthFailure> {
        let TokenValidation::Jwks { uri, token, .. } = &self.config.validation else {
            return Err(AuthFailure::Unavailable);
        };
        let mut request = self.client.http().get(uri);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = ServiceClient::send(request, "JWKS endpoint").await?;
        if !response.status().is_success() {
            tracing::warn!("JWKS endpoint answered {}", response.status());
            return Err(AuthFailure::Unavailable);
        }
        ServiceClient::json_of::<JwkSet>(response)
            .await
            .map_err(|error| {
                tracing::warn!("JWKS endpoint answered no key set: {error}");
                AuthFailure::Unavailable
            })
    }

    async fn introspect(&self, token: &str) -> Result<Authenticated, AuthFailure> {
        let TokenValidation::Introspection {
            url,
            client_id,
            client_secret,
            send_secret_in_body,
        } = &self.config.validation
        else {
            return Err(AuthFailure::Unavailable);
        };
        let mut form = vec![("token", token)];
        let mut request = self.client.http().post(url);
        if *send_secret_in_body {
            form.push(("client_id", client_id));
            form.push(("client_secret", client_secret));
        } else {
            request = request.basic_auth(client_id, Some(client_secret));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = ServiceClient::send(
            request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            "token introspection endpoint",
        )
        .await?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            tracing::warn!("Token introspection failed with status code {status}");
            return Err(AuthFailure::Unauthorized(format!(
                "Token introspection failed: {}",
                status.as_u16()
            )));
        }
        let error = || AuthFailure::Unauthorized("Token introspection error".into());
        let fields: Value = ServiceClient::json_of(response)
            .await
            .map_err(|_| error())?;
        if !fields
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(false)
        {
            return Err(AuthFailure::Unauthorized("Token not active".into()));
        }
        let principal = ["sub", "username"]
            .iter()
            .find_map(|k| {
                fields
                    .get(*k)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .ok_or_else(error)?
            .to_owned();
        self.authenticated(principal, &fields)
    }

    fn authenticated(
        &self,
        principal: String,
        claims: &Value,
    ) -> Result<Authenticated, AuthFailure> {
        let tenant = match &self.config.tenant_claim {
            Some(claim) => match claims.get(claim).and_then(Value::as_str) {
                Some(raw) => normalize_tenant(raw).map_err(AuthFailure::Unauthorized)?,
                None => None,
            },
            None => None,
        };
        Ok(Authenticated {
            principal: principal_with(
                principal,
                attributes_from_claims(claims, &self.config.claims_mapping),
                "oauth2_token",
            ),
            tenant,
        })
    }
}

fn find_key(keys: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    match kid {
        Some(kid) => keys.find(kid).cloned(),
        None if keys.keys.len() == 1 => keys.keys.first().cloned(),
        None => None,
    }
}
