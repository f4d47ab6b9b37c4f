//! Who is calling, and what they may do: OGX's server security (`server.auth`,
//! `server.tenancy`) and the identity every authenticated request carries.
//!
//! Authentication (OGX's `server.auth` providers, ogx's own gateway keys) establishes a
//! [`Principal`] and puts it into the request's extensions; everything after it (route and
//! access policies, stored rows' owners, limits, metrics) reads it from there and never
//! re-authenticates. A request without a `Principal` extension was not authenticated (no
//! authentication configured). [`middleware`] does OGX's authentication, tenancy and route
//! policy; [`policy`] holds the rules; handlers read the caller with [`Identity`] and ask
//! [`middleware::ServerSecurity::row_allowed`] about stored rows. Refusals are typed
//! ([`middleware::AccessDenied`]) and answered by `server::errors`.

pub mod authenticator;
pub mod claims;
pub mod conditions;
pub mod config;
pub mod middleware;
pub mod oauth2;
pub mod policy;
pub mod principal;
pub mod services;
pub mod upstream_header;

pub use principal::{Principal, PrincipalSource};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::convert::Infallible;

/// The tenant a request belongs to (`server.tenancy`), a request extension next to the
/// [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub String);

/// The caller of a request as a handler sees it: nobody when authentication is off.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub principal: Option<Principal>,
    pub tenant: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Identity {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Identity {
            principal: parts.extensions.get::<Principal>().cloned(),
            tenant: parts.extensions.get::<Tenant>().map(|t| t.0.clone()),
        })
    }
}
