use super::*;
use crate::auth::conditions::Owner;
use crate::auth::{Principal, PrincipalSource};
use serde_json::json;
use std::collections::BTreeMap;

fn user(id: &str, roles: &[&str]) -> Principal {
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

fn caller(p: &Principal) -> Caller<'_> {
    Caller {
        principal: p,
        tenant: None,
    }
}

#[test]
fn route_rules_first_match_wins_and_no_match_denies() {
    let policy = parse_route_policy(
        Some(&json!([
            {"permit": {"paths": ["/v1/models*", "/v1/health"]}},
            {"forbid": {"paths": "regex:/v1/(chat|completions)"}, "unless": "user with admin in roles"},
            {"permit": {"paths": "/v1/chat/completions"}},
        ])),
        "server.auth.route_policy",
    )
    .unwrap();
    let (admin, dev) = (user("a", &["admin"]), user("d", &["dev"]));
    for (path, who, allowed) in [
        ("/v1/models", Some(&dev), true),
        ("/v1/models/x/y/", Some(&dev), true),
        ("/v1/chat/completions", Some(&dev), false),
        ("/v1/chat/completions", Some(&admin), true),
        ("/v1/chat/completions", None, true),
        ("/v1/embeddings", Some(&admin), false),
    ] {
        let c = who.map(caller);
        assert_eq!(
            route_allowed(&policy, path, c.as_ref()),
            allowed,
            "{path} {who:?}"
        );
    }
    assert!(route_allowed(&[], "/anything", None));
}

#[test]
fn access_rules_match_scope_then_conditions() {
    let policy = parse_access_policy(
        Some(&json!([
            {"forbid": {"actions": ["delete"], "resource": "sql_record::responses::*"}, "unless": ["user with admin in roles"]},
            {"permit": {"principal": "bob", "actions": "read"}},
            {"permit": {"actions": ["read", "delete"]}, "when": "user is owner"},
        ])),
        "server.auth.access_policy",
    )
    .unwrap();
    let owner = Owner {
        principal: "alice".into(),
        ..Owner::default()
    };
    let row = Resource {
        kind: "sql_record::responses",
        id: "resp_1",
        owner: Some(&owner),
    };
    let (alice, bob, carol, root) = (
        user("alice", &[]),
        user("bob", &[]),
        user("carol", &[]),
        user("root", &["admin"]),
    );
    for (who, action, allowed) in [
        (&alice, Action::Read, true),
        (&alice, Action::Delete, false),
        (&bob, Action::Read, true),
        (&bob, Action::Update, false),
        (&carol, Action::Read, false),
        (&root, Action::Delete, false),
    ] {
        assert_eq!(
            action_allowed(&policy, action, &row, Some(&caller(who))),
            allowed,
            "{} {action:?}",
            who.id
        );
    }
    assert!(action_allowed(&policy, Action::Delete, &row, None));
}

#[test]
fn the_default_policy_shares_by_attribute_owner_or_no_owner() {
    let owner = Owner {
        principal: "alice".into(),
        attributes: BTreeMap::from([("roles".to_string(), vec!["ml".to_string()])]),
        tenant: Some("t1".into()),
    };
    let row = Resource {
        kind: "sql_record::t",
        id: "1",
        owner: Some(&owner),
    };
    let (bob, carol) = (user("bob", &["ml"]), user("carol", &[]));
    assert!(action_allowed(&[], Action::Read, &row, Some(&caller(&bob))));
    assert!(!action_allowed(
        &[],
        Action::Read,
        &row,
        Some(&caller(&carol))
    ));
    let elsewhere = Caller {
        principal: &bob,
        tenant: Some("t2"),
    };
    assert!(!action_allowed(&[], Action::Read, &row, Some(&elsewhere)));
    let unowned = Resource { owner: None, ..row };
    assert!(action_allowed(
        &[],
        Action::Read,
        &unowned,
        Some(&caller(&carol))
    ));
}

#[test]
fn bad_rules_name_their_key() {
    for (value, key, problem) in [
        (
            json!([{"permit": {"paths": "*"}, "forbid": {"paths": "*"}}]),
            "server.auth.route_policy[0]",
            "mutually exclusive",
        ),
        (
            json!([{}, {"permit": {}}]),
            "server.auth.route_policy[0]",
            "one of permit or forbid",
        ),
        (
            json!([{"permit": {"paths": "regex:("}}]),
            "server.auth.route_policy[0].permit.paths",
            "not a valid regular expression",
        ),
        (
            json!([{"permit": {"paths": "*"}, "when": "user in owner teams"}]),
            "server.auth.route_policy[0].when",
            "Invalid condition",
        ),
    ] {
        let error = parse_route_policy(Some(&value), "server.auth.route_policy").unwrap_err();
        assert_eq!(error.key, key);
        assert!(error.problem.contains(problem), "{}", error.problem);
    }
    let error = parse_access_policy(
        Some(&json!([{"permit": {"actions": ["read", "write"]}}])),
        "server.auth.access_policy",
    )
    .unwrap_err();
    assert_eq!(error.key, "server.auth.access_policy[0].permit.actions");
    assert!(error.problem.contains("'write'"));
}
