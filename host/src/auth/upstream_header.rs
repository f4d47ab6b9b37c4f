//! `upstream_header`: a gateway in front of ogx (Authorino, Istio, any reverse proxy) has
//! authenticated the caller and names it in headers; ogx reads them and calls nobody.
//!
//! **Threat.** Anyone who can reach ogx directly could set those headers. With
//! `trusted_proxy_cidrs` set, a request whose peer address is outside them is refused with
//! 403 before any header is read (as OGX 1.5.0); without it, the operator must make sure only
//! the gateway reaches ogx. The attributes come from `attributes_header` (a JSON object of
//! category → values) and `attribute_headers` (header → category; a JSON list or string, or
//! the raw text), merged.

use super::authenticator::{AuthFailure, Authenticated, RequestFacts, principal_with};
use super::config::{UpstreamHeaderConfig, normalize_tenant};
use serde_json::Value;
use std::collections::BTreeMap;

pub struct UpstreamHeaderProvider {
    config: UpstreamHeaderConfig,
}

impl UpstreamHeaderProvider {
    pub fn new(config: UpstreamHeaderConfig) -> Self {
        Self { config }
    }

    pub fn authenticate(&self, request: &RequestFacts<'_>) -> Result<Authenticated, AuthFailure> {
        if let Some(networks) = &self.config.trusted_proxy_cidrs {
            let Some(client) = request.client else {
                return Err(AuthFailure::Forbidden(
                    "Request rejected: unable to determine client IP for proxy verification".into(),
                ));
            };
            let client = client.to_canonical();
            if !networks.iter().any(|net| net.contains(&client)) {
                tracing::warn!(%client, "Client IP not in trusted proxy CIDR allowlist");
                return Err(AuthFailure::Forbidden(
                    "Request rejected: client IP is not in trusted proxy CIDR allowlist".into(),
                ));
            }
        }
        let header = |name: &str| request.headers.get(name).filter(|v| !v.is_empty());
        let principal = header(&self.config.principal_header)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .ok_or_else(|| {
                AuthFailure::Unauthorized(format!(
                    "Missing required authentication header: {}",
                    self.config.principal_header
                ))
            })?;
        let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        if let Some(value) = self.config.attributes_header.as_deref().and_then(header) {
            let invalid = |what: &str| {
                AuthFailure::Unauthorized(format!(
                    "Failed to parse authentication attributes header: {what}"
                ))
            };
            let parsed: Value =
                serde_json::from_slice(value.as_bytes()).map_err(|_| invalid("invalid JSON"))?;
            let Value::Object(map) = parsed else {
                return Err(invalid("expected JSON object"));
            };
            for (category, values) in map {
                attributes.insert(category, strings(values));
            }
        }
        for (name, category) in &self.config.attribute_headers {
            if let Some(value) = header(name) {
                let text = String::from_utf8_lossy(value.as_bytes()).into_owned();
                let values = match serde_json::from_str::<Value>(&text) {
                    Ok(parsed) => strings(parsed),
                    Err(_) => vec![text],
                };
                attributes
                    .entry(category.clone())
                    .or_default()
                    .extend(values);
            }
        }
        let tenant = match self.config.tenant_header.as_deref().and_then(header) {
            Some(value) => normalize_tenant(&String::from_utf8_lossy(value.as_bytes()))
                .map_err(AuthFailure::Unauthorized)?,
            None => None,
        };
        Ok(Authenticated {
            principal: principal_with(principal, attributes, "upstream_header"),
            tenant,
        })
    }
}

/// A JSON value as attribute values: a list's items, or the one value, as text.
fn strings(value: Value) -> Vec<String> {
    let text = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    match value {
        Value::Array(items) => items.into_iter().map(text).collect(),
        other => vec![text(other)],
    }
}
