//! Who owns a stored row, in the columns OGX 1.5.0's `AuthorizedSqlStore` adds to every table:
//! `owner_principal` (the caller's principal; NULL when nobody was authenticated),
//! `access_attributes` (the caller's attributes as JSON; NULL when anonymous) and `tenant_id`
//! (the caller's tenant with `server.tenancy` on; NULL otherwise).
//!
//! The columns are written once, when the row is first inserted: replacing a row (same id)
//! never changes its owner, as in OGX. A column another program left out is added (nullable)
//! when the table is opened ([`COLUMN_TYPES`]).

use super::sql::SqlValue;
use serde_json::Value;
use std::collections::BTreeMap;

/// The owner columns, in the order [`Owner::params`] gives and [`Owner::from_values`] reads.
pub const COLUMNS: &str = "owner_principal, access_attributes, tenant_id";

/// The owner columns and their types, for `paging::add_missing_columns`.
pub const COLUMN_TYPES: [(&str, &str); 3] = [
    ("owner_principal", "VARCHAR"),
    ("access_attributes", "JSON"),
    ("tenant_id", "VARCHAR"),
];

/// A row's owner; the default is an anonymous row outside any tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// Empty: written without authentication.
    pub principal: String,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub tenant: Option<String>,
}

impl Owner {
    /// Whether an authenticated caller wrote the row.
    pub fn is_owned(&self) -> bool {
        !self.principal.is_empty()
    }

    /// The values of [`COLUMNS`].
    pub fn params(&self) -> [SqlValue; 3] {
        if !self.is_owned() {
            return [
                SqlValue::Null,
                SqlValue::Null,
                self.tenant.clone().map_or(SqlValue::Null, SqlValue::Text),
            ];
        }
        let attributes = serde_json::to_value(&self.attributes).unwrap_or(Value::Null);
        [
            SqlValue::Text(self.principal.clone()),
            SqlValue::Json(attributes),
            self.tenant.clone().map_or(SqlValue::Null, SqlValue::Text),
        ]
    }

    /// An owner read back from [`COLUMNS`] (values OGX wrote included: `""` principal).
    pub fn from_values(principal: SqlValue, attributes: SqlValue, tenant: SqlValue) -> Self {
        let text = |value: SqlValue| value.into_text().ok().filter(|t| !t.is_empty());
        let attributes = match attributes.into_json() {
            Value::Object(map) => map
                .into_iter()
                .filter_map(|(category, values)| {
                    let values = values
                        .as_array()?
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    Some((category, values))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Owner {
            principal: text(principal).unwrap_or_default(),
            attributes,
            tenant: text(tenant),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip_through_their_columns() {
        let owner = Owner {
            principal: "alice".into(),
            attributes: BTreeMap::from([("roles".to_string(), vec!["admin".to_string()])]),
            tenant: Some("acme".into()),
        };
        let [p, a, t] = owner.params();
        assert_eq!(Owner::from_values(p, a, t), owner);
        let [p, a, t] = Owner::default().params();
        assert_eq!(
            (&p, &a, &t),
            (&SqlValue::Null, &SqlValue::Null, &SqlValue::Null)
        );
        assert_eq!(Owner::from_values(p, a, t), Owner::default());
        let ogx_anonymous = Owner::from_values(
            SqlValue::Text(String::new()),
            SqlValue::Text("null".into()),
            SqlValue::Null,
        );
        assert!(!ogx_anonymous.is_owned());
    }
}
