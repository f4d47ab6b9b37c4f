//! The conditions of OGX's policy rules (`when:` / `unless:`), parsed once at start-up and
//! evaluated per request against the caller and, for stored rows, the row's owner.
//!
//! The grammar is OGX 1.5.0's, word for word: `user is owner`, `user is not owner`,
//! `user with <value> in <category>`, `user with <value> not in <category>`,
//! `user in owners <category>`, `user not in owners <category>`, `resource is unowned`.
//! Anything else is refused at start-up with the condition quoted. Owner conditions respect
//! tenancy: an owner in another tenant is never "the owner" nor shares attributes.

use super::Principal;
pub use crate::storage::owner::Owner;
#[cfg(test)]
use std::collections::BTreeMap;

/// The caller as a policy sees it: its principal and, with tenancy on, its tenant.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub principal: &'a Principal,
    pub tenant: Option<&'a str>,
}

/// What a rule is checked against: `type::identifier` and its owner (`None`: unowned).
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    pub kind: &'a str,
    pub id: &'a str,
    pub owner: Option<&'a Owner>,
}

/// One parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    UserIsOwner,
    UserIsNotOwner,
    UserWithValueIn { value: String, category: String },
    UserWithValueNotIn { value: String, category: String },
    UserInOwners(String),
    UserNotInOwners(String),
    ResourceIsUnowned,
}

impl Condition {
    /// Parses one condition; the error quotes it as OGX does ("Invalid condition: ...").
    pub fn parse(text: &str) -> Result<Self, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        Ok(match words.as_slice() {
            ["user", "is", "owner"] => Condition::UserIsOwner,
            ["user", "is", "not", "owner"] => Condition::UserIsNotOwner,
            ["user", "with", value, "in", category] => Condition::UserWithValueIn {
                value: (*value).to_owned(),
                category: (*category).to_owned(),
            },
            ["user", "with", value, "not", "in", category] => Condition::UserWithValueNotIn {
                value: (*value).to_owned(),
                category: (*category).to_owned(),
            },
            ["user", "in", "owners", category] => Condition::UserInOwners((*category).to_owned()),
            ["user", "not", "in", "owners", category] => {
                Condition::UserNotInOwners((*category).to_owned())
            }
            ["resource", "is", "unowned"] => Condition::ResourceIsUnowned,
            _ => return Err(format!("Invalid condition: {text}")),
        })
    }

    /// Whether the condition holds for `caller` on `resource`.
    pub fn matches(&self, resource: &Resource<'_>, caller: &Caller<'_>) -> bool {
        match self {
            Condition::UserIsOwner => resource.owner.is_some_and(|owner| {
                owner.principal == caller.principal.id && !tenant_mismatch(resource, caller)
            }),
            Condition::UserIsNotOwner => {
                !tenant_mismatch(resource, caller)
                    && resource
                        .owner
                        .is_none_or(|owner| owner.principal != caller.principal.id)
            }
            Condition::UserWithValueIn { value, category } => {
                caller.principal.attribute(category).contains(value)
            }
            Condition::UserWithValueNotIn { value, category } => {
                !caller.principal.attribute(category).contains(value)
            }
            Condition::UserInOwners(category) => in_owners(category, resource, caller),
            Condition::UserNotInOwners(category) => {
                !tenant_mismatch(resource, caller) && !in_owners(category, resource, caller)
            }
            Condition::ResourceIsUnowned => resource.owner.is_none(),
        }
    }
}

/// Both sides carry a tenant and they differ: OGX denies before any rule.
pub fn tenant_mismatch(resource: &Resource<'_>, caller: &Caller<'_>) -> bool {
    match (
        resource.owner.and_then(|o| o.tenant.as_deref()),
        caller.tenant,
    ) {
        (Some(owner), Some(user)) if !owner.is_empty() && !user.is_empty() => owner != user,
        _ => false,
    }
}

fn in_owners(category: &str, resource: &Resource<'_>, caller: &Caller<'_>) -> bool {
    if tenant_mismatch(resource, caller) {
        return false;
    }
    let Some(defined) = resource
        .owner
        .and_then(|owner| owner.attributes.get(category))
    else {
        return false;
    };
    let user_values = caller.principal.attribute(category);
    defined.iter().any(|value| user_values.contains(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::PrincipalSource;

    fn principal(id: &str, roles: &[&str]) -> Principal {
        Principal {
            id: id.into(),
            attributes: BTreeMap::from([(
                "roles".to_string(),
                roles.iter().map(|r| r.to_string()).collect(),
            )]),
            source: PrincipalSource::ServerAuth {
                provider_type: "custom".into(),
            },
        }
    }

    #[test]
    fn the_grammar_is_ogx_s_and_nothing_else() {
        for (text, parsed) in [
            ("user is owner", Ok(Condition::UserIsOwner)),
            ("user  is not   owner", Ok(Condition::UserIsNotOwner)),
            (
                "user with admin in roles",
                Ok(Condition::UserWithValueIn {
                    value: "admin".into(),
                    category: "roles".into(),
                }),
            ),
            (
                "user not in owners teams",
                Ok(Condition::UserNotInOwners("teams".into())),
            ),
            ("resource is unowned", Ok(Condition::ResourceIsUnowned)),
            (
                "user in owner teams",
                Err("Invalid condition: user in owner teams".to_string()),
            ),
        ] {
            assert_eq!(Condition::parse(text), parsed, "{text}");
        }
    }

    #[test]
    fn owner_conditions_follow_principal_attributes_and_tenant() {
        let owner = Owner {
            principal: "alice".into(),
            attributes: BTreeMap::from([("roles".to_string(), vec!["ml".to_string()])]),
            tenant: Some("t1".into()),
        };
        let resource = Resource {
            kind: "sql_record::t",
            id: "1",
            owner: Some(&owner),
        };
        let alice = principal("alice", &[]);
        let bob = principal("bob", &["ml"]);
        let carol = principal("carol", &["other"]);
        let at = |p, t| Caller {
            principal: p,
            tenant: t,
        };
        let cases = [
            (Condition::UserIsOwner, at(&alice, Some("t1")), true),
            (Condition::UserIsOwner, at(&alice, Some("t2")), false),
            (Condition::UserIsOwner, at(&alice, None), true),
            (Condition::UserIsNotOwner, at(&bob, None), true),
            (Condition::UserIsNotOwner, at(&bob, Some("t2")), false),
            (
                Condition::UserInOwners("roles".into()),
                at(&bob, None),
                true,
            ),
            (
                Condition::UserInOwners("roles".into()),
                at(&carol, None),
                false,
            ),
            (
                Condition::UserNotInOwners("roles".into()),
                at(&carol, None),
                true,
            ),
            (Condition::ResourceIsUnowned, at(&carol, None), false),
        ];
        for (condition, caller, expected) in cases {
            assert_eq!(
                condition.matches(&resource, &caller),
                expected,
                "{condition:?} {}",
                caller.principal.id
            );
        }
        let unowned = Resource {
            owner: None,
            ..resource
        };
        assert!(Condition::ResourceIsUnowned.matches(&unowned, &at(&carol, None)));
        assert!(!Condition::UserIsOwner.matches(&unowned, &at(&alice, None)));
    }
}
