//! Who is calling: the identity every authenticated request carries through the server.
//!
//! Authentication (OGX's `server.auth` providers, ogx's own gateway keys) establishes a
//! [`Principal`] and puts it into the request's extensions; everything after it (route and
//! access policies, stored rows' owners, limits, metrics) reads it from there and never
//! re-authenticates. A request without a `Principal` extension was not authenticated (no
//! authentication configured). Nothing here fails: this module only names the identity.

pub mod principal;

pub use principal::{Principal, PrincipalSource};
