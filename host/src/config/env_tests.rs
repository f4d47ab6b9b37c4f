//! Every substitution rule as one table row. The first rows mirror OGX's
//! `tests/unit/server/test_replace_env_vars.py`, with its environment: `TEST_VAR=test_value`,
//! `EMPTY_VAR=""`, `ZERO_VAR=0`.

use super::*;
use serde_json::json;

/// What a row expects: the substituted value, or the error message.
enum Expect {
    Value(Value),
    Error(&'static str),
}
use Expect::{Error, Value as Ok_};

struct Row {
    name: &'static str,
    input: Value,
    env: &'static [(&'static str, &'static str)],
    expect: Expect,
}

const OGX_ENV: &[(&str, &str)] = &[
    ("TEST_VAR", "test_value"),
    ("EMPTY_VAR", ""),
    ("ZERO_VAR", "0"),
];

fn row(
    name: &'static str,
    input: Value,
    env: &'static [(&'static str, &'static str)],
    expect: Expect,
) -> Row {
    Row {
        name,
        input,
        env,
        expect,
    }
}

fn auth(provider_config: Value) -> Value {
    json!({"server": {"auth": {"provider_config": provider_config, "route_policy": []}}})
}

fn rows() -> Vec<Row> {
    vec![
        // ---- test_replace_env_vars.py ----
        row(
            "simple replacement",
            json!("${env.TEST_VAR}"),
            OGX_ENV,
            Ok_(json!("test_value")),
        ),
        row(
            "bare reference to an unset variable fails (root path)",
            json!("${env.NOT_SET}"),
            OGX_ENV,
            Error(
                "Environment variable 'NOT_SET' not set or empty . Use ${env.NOT_SET:=default_value} to provide a \
                 default value, ${env.NOT_SET:+value_if_set} to make the field conditional, or ensure the \
                 environment variable is set.",
            ),
        ),
        row(
            "default when unset",
            json!("${env.NOT_SET:=default}"),
            OGX_ENV,
            Ok_(json!("default")),
        ),
        row(
            "value when set, default ignored",
            json!("${env.TEST_VAR:=default}"),
            OGX_ENV,
            Ok_(json!("test_value")),
        ),
        row(
            "default when empty",
            json!("${env.EMPTY_VAR:=default}"),
            OGX_ENV,
            Ok_(json!("default")),
        ),
        row(
            "empty default gives null",
            json!("${env.EMPTY_VAR:=}"),
            OGX_ENV,
            Ok_(Value::Null),
        ),
        row(
            "empty default, variable set",
            json!("${env.TEST_VAR:=}"),
            OGX_ENV,
            Ok_(json!("test_value")),
        ),
        row(
            "empty conditional gives null",
            json!("${env.EMPTY_VAR_NO_DEFAULT:+}"),
            OGX_ENV,
            Ok_(Value::Null),
        ),
        row(
            "conditional when set",
            json!("${env.TEST_VAR:+conditional}"),
            OGX_ENV,
            Ok_(json!("conditional")),
        ),
        row(
            "conditional when unset",
            json!("${env.NOT_SET:+conditional}"),
            OGX_ENV,
            Ok_(Value::Null),
        ),
        row(
            "conditional when empty",
            json!("${env.EMPTY_VAR:+conditional}"),
            OGX_ENV,
            Ok_(Value::Null),
        ),
        row(
            "conditional with \"0\" counts as set",
            json!("${env.ZERO_VAR:+conditional}"),
            OGX_ENV,
            Ok_(json!("conditional")),
        ),
        row(
            "mixed syntax, two references in one string",
            json!("${env.TEST_VAR:=default} and ${env.NOT_SET:+conditional}"),
            OGX_ENV,
            Ok_(json!("test_value and ")),
        ),
        row(
            "mixed syntax, the other way round",
            json!("${env.NOT_SET:=default} and ${env.TEST_VAR:+conditional}"),
            OGX_ENV,
            Ok_(json!("default and conditional")),
        ),
        row(
            "nested structures",
            json!({"key1": "${env.TEST_VAR:=default}", "key2": ["${env.NOT_SET:=default}", "${env.TEST_VAR:+conditional}"], "key3": {"nested": "${env.NOT_SET:+conditional}"}}),
            OGX_ENV,
            Ok_(
                json!({"key1": "test_value", "key2": ["default", "conditional"], "key3": {"nested": null}}),
            ),
        ),
        row(
            "explicit strings are not coerced",
            json!({"port": "8080", "enabled": "true", "count": "123", "ratio": "3.14"}),
            OGX_ENV,
            Ok_(json!({"port": "8080", "enabled": "true", "count": "123", "ratio": "3.14"})),
        ),
        row(
            "vector store with an empty conditional id is dropped",
            json!({"vector_stores": [{"vector_store_id": "${env.VECTOR_STORE_ID:+my-store}", "provider_id": "p"}, {"vector_store_id": "always-present", "provider_id": "q"}]}),
            OGX_ENV,
            Ok_(
                json!({"vector_stores": [{"vector_store_id": "always-present", "provider_id": "q"}]}),
            ),
        ),
        row(
            "vector store with a set conditional id is kept",
            json!({"vector_stores": [{"vector_store_id": "${env.VECTOR_STORE_ID:+my-store}", "provider_id": "p"}, {"vector_store_id": "always-present", "provider_id": "q"}]}),
            &[("VECTOR_STORE_ID", "enabled")],
            Ok_(
                json!({"vector_stores": [{"vector_store_id": "my-store", "provider_id": "p"}, {"vector_store_id": "always-present", "provider_id": "q"}]}),
            ),
        ),
        row(
            "model with an empty conditional id is dropped",
            json!({"models": [{"model_id": "${env.MODEL_ID:+my-model}", "provider_id": "p"}, {"model_id": "always-present", "provider_id": "q"}]}),
            OGX_ENV,
            Ok_(json!({"models": [{"model_id": "always-present", "provider_id": "q"}]})),
        ),
        row(
            "shield with an empty conditional id is dropped",
            json!({"shields": [{"shield_id": "${env.SHIELD_ID:+my-shield}", "provider_id": "p"}, {"shield_id": "always-present", "provider_id": "q"}]}),
            OGX_ENV,
            Ok_(json!({"shields": [{"shield_id": "always-present", "provider_id": "q"}]})),
        ),
        row(
            "several resource types with conditional ids",
            json!({"shields": [{"shield_id": "${env.INCLUDE_SHIELD:+included-shield}", "provider_id": "p1"}, {"shield_id": "${env.EXCLUDE_SHIELD:+excluded-shield}", "provider_id": "p2"}], "models": [{"model_id": "${env.EXCLUDE_MODEL:+excluded-model}", "provider_id": "p1"}]}),
            &[("INCLUDE_SHIELD", "yes")],
            Ok_(
                json!({"shields": [{"shield_id": "included-shield", "provider_id": "p1"}], "models": []}),
            ),
        ),
        row(
            "auth off when the conditional type is unset; the rest is kept",
            auth(
                json!({"type": "${env.AUTH_PROVIDER:+oauth2_token}", "audience": "ogx", "issuer": "https://auth.example.com"}),
            ),
            OGX_ENV,
            Ok_(json!({"server": {"auth": {"route_policy": [], "provider_config": null}}})),
        ),
        row(
            "auth on when the conditional type is set",
            auth(json!({"type": "${env.AUTH_PROVIDER:+oauth2_token}", "audience": "ogx"})),
            &[("AUTH_PROVIDER", "yes")],
            Ok_(auth(json!({"type": "oauth2_token", "audience": "ogx"}))),
        ),
        row(
            "auth off when the type resolves to an empty default",
            auth(json!({"type": "${env.NOT_SET:=}", "audience": "ogx"})),
            OGX_ENV,
            Ok_(json!({"server": {"auth": {"route_policy": [], "provider_config": null}}})),
        ),
        row(
            "auth with a literal type is kept",
            auth(json!({"type": "oauth2_token", "audience": "ogx"})),
            OGX_ENV,
            Ok_(auth(json!({"type": "oauth2_token", "audience": "ogx"}))),
        ),
        row(
            "auth with a complex config",
            json!({"server": {"auth": {"provider_config": {"type": "${env.ENABLE_AUTH:+oauth2_token}", "issuer": "${env.KEYCLOAK_URL}/realms/ogx", "jwks": {"uri": "${env.KEYCLOAK_URL}/certs"}}}}}),
            &[
                ("ENABLE_AUTH", "true"),
                ("KEYCLOAK_URL", "http://keycloak:8080"),
            ],
            Ok_(
                json!({"server": {"auth": {"provider_config": {"type": "oauth2_token", "issuer": "http://keycloak:8080/realms/ogx", "jwks": {"uri": "http://keycloak:8080/certs"}}}}}),
            ),
        ),
        // ---- rules the Python tests do not cover ----
        row(
            "disabled auth does not expand the rest of provider_config",
            json!({"server": {"auth": {"provider_config": {"type": "${env.AUTH:+custom}", "endpoint": "${env.ENDPOINT}"}}}}),
            &[],
            Ok_(json!({"server": {"auth": {"provider_config": null}}})),
        ),
        row(
            "auth type with a missing bare variable is reported at its path",
            json!({"server": {"auth": {"provider_config": {"type": "${env.AUTH_TYPE}"}}}}),
            &[],
            Error(
                "Environment variable 'AUTH_TYPE' not set or empty at server.auth.provider_config.type. Use \
                 ${env.AUTH_TYPE:=default_value} to provide a default value, ${env.AUTH_TYPE:+value_if_set} to \
                 make the field conditional, or ensure the environment variable is set.",
            ),
        ),
        row(
            "missing variable: the error names the dotted path with list indexes",
            json!({"providers": {"inference": [{"provider_id": "a", "provider_type": "remote::openai", "config": {"api_key": "${env.OPENAI_API_KEY}"}}]}}),
            &[],
            Error(
                "Environment variable 'OPENAI_API_KEY' not set or empty at providers.inference[0].config.api_key. \
                 Use ${env.OPENAI_API_KEY:=default_value} to provide a default value, \
                 ${env.OPENAI_API_KEY:+value_if_set} to make the field conditional, or ensure the environment \
                 variable is set.",
            ),
        ),
        row(
            "empty variable counts as unset for a bare reference",
            json!({"k": "${env.EMPTY}"}),
            &[("EMPTY", "")],
            Error(
                "Environment variable 'EMPTY' not set or empty at k. Use ${env.EMPTY:=default_value} to provide a default value, ${env.EMPTY:+value_if_set} to make the field conditional, or ensure the environment variable is set.",
            ),
        ),
        row(
            "provider_id resolving to __disabled__ drops the item without expanding it",
            json!([{"provider_id": "${env.P:=__disabled__}", "config": {"api_key": "${env.MISSING}"}}, {"provider_id": "b"}]),
            &[],
            Ok_(json!([{"provider_id": "b"}])),
        ),
        row(
            "literal __disabled__ drops the item too",
            json!([{"provider_id": "__disabled__"}]),
            &[],
            Ok_(json!([])),
        ),
        row(
            "provider_id resolving to empty keeps the item and still expands its config",
            json!([{"provider_id": "${env.CEREBRAS_API_KEY:+cerebras}", "config": {"url": "${env.URL:=http://x}"}}]),
            &[],
            Ok_(json!([{"provider_id": null, "config": {"url": "http://x"}}])),
        ),
        row(
            "a disabled-by-empty provider still fails on a bare missing variable",
            json!([{"provider_id": "${env.KEY:+p}", "config": {"api_key": "${env.MISSING}"}}]),
            &[],
            Error(
                "Environment variable 'MISSING' not set or empty at [0].config.api_key. Use ${env.MISSING:=default_value} to provide a default value, ${env.MISSING:+value_if_set} to make the field conditional, or ensure the environment variable is set.",
            ),
        ),
        row(
            "provider_id enabled by a set variable",
            json!([{"provider_id": "${env.KEY:+cerebras}"}]),
            &[("KEY", "k")],
            Ok_(json!([{"provider_id": "cerebras"}])),
        ),
        row(
            "literal empty model_id drops the item",
            json!([{"model_id": ""}, {"model_id": null}, {"model_id": "m"}]),
            &[],
            Ok_(json!([{"model_id": "m"}])),
        ),
        row(
            "a missing bare variable in model_id is not a drop: it is reported",
            json!({"models": [{"model_id": "${env.M}"}]}),
            &[],
            Error(
                "Environment variable 'M' not set or empty at models[0].model_id. Use ${env.M:=default_value} to provide a default value, ${env.M:+value_if_set} to make the field conditional, or ensure the environment variable is set.",
            ),
        ),
        row(
            "non-dict list items are expanded normally",
            json!(["${env.A:=1}", 2, null]),
            &[],
            Ok_(json!([1, 2, null])),
        ),
        row(
            "coercion: int",
            json!("${env.T:=3600}"),
            &[],
            Ok_(json!(3600)),
        ),
        row(
            "coercion: int with whitespace and underscores",
            json!("${env.T:= 1_000 }"),
            &[],
            Ok_(json!(1000)),
        ),
        row(
            "coercion: negative int",
            json!("${env.T:=-1}"),
            &[],
            Ok_(json!(-1)),
        ),
        row(
            "coercion: float",
            json!("${env.T:=1.5}"),
            &[],
            Ok_(json!(1.5)),
        ),
        row(
            "coercion: exponent float",
            json!("${env.T:=1e3}"),
            &[],
            Ok_(json!(1000.0)),
        ),
        row(
            "coercion: bool in any case",
            json!("${env.T:=TrUe}"),
            &[],
            Ok_(json!(true)),
        ),
        row(
            "coercion: false from the environment",
            json!("${env.T}"),
            &[("T", "false")],
            Ok_(json!(false)),
        ),
        row(
            "coercion: non-finite float stays a string",
            json!("${env.T:=inf}"),
            &[],
            Ok_(json!("inf")),
        ),
        row(
            "coercion: nan stays a string",
            json!("${env.T:=nan}"),
            &[],
            Ok_(json!("nan")),
        ),
        row(
            "coercion applies to the whole result",
            json!("${env.P:=80}80"),
            &[],
            Ok_(json!(8080)),
        ),
        row(
            "coercion of text around a reference",
            json!("v${env.P:=1}"),
            &[],
            Ok_(json!("v1")),
        ),
        row(
            "numeric secret becomes an int",
            json!("${env.KEY}"),
            &[("KEY", "12345")],
            Ok_(json!(12345)),
        ),
        row(
            "unsubstituted text is never coerced",
            json!("true"),
            &[],
            Ok_(json!("true")),
        ),
        row(
            "unsubstituted empty string stays a string",
            json!(""),
            &[],
            Ok_(json!("")),
        ),
        row(
            "non-string scalars pass through",
            json!({"a": 1, "b": true, "c": null, "d": 1.5}),
            &[],
            Ok_(json!({"a": 1, "b": true, "c": null, "d": 1.5})),
        ),
        row(
            "lowercase names do not match and stay literal",
            json!("${env.lower}"),
            &[("lower", "x")],
            Ok_(json!("${env.lower}")),
        ),
        row(
            "the :- form does not match and stays literal",
            json!("${env.X:-d}"),
            &[],
            Ok_(json!("${env.X:-d}")),
        ),
        row(
            "the docs' :__disabled__ form stays literal",
            json!("${env.X:__disabled__}"),
            &[],
            Ok_(json!("${env.X:__disabled__}")),
        ),
        row(
            "a default stops at the first }",
            json!("${env.X:=a}b}"),
            &[],
            Ok_(json!("ab}")),
        ),
        row(
            "tilde in a default is expanded",
            json!("${env.D:=~/.ogx}/kv.db"),
            &[("HOME", "/home/u")],
            Ok_(json!("/home/u/.ogx/kv.db")),
        ),
        row(
            "tilde in a variable's value is expanded",
            json!("${env.D}"),
            &[("D", "~"), ("HOME", "/home/u/")],
            Ok_(json!("/home/u")),
        ),
        row(
            "tilde of another user is left alone",
            json!("${env.D:=~bob/x}"),
            &[("HOME", "/home/u")],
            Ok_(json!("~bob/x")),
        ),
        row(
            "a literal tilde outside a reference is not expanded",
            json!("~/${env.D:=x}"),
            &[("HOME", "/home/u")],
            Ok_(json!("~/x")),
        ),
        row(
            "a tilde in the middle of a value is not expanded",
            json!("${env.D:=a~/b}"),
            &[("HOME", "/home/u")],
            Ok_(json!("a~/b")),
        ),
        row(
            "the first missing variable in a string is the one reported",
            json!({"k": "${env.A}${env.B}"}),
            &[],
            Error(
                "Environment variable 'A' not set or empty at k. Use ${env.A:=default_value} to provide a default value, ${env.A:+value_if_set} to make the field conditional, or ensure the environment variable is set.",
            ),
        ),
    ]
}

#[test]
fn every_substitution_rule() {
    for Row {
        name,
        input,
        env,
        expect,
    } in rows()
    {
        let lookup = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        };
        let got = substitute(&input, &lookup);
        match (got, expect) {
            (Ok(v), Expect::Value(want)) => assert_eq!(v, want, "row: {name}"),
            (Err(e), Expect::Error(want)) => assert_eq!(e.to_string(), want, "row: {name}"),
            (Ok(v), Expect::Error(want)) => panic!("row: {name}: expected error {want:?}, got {v}"),
            (Err(e), Expect::Value(want)) => panic!("row: {name}: expected {want}, got error {e}"),
        }
    }
}

#[test]
fn error_carries_the_variable_and_path() {
    let err = substitute(&json!({"a": ["${env.X}"]}), &|_| None).unwrap_err();
    assert_eq!(
        err,
        EnvVarError {
            var_name: "X".into(),
            path: "a[0]".into()
        }
    );
}
