//! The request-side of OGX's server security, as one axum middleware in OGX 1.5.0's order:
//! authentication, then tenancy, then the route policy.
//!
//! - **Authentication.** A request that already carries a [`Principal`] (an ogx gateway key,
//!   checked by an outer layer) is taken as it is. Otherwise the configured provider
//!   authenticates it, except on the public routes [`PUBLIC_ROUTES`] (`GET /v1/health`,
//!   `GET /v1/version`); the [`Principal`] and [`Tenant`] go into the request's extensions.
//! - **Tenancy.** `single` puts every request in its tenant (principal "system" when
//!   unauthenticated); `multi` refuses a non-public request without a tenant (401).
//! - **Route policy.** First matching rule decides; 403 otherwise.
//!
//! Every refusal is an [`AccessDenied`], answered by `server::errors` (OGX's bodies, no
//! `WWW-Authenticate` header, as OGX 1.5.0), and leaves the server serving.

use super::authenticator::{AuthFailure, Authenticator, RequestFacts};
use super::conditions::{Caller, Owner, Resource};
use super::config::{AuthSettings, Tenancy};
use super::policy::{self, AccessRule, Action, RouteRule};
use super::{Identity, Principal, PrincipalSource, Tenant};
use crate::server::errors::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Routes answered without authentication (OGX's `x-public`), method and path.
pub const PUBLIC_ROUTES: [(&str, &str); 2] = [("GET", "/v1/health"), ("GET", "/v1/version")];

/// Why a request was refused before reaching its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessDenied {
    /// The provider did not authenticate it.
    Auth(AuthFailure),
    /// `route_policy` denies the path (403).
    Route(String),
    /// `tenancy: multi` and no tenant resolved (401).
    NoTenant,
}

/// `server.auth` and `server.tenancy`, ready to serve.
pub struct ServerSecurity {
    authenticator: Option<Authenticator>,
    route_policy: Vec<RouteRule>,
    access_policy: Vec<AccessRule>,
    tenancy: Tenancy,
}

impl ServerSecurity {
    /// Fails only when a provider's `tls_cafile` cannot be read.
    pub fn new(settings: AuthSettings, tenancy: Tenancy) -> Result<Self, String> {
        Ok(Self {
            authenticator: settings
                .provider
                .as_ref()
                .map(Authenticator::new)
                .transpose()?,
            route_policy: settings.route_policy,
            access_policy: settings.access_policy,
            tenancy,
        })
    }

    /// Nothing configured: every request passes, rows are anonymous.
    pub fn disabled() -> Self {
        Self {
            authenticator: None,
            route_policy: Vec::new(),
            access_policy: Vec::new(),
            tenancy: Tenancy::Disabled,
        }
    }

    /// Whether any of it is on (when not, the middleware is not installed).
    pub fn is_active(&self) -> bool {
        self.authenticator.is_some()
            || !self.route_policy.is_empty()
            || self.tenancy != Tenancy::Disabled
    }

    /// Whether tenancy is on (stored rows then carry `tenant_id`).
    pub fn tenancy(&self) -> &Tenancy {
        &self.tenancy
    }

    /// The owner a row written for `identity` records: its principal and attributes, and its
    /// tenant when tenancy is on.
    pub fn owner_for(&self, identity: &Identity) -> Owner {
        let Some(principal) = &identity.principal else {
            return Owner {
                tenant: self.tenant_of(identity),
                ..Owner::default()
            };
        };
        Owner {
            principal: principal.id.clone(),
            attributes: principal.attributes.clone(),
            tenant: self.tenant_of(identity),
        }
    }

    /// The caller's tenant as stored rows see it (`None` with tenancy off).
    fn tenant_of(&self, identity: &Identity) -> Option<String> {
        match &self.tenancy {
            Tenancy::Disabled => None,
            Tenancy::Single(default) => Some(identity.tenant.clone().unwrap_or(default.clone())),
            Tenancy::Multi => identity.tenant.clone(),
        }
    }

    /// Whether `identity` may do `action` on the row `id` of `table` owned by `owner`: first
    /// the tenant partition (with tenancy on, only rows of the caller's tenant exist for it;
    /// in `single` mode rows without a tenant are the default tenant's), then the access policy.
    pub fn row_allowed(
        &self,
        identity: &Identity,
        action: Action,
        table: &str,
        id: &str,
        owner: &Owner,
    ) -> bool {
        let tenant = self.tenant_of(identity);
        let row_tenant = match &self.tenancy {
            Tenancy::Disabled => None,
            Tenancy::Single(default) => Some(owner.tenant.clone().unwrap_or(default.clone())),
            Tenancy::Multi => owner.tenant.clone(),
        };
        if self.tenancy != Tenancy::Disabled && (tenant.is_none() || tenant != row_tenant) {
            return false;
        }
        let owner = Owner {
            tenant: row_tenant,
            ..owner.clone()
        };
        let kind = format!("sql_record::{table}");
        let resource = Resource {
            kind: &kind,
            id,
            owner: owner.is_owned().then_some(&owner),
        };
        let caller = identity.principal.as_ref().map(|principal| Caller {
            principal,
            tenant: tenant.as_deref(),
        });
        policy::action_allowed(&self.access_policy, action, &resource, caller.as_ref())
    }

