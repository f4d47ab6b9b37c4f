//! The caller's identity as OGX 1.5.0 records it: a principal name (written to stored rows'
//! `owner_principal`) and access attributes by category (`roles`, `teams`, `projects`,
//! `namespaces`, written to `access_attributes`), plus how ogx established it.

use std::collections::BTreeMap;

/// An authenticated caller, stored as a request extension by the authentication layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal's name (OGX's `User.principal`).
    pub id: String,
    /// Access attributes by category (OGX's `User.attributes`); empty when there are none.
    pub attributes: BTreeMap<String, Vec<String>>,
    /// What established the identity.
    pub source: PrincipalSource,
}

/// What established a [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalSource {
    /// One of OGX's `server.auth.provider_config` types (`oauth2_token`, `custom`, ...).
    ServerAuth {
        /// The provider type as the config names it.
        provider_type: String,
    },
    /// A gateway key that ogx issued; `key_id` is its public id, never its secret.
    GatewayKey { key_id: String },
}

impl Principal {
    /// The values of one attribute category (empty when the principal has none).
    pub fn attribute(&self, category: &str) -> &[String] {
        self.attributes
            .get(category)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_attribute_category_reads_as_empty() {
        let principal = Principal {
            id: "alice".into(),
            attributes: BTreeMap::from([("roles".to_string(), vec!["admin".to_string()])]),
            source: PrincipalSource::GatewayKey {
                key_id: "gk_1".into(),
            },
        };
        assert_eq!(principal.attribute("roles"), ["admin".to_string()]);
        assert!(principal.attribute("teams").is_empty());
    }
}
