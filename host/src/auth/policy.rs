//! `server.auth.route_policy` and `server.auth.access_policy`: OGX 1.5.0's rules, parsed at
//! start-up (a bad rule stops start-up naming its key) and evaluated per request.
//!
//! **Route policy** decides which routes a caller may call: rules `{permit|forbid: {paths},
//! when|unless, description}`, patterns exact, `prefix*`, `*` or `regex:<re>` (trailing slash
//! of the request path ignored). The first matching rule decides; no match is a denial; an
//! empty policy allows every route. A rule with conditions never matches without a caller.
//!
//! **Access policy** decides what a caller may do with a stored row (resource
//! `sql_record::<table>::<id>`): rules `{permit|forbid: {principal?, actions, resource?},
//! when|unless, description}`. The first rule whose scope and conditions match decides; no
//! match denies. An empty policy is OGX's default: permit when the caller shares a
//! `roles`/`teams`/`projects`/`namespaces` value with the row's owner, is its owner, or the row
//! is unowned. Without a caller (authentication off) everything is allowed, and an owner in
//! another tenant is denied before any rule.

use super::conditions::{Caller, Condition, Resource, tenant_mismatch};
use crate::config::fields::{Invalid, Section, type_name};
use regex::Regex;
use serde_json::Value;

/// The attribute categories OGX knows; the default policy compares these.
pub const ATTRIBUTE_CATEGORIES: [&str; 4] = ["roles", "teams", "projects", "namespaces"];

/// What is done to a stored row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Read,
    Update,
    Delete,
}

impl Action {
    const ALL: [Action; 4] = [Action::Create, Action::Read, Action::Update, Action::Delete];

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == text)
    }

    fn name(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Read => "read",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// A rule's conditions: all of `when` must hold, or none of `unless` may.
#[derive(Debug, Clone, Default)]
enum Conditions {
    #[default]
    None,
    When(Vec<Condition>),
    Unless(Vec<Condition>),
}

impl Conditions {
    fn hold(&self, resource: &Resource<'_>, caller: &Caller<'_>) -> bool {
        match self {
            Conditions::None => true,
            Conditions::When(all) => all.iter().all(|c| c.matches(resource, caller)),
            Conditions::Unless(any) => !any.iter().any(|c| c.matches(resource, caller)),
        }
    }
}

/// A path pattern of a route rule.
#[derive(Debug, Clone)]
enum PathPattern {
    Any,
    Exact(String),
    Prefix(String),
    Regex(Regex),
}

impl PathPattern {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathPattern::Any => true,
            PathPattern::Exact(p) => p == path,
            PathPattern::Prefix(p) => path.starts_with(p.as_str()),
            // Python's re.match anchors at the start only.
            PathPattern::Regex(re) => re.find(path).is_some_and(|m| m.start() == 0),
        }
    }
}

/// One `route_policy` rule.
#[derive(Debug, Clone)]
pub struct RouteRule {
    permit: bool,
    paths: Vec<PathPattern>,
    conditions: Conditions,
}

/// A resource pattern of an access rule.
#[derive(Debug, Clone)]
enum ResourcePattern {
    Exact(String),
    TypeWildcard(String),
    Regex(Regex),
}

/// The scope of an access rule.
#[derive(Debug, Clone)]
struct Scope {
    principal: Option<String>,
    actions: Vec<Action>,
    resource: Option<ResourcePattern>,
}

/// One `access_policy` rule.
#[derive(Debug, Clone)]
pub struct AccessRule {
    permit: bool,
    scope: Scope,
    conditions: Conditions,
}

/// Whether `caller` may call `path` (`None`: no authentication configured).
pub fn route_allowed(policy: &[RouteRule], path: &str, caller: Option<&Caller<'_>>) -> bool {
    if policy.is_empty() {
        return true;
    }
    let path = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    };
    let route = Resource {
        kind: "route",
        id: "route",
        owner: None,
    };
    for rule in policy {
        if !rule.paths.iter().any(|p| p.matches(path)) {
            continue;
        }
        let applies = match (&rule.conditions, caller) {
            (Conditions::None, _) => true,
            (_, None) => false,
            (conditions, Some(caller)) => conditions.hold(&route, caller),
        };
        if applies {
            return rule.permit;
        }
    }
    false
}

