//! The providers that ask another service who a bearer token belongs to: `custom` (POSTs the
//! token and the request's path, headers without `Authorization`, and query to the
//! configured endpoint; expects `{principal, attributes, message}` with 200), `github_token`
//! (`GET <github_api_base_url>/user`, then the caller's organisations from `/user/orgs`,
//! paginated) and `kubernetes` (a `SelfSubjectReview` POSTed to the API server with the
//! caller's token, expecting 201 with `status.userInfo`).
//!
//! A service that cannot be reached or times out is 503; any other answer that does not
//! establish a principal is 401 with OGX's message for it.

use super::authenticator::{
    AuthFailure, Authenticated, RequestFacts, ServiceClient, principal_with,
};
use super::claims::attributes_from_claims;
use super::config::{ProviderConfig, normalize_tenant};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The most pages of `/user/orgs` read (100 organisations each).
const MAX_GITHUB_ORG_PAGES: u32 = 10;

/// A `custom`, `github_token` or `kubernetes` provider.
pub struct ServiceProvider {
    config: ProviderConfig,
    client: ServiceClient,
}

impl ServiceProvider {
    pub fn new(config: ProviderConfig, client: ServiceClient) -> Self {
        Self { config, client }
    }

    pub fn missing_token_message(&self) -> String {
        match &self.config {
            ProviderConfig::Custom { endpoint, .. } => {
                match reqwest::Url::parse(endpoint).ok().and_then(|u| {
                    u.host_str()
                        .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
                }) {
                    Some(domain) => format!(
                        "Authentication required. Please provide your API key as a Bearer token (validated by {domain})"
                    ),
                    None => "Authentication required. Please provide your API key as a Bearer token in the Authorization header".into(),
                }
            }
            ProviderConfig::GitHub { .. } => "Authentication required. Please provide a valid GitHub access token (https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/managing-your-personal-access-tokens) in the Authorization header (Bearer <token>)".into(),
            _ => "Authentication required".into(),
        }
    }

