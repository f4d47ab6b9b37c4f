use super::*;
use serde_json::json;

fn parse(value: Value) -> Result<AuthSettings, Invalid> {
    parse_auth(Some(&value), false, &mut Vec::new())
}

#[test]
fn every_provider_type_reads_with_ogx_defaults() {
    let settings = parse(json!({"provider_config": {"type": "oauth2_token", "jwks": {"uri": "http://127.0.0.1:1/jwks"}}})).unwrap();
    let Some(ProviderConfig::OAuth2(oauth)) = settings.provider else {
        panic!("not oauth2");
    };
    assert_eq!(oauth.audience, "ogx");
    assert_eq!(oauth.claims_mapping[0], ("sub".into(), "roles".into()));
    assert!(matches!(
        oauth.validation,
        TokenValidation::Jwks {
            key_recheck_period_secs: 3600,
            ..
        }
    ));
    for (config, type_name) in [
        (
            json!({"type": "local_api_key", "api_keys": ["k"]}),
            "local_api_key",
        ),
        (json!({"type": "github_token"}), "github_token"),
        (
            json!({"type": "custom", "endpoint": "http://127.0.0.1:9/auth"}),
            "custom",
        ),
        (json!({"type": "kubernetes"}), "kubernetes"),
        (
            json!({"type": "upstream_header", "principal_header": "X-User", "trusted_proxy_cidrs": ["10.0.0.1/8", "::1"]}),
            "upstream_header",
        ),
    ] {
        let provider = parse(json!({"provider_config": config}))
            .unwrap()
            .provider
            .unwrap();
        assert_eq!(provider.type_name(), type_name);
    }
    assert!(
        parse(json!({"provider_config": {"type": ""}}))
            .unwrap()
            .provider
            .is_none()
    );
}

#[test]
fn bad_provider_configs_name_the_key() {
    for (config, key, problem) in [
        (
            json!({"type": "saml"}),
            "server.auth.provider_config.type",
            "unknown authentication provider type 'saml'",
        ),
        (
            json!({"type": "oauth2_token"}),
            "server.auth.provider_config",
            "One of jwks or introspection",
        ),
        (
            json!({"type": "oauth2_token", "jwks": {"uri": "http://x/"}, "introspection": {"url": "http://x/", "client_id": "a", "client_secret": "b"}}),
            "server.auth.provider_config",
            "only one of jwks or introspection",
        ),
        (
            json!({"type": "oauth2_token", "jwks": {"uri": "not a url"}}),
            "server.auth.provider_config.jwks.uri",
            "not an http",
        ),
        (
            json!({"type": "oauth2_token", "verify_tls": false, "jwks": {"uri": "https://x/"}}),
            "server.auth.provider_config.verify_tls",
            "verify_tls: false",
        ),
        (
            json!({"type": "local_api_key"}),
            "server.auth.provider_config.api_keys",
            "is required",
        ),
        (
            json!({"type": "upstream_header", "principal_header": "x", "trusted_proxy_cidrs": ["10.0.0.0/33"]}),
            "server.auth.provider_config.trusted_proxy_cidrs",
            "Invalid CIDR notation '10.0.0.0/33'",
        ),
        (
            json!({"type": "github_token", "claims_mapping": {"login": ""}}),
            "server.auth.provider_config.claims_mapping.login",
            "cannot be empty",
        ),
    ] {
        let error = parse(json!({"provider_config": config})).unwrap_err();
        assert_eq!(error.key, key, "{error:?}");
        assert!(error.problem.contains(problem), "{error:?}");
    }
    assert!(
        parse_auth(
            Some(&json!({"provider_config": {"type": "kubernetes", "verify_tls": false}})),
            true,
            &mut Vec::new()
        )
        .is_ok()
    );
}

#[test]
fn tenancy_modes_and_tenant_ids() {
    let none = AuthSettings::default();
    let local =
        parse(json!({"provider_config": {"type": "local_api_key", "api_keys": ["k"]}})).unwrap();
    assert_eq!(parse_tenancy(None, &none).unwrap(), Tenancy::Disabled);
    assert_eq!(
        parse_tenancy(
            Some(&json!({"mode": "single", "default_tenant_id": " Acme "})),
            &none
        )
        .unwrap(),
        Tenancy::Single("acme".into())
    );
    assert_eq!(
        parse_tenancy(Some(&json!({"mode": "multi"})), &none).unwrap(),
        Tenancy::Multi
    );
    for (value, auth, key) in [
        (
            json!({"mode": "single"}),
            &none,
            "server.tenancy.default_tenant_id",
        ),
        (
            json!({"mode": "single", "default_tenant_id": "-bad"}),
            &none,
            "server.tenancy.default_tenant_id",
        ),
        (json!({"mode": "multi"}), &local, "server.tenancy.mode"),
        (json!({"mode": "many"}), &none, "server.tenancy.mode"),
    ] {
        assert_eq!(
            parse_tenancy(Some(&value), auth).unwrap_err().key,
            key,
            "{value}"
        );
    }
    assert_eq!(normalize_tenant("  "), Ok(None));
    assert!(normalize_tenant("a/b").is_err());
}
