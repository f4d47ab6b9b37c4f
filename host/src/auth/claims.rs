//! `claims_mapping`: which claims of a token (or fields of an auth service's answer) become
//! which access-attribute category, as OGX 1.5.0 reads them.
//!
//! A claim key is a dotted path into nested objects (`resource_access.ogx.roles`; `\.` is a
//! literal dot), falling back to a top-level key that contains dots. A list claim gives its
//! items, a string claim its space-separated words (OAuth's `scope`); anything else is skipped.
//! Several claims mapped to one category add up, in config order.

use super::config::ClaimsMapping;
use serde_json::Value;
use std::collections::BTreeMap;

/// The attributes `claims` give under `mapping`.
pub fn attributes_from_claims(
    claims: &Value,
    mapping: &ClaimsMapping,
) -> BTreeMap<String, Vec<String>> {
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (claim_key, category) in mapping {
        let found = nested(claims, claim_key).or_else(|| claims.get(claim_key.as_str()));
        let values: Vec<String> = match found {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s.clone()),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
            _ => continue,
        };
        attributes
            .entry(category.clone())
            .or_default()
            .extend(values);
    }
    attributes
}

/// `claims` at the dotted `path` (`\.` escapes a dot).
fn nested<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                current.push('.');
                chars.next();
            }
            '.' => parts.push(std::mem::take(&mut current)),
            other => current.push(other),
        }
    }
    parts.push(current);
    parts
        .iter()
        .try_fold(claims, |value, key| value.get(key.as_str()))
        .filter(|v| !v.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claims_map_like_ogx() {
        let claims = json!({
            "sub": "alice",
            "scope": "read write",
            "groups": ["ml", "nlp"],
            "team": "ml",
            "resource_access": {"ogx": {"roles": ["admin"]}},
            "kubernetes.io": {"namespace": "prod"},
            "a.b": ["literal"],
            "count": 3,
        });
        let mapping: ClaimsMapping = [
            ("sub", "roles"),
            ("resource_access.ogx.roles", "roles"),
            ("groups", "teams"),
            ("team", "teams"),
            ("scope", "scopes"),
            ("kubernetes\\.io.namespace", "namespaces"),
            ("a.b", "projects"),
            ("count", "projects"),
            ("missing", "roles"),
        ]
        .iter()
        .map(|(c, a)| (c.to_string(), a.to_string()))
        .collect();
        let attributes = attributes_from_claims(&claims, &mapping);
        let get = |k: &str| attributes[k].clone();
        assert_eq!(get("roles"), ["alice", "admin"]);
        assert_eq!(get("teams"), ["ml", "nlp", "ml"]);
        assert_eq!(get("scopes"), ["read", "write"]);
        assert_eq!(get("namespaces"), ["prod"]);
        assert_eq!(get("projects"), ["literal"]);
    }
}