/// Whether `caller` may do `action` on `resource` (`None`: no authentication configured).
pub fn action_allowed(
    policy: &[AccessRule],
    action: Action,
    resource: &Resource<'_>,
    caller: Option<&Caller<'_>>,
) -> bool {
    let Some(caller) = caller else {
        return true;
    };
    if tenant_mismatch(resource, caller) {
        return false;
    }
    if policy.is_empty() {
        return default_allows(resource, caller);
    }
    let qualified = format!("{}::{}", resource.kind, resource.id);
    for rule in policy {
        if rule.scope.matches(action, &qualified, &caller.principal.id)
            && rule.conditions.hold(resource, caller)
        {
            return rule.permit;
        }
    }
    false
}

/// OGX's default policy: a shared attribute with the owner, the owner, or no owner.
fn default_allows(resource: &Resource<'_>, caller: &Caller<'_>) -> bool {
    ATTRIBUTE_CATEGORIES
        .iter()
        .any(|c| Condition::UserInOwners((*c).to_owned()).matches(resource, caller))
        || Condition::UserIsOwner.matches(resource, caller)
        || resource.owner.is_none()
}

impl Scope {
    fn matches(&self, action: Action, qualified: &str, principal: &str) -> bool {
        if let Some(pattern) = &self.resource {
            let hit = match pattern {
                ResourcePattern::Exact(r) => r == qualified,
                ResourcePattern::TypeWildcard(prefix) => qualified.starts_with(prefix.as_str()),
                ResourcePattern::Regex(re) => re.find(qualified).is_some_and(|m| m.start() == 0),
            };
            if !hit {
                return false;
            }
        }
        if self.principal.as_deref().is_some_and(|p| p != principal) {
            return false;
        }
        self.actions.contains(&action)
    }
}

/// Parses `server.auth.route_policy` (`value` is the list).
pub fn parse_route_policy(value: Option<&Value>, path: &str) -> Result<Vec<RouteRule>, Invalid> {
    rules(value, path)?
        .into_iter()
        .map(|(key, rule)| {
            let (permit, scope) = permit_or_forbid(&rule, &key)?;
            let scope_key = format!("{key}.{}", verb(permit));
            let scope = Section::of(Some(scope), &scope_key)?.expect("checked to be a mapping");
            let paths_key = scope.key("paths");
            let paths = match scope.get("paths") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(_)) => scope.string_list("paths")?,
                _ => {
                    return Err(Invalid::new(
                        &paths_key,
                        "is required: a path or a list of paths",
                        "Write e.g. `paths: [\"/v1/models*\", \"/v1/chat/completions\"]`.",
                    ));
                }
            };
            let paths = paths
                .iter()
                .map(|p| path_pattern(p, &paths_key))
                .collect::<Result<_, _>>()?;
            Ok(RouteRule {
                permit,
                paths,
                conditions: conditions(&rule, &key)?,
            })
        })
        .collect()
}

/// Parses `server.auth.access_policy` (`value` is the list).
pub fn parse_access_policy(value: Option<&Value>, path: &str) -> Result<Vec<AccessRule>, Invalid> {
    rules(value, path)?
        .into_iter()
        .map(|(key, rule)| {
            let (permit, scope) = permit_or_forbid(&rule, &key)?;
            let scope_key = format!("{key}.{}", verb(permit));
            let s = Section::of(Some(scope), &scope_key)?.expect("checked to be a mapping");
            let actions = match s.get("actions") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(_)) => s.string_list("actions")?,
                _ => Vec::new(),
            };
            if actions.is_empty() {
                return Err(Invalid::new(
                    s.key("actions"),
                    "is required: one of create, read, update, delete or a list of them",
                    "Write e.g. `actions: [read]`.",
                ));
            }
            let actions = actions
                .iter()
                .map(|a| {
                    Action::parse(a).ok_or_else(|| {
                        Invalid::new(
                            s.key("actions"),
                            format!("unknown action '{a}'"),
                            "Use create, read, update or delete.",
                        )
                    })
                })
                .collect::<Result<_, _>>()?;
            let resource = s
                .string("resource")?
                .map(|r| resource_pattern(&r, &s.key("resource")))
                .transpose()?;
            Ok(AccessRule {
                permit,
                scope: Scope {
                    principal: s.string("principal")?,
                    actions,
                    resource,
                },
                conditions: conditions(&rule, &key)?,
            })
        })
        .collect()
}