    async fn admit(&self, request: &mut Request) -> Result<(), AccessDenied> {
        let public = PUBLIC_ROUTES
            .iter()
            .any(|(m, p)| request.method().as_str() == *m && request.uri().path() == *p);
        // A gateway key (or the bootstrap admin key on admin routes) already decided who this is.
        let already = request.extensions().get::<Principal>().is_some()
            || request
                .extensions()
                .get::<crate::gateway_keys::guard::BootstrapAdmin>()
                .is_some();
        if let (Some(authenticator), false, false) = (&self.authenticator, already, public) {
            // The caller's credential is a secret like any other: never echoed back or logged.
            if let (Some(secrets), Some(value)) = (
                request.extensions().get::<crate::secrets::SecretSet>(),
                request
                    .headers()
                    .get(axum::http::header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok()),
            ) {
                secrets.add(value);
            }
            let client = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip());
            let facts = RequestFacts {
                headers: request.headers(),
                uri: request.uri(),
                client,
            };
            let authenticated = authenticator
                .authenticate(&facts)
                .await
                .map_err(AccessDenied::Auth)?;
            request.extensions_mut().insert(authenticated.principal);
            if let Some(tenant) = authenticated.tenant {
                request.extensions_mut().insert(Tenant(tenant));
            }
        }
        if !public {
            match &self.tenancy {
                Tenancy::Disabled => {}
                Tenancy::Single(tenant) => {
                    request.extensions_mut().insert(Tenant(tenant.clone()));
                    if request.extensions().get::<Principal>().is_none() {
                        request.extensions_mut().insert(Principal {
                            id: "system".into(),
                            attributes: Default::default(),
                            source: PrincipalSource::ServerAuth {
                                provider_type: "tenancy".into(),
                            },
                        });
                    }
                }
                Tenancy::Multi => {
                    if request.extensions().get::<Tenant>().is_none() {
                        return Err(AccessDenied::NoTenant);
                    }
                }
            }
        }
        let path = request.uri().path();
        let principal = request.extensions().get::<Principal>();
        let caller = principal.map(|principal| Caller {
            principal,
            tenant: request.extensions().get::<Tenant>().map(|t| t.0.as_str()),
        });
        if !policy::route_allowed(&self.route_policy, path, caller.as_ref()) {
            let shown = match path.strip_suffix('/') {
                Some(p) if !p.is_empty() => p,
                _ => path,
            };
            return Err(AccessDenied::Route(shown.to_owned()));
        }
        Ok(())
    }
}

/// The middleware: see the module documentation.
pub async fn enforce(
    State(security): State<Arc<ServerSecurity>>,
    mut request: Request,
    next: Next,
) -> Response {
    match security.admit(&mut request).await {
        Ok(()) => next.run(request).await,
        Err(denied) => ApiError::Access(denied).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn identity(id: Option<&str>, tenant: Option<&str>) -> Identity {
        Identity {
            principal: id.map(|id| Principal {
                id: id.into(),
                attributes: BTreeMap::new(),
                source: PrincipalSource::ServerAuth {
                    provider_type: "custom".into(),
                },
            }),
            tenant: tenant.map(str::to_owned),
        }
    }

    fn security(tenancy: Tenancy) -> ServerSecurity {
        ServerSecurity {
            tenancy,
            ..ServerSecurity::disabled()
        }
    }

    #[test]
    fn rows_are_partitioned_by_tenant_before_any_rule() {
        let single = security(Tenancy::Single("acme".into()));
        let multi = security(Tenancy::Multi);
        let off = security(Tenancy::Disabled);
        let alice_acme = identity(Some("alice"), Some("acme"));
        let alice_globex = identity(Some("alice"), Some("globex"));
        let written = multi.owner_for(&alice_acme);
        assert_eq!(written.tenant.as_deref(), Some("acme"));
        assert_eq!(off.owner_for(&alice_acme).tenant, None);
        assert_eq!(
            single.owner_for(&identity(None, None)).tenant.as_deref(),
            Some("acme")
        );
        let read = |s: &ServerSecurity, who: &Identity, owner: &Owner| {
            s.row_allowed(who, Action::Read, "t", "1", owner)
        };
        assert!(read(&multi, &alice_acme, &written));
        assert!(!read(&multi, &alice_globex, &written));
        assert!(!read(&multi, &identity(Some("alice"), None), &written));
        assert!(read(&off, &alice_globex, &written));
        // single: rows written before tenancy was on belong to the default tenant.
        let old_row = Owner {
            principal: "alice".into(),
            ..Owner::default()
        };
        assert!(read(&single, &identity(Some("alice"), None), &old_row));
        // The default policy still applies inside a tenant.
        assert!(!read(
            &multi,
            &identity(Some("bob"), Some("acme")),
            &written
        ));
        assert!(read(&off, &identity(None, None), &written));
    }
}