    pub async fn validate(
        &self,
        token: &str,
        request: &RequestFacts<'_>,
    ) -> Result<Authenticated, AuthFailure> {
        match &self.config {
            ProviderConfig::Custom {
                endpoint,
                tenant_field,
            } => {
                self.custom(endpoint, tenant_field.as_deref(), token, request)
                    .await
            }
            ProviderConfig::GitHub {
                api_base_url,
                claims_mapping,
            } => {
                let (login, data) = self.github(api_base_url, token).await?;
                Ok(Authenticated {
                    principal: principal_with(
                        login,
                        attributes_from_claims(&data, claims_mapping),
                        "github_token",
                    ),
                    tenant: None,
                })
            }
            ProviderConfig::Kubernetes {
                api_server_url,
                claims_mapping,
                tenant_claim,
                ..
            } => {
                let user_info = self.self_subject_review(api_server_url, token).await?;
                let username = user_info
                    .get("username")
                    .and_then(Value::as_str)
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        AuthFailure::Unauthorized(
                            "Token validation error: No username found in SelfSubjectReview response".into(),
                        )
                    })?
                    .to_owned();
                let tenant = match tenant_claim {
                    None => None,
                    Some(claim) => {
                        let mapping = vec![(claim.clone(), "tenant".to_owned())];
                        match attributes_from_claims(&user_info, &mapping)
                            .get("tenant")
                            .and_then(|values| values.first())
                        {
                            Some(raw) => {
                                normalize_tenant(raw).map_err(AuthFailure::Unauthorized)?
                            }
                            None => None,
                        }
                    }
                };
                Ok(Authenticated {
                    principal: principal_with(
                        username,
                        attributes_from_claims(&user_info, claims_mapping),
                        "kubernetes",
                    ),
                    tenant,
                })
            }
            _ => Err(AuthFailure::Unauthorized(
                "Authentication service error".into(),
            )),
        }
    }

    async fn custom(
        &self,
        endpoint: &str,
        tenant_field: Option<&str>,
        token: &str,
        request: &RequestFacts<'_>,
    ) -> Result<Authenticated, AuthFailure> {
        let headers: Map<String, Value> = request
            .headers
            .iter()
            .filter(|(name, _)| *name != axum::http::header::AUTHORIZATION)
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), Value::from(value.to_str().ok()?)))
            })
            .collect();
        let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, value) in form_urlencoded::parse(request.uri.query().unwrap_or("").as_bytes()) {
            params
                .entry(key.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        let body = json!({
            "api_key": token,
            "request": {"path": request.uri.path(), "headers": headers, "params": params},
        });
        let response = ServiceClient::send(
            ServiceClient::with_json(self.client.http().post(endpoint), &body),
            "custom auth endpoint",
        )
        .await?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            tracing::warn!("Authentication failed with status code {status}");
            return Err(AuthFailure::Unauthorized(format!(
                "Authentication failed: {}",
                status.as_u16()
            )));
        }
        let invalid = || AuthFailure::Unauthorized("Invalid authentication response format".into());
        let answer: Value = ServiceClient::json_of(response)
            .await
            .map_err(|_| invalid())?;
        let principal = answer
            .get("principal")
            .and_then(Value::as_str)
            .ok_or_else(invalid)?
            .to_owned();
        let attributes = match answer.get("attributes") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(category, values)| {
                    let values = values
                        .as_array()
                        .ok_or_else(invalid)?
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned).ok_or_else(invalid))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok((category.clone(), values))
                })
                .collect::<Result<_, AuthFailure>>()?,
            Some(_) => return Err(invalid()),
        };
        let tenant = match tenant_field
            .and_then(|f| answer.get(f))
            .and_then(Value::as_str)
        {
            Some(raw) => normalize_tenant(raw).map_err(AuthFailure::Unauthorized)?,
            None => None,
        };
        Ok(Authenticated {
            principal: principal_with(principal, attributes, "custom"),
            tenant,
        })
    }

    /// The login and `{login, id, organizations}` of a GitHub token's user.
    async fn github(&self, base: &str, token: &str) -> Result<(String, Value), AuthFailure> {
        let get = |path: String| {
            self.client
                .http()
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .header("accept", "application/vnd.github.v3+json")
        };
        let rejected = || {
            AuthFailure::Unauthorized(
                "GitHub token validation failed. Please check your token and try again.".into(),
            )
        };
        let response = ServiceClient::send(get("/user".into()), "the GitHub API").await?;
        if !response.status().is_success() {
            tracing::warn!("GitHub token validation failed: {}", response.status());
            return Err(rejected());
        }
        let user: Value = ServiceClient::json_of(response)
            .await
            .map_err(|_| rejected())?;
        let login = user
            .get("login")
            .and_then(Value::as_str)
            .ok_or_else(rejected)?
            .to_owned();
        let id = match user.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let mut organizations: Vec<String> = Vec::new();
        for page in 1..=MAX_GITHUB_ORG_PAGES {
            let orgs = match get(format!("/user/orgs?per_page=100&page={page}"))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {
                    ServiceClient::json_of::<Vec<Value>>(r).await.ok()
                }
                _ => None,
            };
            let Some(orgs) = orgs else {
                tracing::warn!(
                    "Failed to fetch GitHub organization memberships (page {page}); proceeding with what was read"
                );
                break;
            };
            for org in &orgs {
                if let Some(name) = org.get("login").and_then(Value::as_str)
                    && !organizations.iter().any(|o| o == name)
                {
                    organizations.push(name.to_owned());
                }
            }
            if orgs.len() < 100 {
                break;
            }
        }
        Ok((
            login.clone(),
            json!({"login": login, "id": id, "organizations": organizations}),
        ))
    }

    /// `status.userInfo` of the caller's `SelfSubjectReview`.
    async fn self_subject_review(
        &self,
        api_server: &str,
        token: &str,
    ) -> Result<Value, AuthFailure> {
        let url = reqwest::Url::parse(api_server)
            .and_then(|u| u.join("/apis/authentication.k8s.io/v1/selfsubjectreviews"))
            .map_err(|_| AuthFailure::Unavailable)?;
        let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
        let response = ServiceClient::send(
            ServiceClient::with_json(self.client.http().post(url).bearer_auth(token), &review),
            "Kubernetes API server",
        )
        .await?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(AuthFailure::Unauthorized("Invalid token".into()));
        }
        if status != reqwest::StatusCode::CREATED {
            tracing::warn!("Kubernetes SelfSubjectReview API failed with status code {status}");
            return Err(AuthFailure::Unauthorized(format!(
                "Token validation failed: {}",
                status.as_u16()
            )));
        }
        let review: Value = ServiceClient::json_of(response)
            .await
            .map_err(|e| AuthFailure::Unauthorized(format!("Token validation error: {e}")))?;
        let missing = |what: &str| {
            AuthFailure::Unauthorized(format!(
                "Token validation error: No {what} found in SelfSubjectReview response"
            ))
        };
        let status = review
            .get("status")
            .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()))
            .ok_or_else(|| missing("status"))?;
        status
            .get("userInfo")
            .filter(|u| u.as_object().is_some_and(|m| !m.is_empty()))
            .cloned()
            .ok_or_else(|| missing("userInfo"))
    }
}