fn verb(permit: bool) -> &'static str {
    if permit { "permit" } else { "forbid" }
}

/// The rules of a policy list with their dotted keys.
fn rules(value: Option<&Value>, path: &str) -> Result<Vec<(String, Value)>, Invalid> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items
            .iter()
            .enumerate()
            .map(|(i, item)| (format!("{path}[{i}]"), item.clone()))
            .collect()),
        Some(other) => Err(Invalid::new(
            path,
            format!("expected a list of rules, found {}", type_name(other)),
            "Write one `- permit: ...` or `- forbid: ...` entry per rule.",
        )),
    }
}

fn permit_or_forbid<'a>(rule: &'a Value, key: &str) -> Result<(bool, &'a Value), Invalid> {
    let fix = "Give each rule exactly one of `permit:` or `forbid:`.";
    let Some(map) = rule.as_object() else {
        return Err(Invalid::new(
            key,
            format!("expected a rule mapping, found {}", type_name(rule)),
            fix,
        ));
    };
    let permit = map.get("permit").filter(|v| !v.is_null());
    let forbid = map.get("forbid").filter(|v| !v.is_null());
    match (permit, forbid) {
        (Some(p), None) => Ok((true, p)),
        (None, Some(f)) => Ok((false, f)),
        (Some(_), Some(_)) => Err(Invalid::new(
            key,
            "permit and forbid are mutually exclusive",
            fix,
        )),
        (None, None) => Err(Invalid::new(
            key,
            "one of permit or forbid is required",
            fix,
        )),
    }
}

fn conditions(rule: &Value, key: &str) -> Result<Conditions, Invalid> {
    let list = |name: &str| -> Result<Option<Vec<Condition>>, Invalid> {
        let texts = match rule.get(name).filter(|v| !v.is_null()) {
            None => return Ok(None),
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().unwrap_or_default().to_owned())
                .collect(),
            Some(other) => {
                return Err(Invalid::new(
                    format!("{key}.{name}"),
                    format!(
                        "expected a condition or a list of them, found {}",
                        type_name(other)
                    ),
                    "Write e.g. `when: user with admin in roles`.",
                ));
            }
        };
        texts
            .iter()
            .map(|t| {
                Condition::parse(t).map_err(|problem| {
                    Invalid::new(
                        format!("{key}.{name}"),
                        problem,
                        "Use one of: user is owner, user is not owner, user with <value> in <category>, user with <value> not in <category>, user in owners <category>, user not in owners <category>, resource is unowned.",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    };
    match (list("when")?, list("unless")?) {
        (Some(_), Some(_)) => Err(Invalid::new(
            key,
            "when and unless are mutually exclusive",
            "Keep one of `when:` or `unless:` in this rule.",
        )),
        (Some(when), None) => Ok(Conditions::When(when)),
        (None, Some(unless)) => Ok(Conditions::Unless(unless)),
        (None, None) => Ok(Conditions::None),
    }
}

fn regex(pattern: &str, key: &str) -> Result<Regex, Invalid> {
    Regex::new(pattern).map_err(|error| {
        Invalid::new(
            key,
            format!("'regex:{pattern}' is not a valid regular expression: {error}"),
            "Fix the expression after `regex:`.",
        )
    })
}

fn path_pattern(pattern: &str, key: &str) -> Result<PathPattern, Invalid> {
    Ok(if pattern == "*" {
        PathPattern::Any
    } else if let Some(re) = pattern.strip_prefix("regex:") {
        PathPattern::Regex(regex(re, key)?)
    } else if let Some(prefix) = pattern.strip_suffix('*') {
        PathPattern::Prefix(prefix.to_owned())
    } else {
        PathPattern::Exact(pattern.to_owned())
    })
}

fn resource_pattern(pattern: &str, key: &str) -> Result<ResourcePattern, Invalid> {
    Ok(if let Some(re) = pattern.strip_prefix("regex:") {
        ResourcePattern::Regex(regex(re, key)?)
    } else if let Some(kind) = pattern.strip_suffix("::*") {
        ResourcePattern::TypeWildcard(format!("{kind}::"))
    } else {
        ResourcePattern::Exact(pattern.to_owned())
    })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
