//! Tests of the AWS identity: config and env handling here, signing in `signing.rs`, STS and
//! the cache against a real moto server in `sts.rs`. No test mutates the process environment:
//! every lookup goes through an injected [`Environment`].

mod moto;
mod signing;
mod sts;

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::imports::http::{AwsCredentialSource, HttpError};

/// An environment where the default chain finds nothing by itself: no shared files, no
/// instance metadata.
pub(super) fn isolated_env(extra: &[(&str, &str)]) -> Environment {
    let mut pairs = vec![
        ("AWS_CONFIG_FILE", "/nonexistent/ogx-test/config"),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/ogx-test/credentials",
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", "/nonexistent/ogx-test"),
    ];
    pairs.extend_from_slice(extra);
    Environment::from_pairs(pairs)
}

pub(super) fn identity(
    config: serde_json::Value,
    env: Environment,
    windows: RefreshWindows,
) -> AwsIdentity {
    let parsed = ProviderAwsConfig::from_json(&config, &env).expect("valid config");
    AwsIdentity::new(parsed, env, Arc::new(CredentialCache::new(windows)))
}

pub(super) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[test]
fn config_defaults_without_env_are_unset() {
    let config =
        ProviderAwsConfig::from_json(&json!({}), &Environment::from_pairs::<&str, &str>([]))
            .unwrap();
    assert_eq!(config, ProviderAwsConfig::default());
}

#[test]
fn config_reads_ogx_env_defaults_and_empty_means_unset() {
    let env = Environment::from_pairs([
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", ""),
        ("AWS_PROFILE", "dev"),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
        ("AWS_ROLE_SESSION_NAME", "s"),
        ("AWS_SESSION_TTL", "1800"),
        ("AWS_DEFAULT_REGION", "eu-west-1"),
        ("AWS_REGION", "ap-south-1"),
    ]);
    let config = ProviderAwsConfig::from_json(&json!({}), &env).unwrap();
    assert_eq!(config.access_key_id.as_deref(), Some("AKIDENV"));
    assert!(config.has_secret_access_key());
    assert!(!config.has_session_token(), "empty env var counts as unset");
    assert_eq!(config.profile_name.as_deref(), Some("dev"));
    assert_eq!(
        config.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/r")
    );
    assert_eq!(
        config.web_identity_token_file.as_deref(),
        Some("/var/run/token")
    );
    assert_eq!(config.role_session_name.as_deref(), Some("s"));
    assert_eq!(config.session_ttl, Some(1800));
    assert_eq!(
        config.region_name.as_deref(),
        Some("eu-west-1"),
        "AWS_REGION is not read"
    );
}

#[test]
fn config_keys_present_win_over_env_even_when_empty() {
    let env = Environment::from_pairs([("AWS_ROLE_ARN", "arn:env"), ("AWS_PROFILE", "env")]);
    let config = ProviderAwsConfig::from_json(
        &json!({"aws_role_arn": "", "profile_name": null, "region_name": "us-west-2"}),
        &env,
    )
    .unwrap();
    assert_eq!(config.role_arn, None);
    assert_eq!(config.profile_name, None);
    assert_eq!(config.region_name.as_deref(), Some("us-west-2"));
}

#[test]
fn session_ttl_table() {
    let none = Environment::from_pairs::<&str, &str>([]);
    let cases: &[(serde_json::Value, Result<Option<u32>, &str>)] = &[
        (json!({"session_ttl": 900}), Ok(Some(900))),
        (json!({"session_ttl": "1200"}), Ok(Some(1200))),
        (json!({"session_ttl": 0}), Ok(None)),
        (json!({"session_ttl": ""}), Ok(None)),
        (json!({"session_ttl": null}), Ok(None)),
        (json!({"session_ttl": "soon"}), Err("session_ttl")),
        (json!({"session_ttl": -5}), Err("session_ttl")),
        (json!({"session_ttl": 1.5}), Err("session_ttl")),
    ];
    for (config, expected) in cases {
        let got = ProviderAwsConfig::from_json(config, &none).map(|c| c.session_ttl);
        match expected {
            Ok(ttl) => assert_eq!(got.as_ref().ok(), Some(ttl), "{config}"),
            Err(field) => assert!(got.unwrap_err().to_string().contains(field), "{config}"),
        }
    }
    let bad_env = Environment::from_pairs([("AWS_SESSION_TTL", "abc")]);
    assert_eq!(
        ProviderAwsConfig::from_json(&json!({}), &bad_env).unwrap_err(),
        AwsConfigError::InvalidEnv {
            var: "AWS_SESSION_TTL"
        }
    );
    assert!(matches!(
        ProviderAwsConfig::from_json(&json!({"aws_role_arn": 5}), &none),
        Err(AwsConfigError::InvalidField {
            field: "aws_role_arn",
            ..
        })
    ));
}

#[test]
fn endpoint_override_hosts_come_from_declared_variables_only() {
    let declared: Vec<String> = [
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
    ]
    .map(String::from)
    .to_vec();
    let env = Environment::from_pairs([
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9000/"),
        ("AWS_ENDPOINT_URL", "https://proxy.internal"),
        ("AWS_ENDPOINT_URL_STS", "http://sts.internal:4566"),
        ("AWS_REGION", "http://not-an-endpoint:1"),
    ]);
    assert_eq!(
        endpoint_override_hosts(&declared, &env),
        vec![
            "http://127.0.0.1:9000".to_string(),
            "https://proxy.internal:443".to_string()
        ]
    );
    let ignored = Environment::from_pairs([
        ("AWS_ENDPOINT_URL", "https://proxy.internal"),
        ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
    ]);
    assert!(endpoint_override_hosts(&declared, &ignored).is_empty());
    let broken = Environment::from_pairs([("AWS_ENDPOINT_URL", "not a url")]);
    assert!(endpoint_override_hosts(&declared, &broken).is_empty());
}

#[test]
fn endpoint_override_table() {
    type Vars = &'static [(&'static str, &'static str)];
    let cases: &[(Vars, &str, Option<&str>)] = &[
        (&[], "STS", None),
        (
            &[("AWS_ENDPOINT_URL", "http://all")],
            "STS",
            Some("http://all"),
        ),
        (
            &[
                ("AWS_ENDPOINT_URL", "http://all"),
                ("AWS_ENDPOINT_URL_STS", "http://sts"),
            ],
            "STS",
            Some("http://sts"),
        ),
        (
            &[("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://br")],
            "bedrock-runtime",
            Some("http://br"),
        ),
        (
            &[
                ("AWS_ENDPOINT_URL_STS", ""),
                ("AWS_ENDPOINT_URL", "http://all"),
            ],
            "STS",
            Some("http://all"),
        ),
        (
            &[
                ("AWS_ENDPOINT_URL_STS", "http://sts"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
            ],
            "STS",
            None,
        ),
        (
            &[
                ("AWS_ENDPOINT_URL_STS", "http://sts"),
                ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false"),
            ],
            "STS",
            Some("http://sts"),
        ),
    ];
    for (vars, service, expected) in cases {
        let env = Environment::from_pairs(vars.iter().copied());
        assert_eq!(
            endpoint_override_in(&env, service).as_deref(),
            *expected,
            "{vars:?} {service}"
        );
    }
}

#[test]
fn refresh_windows_defaults_and_overrides() {
    let none = Environment::from_pairs::<&str, &str>([]);
    assert_eq!(
        RefreshWindows::from_env(&none),
        RefreshWindows {
            advisory: DEFAULT_ADVISORY_REFRESH,
            mandatory: DEFAULT_MANDATORY_REFRESH
        }
    );
    assert_eq!(DEFAULT_ADVISORY_REFRESH.as_secs(), 900);
    assert_eq!(DEFAULT_MANDATORY_REFRESH.as_secs(), 600);
    let env =
        Environment::from_pairs([(ADVISORY_REFRESH_ENV, "30"), (MANDATORY_REFRESH_ENV, "20")]);
    let windows = RefreshWindows::from_env(&env);
    assert_eq!(
        (windows.advisory.as_secs(), windows.mandatory.as_secs()),
        (30, 20)
    );
    let env = Environment::from_pairs([(ADVISORY_REFRESH_ENV, "5"), (MANDATORY_REFRESH_ENV, "x")]);
    let windows = RefreshWindows::from_env(&env);
    assert_eq!(
        windows.mandatory, DEFAULT_MANDATORY_REFRESH,
        "bad value ignored"
    );
    assert_eq!(
        windows.advisory, DEFAULT_MANDATORY_REFRESH,
        "advisory >= mandatory"
    );
}

#[test]
fn source_resolution_table() {
    let config = ProviderAwsConfig::from_json(
        &json!({
            "profile_name": "cfg-profile",
            "aws_role_arn": "arn:cfg",
            "aws_role_session_name": "cfg-session",
            "session_ttl": 1800,
        }),
        &Environment::from_pairs::<&str, &str>([]),
    )
    .unwrap();
    let env = Environment::default();
    let resolve = |source: AwsCredentialSource| {
        credentials::ResolvedSource::resolve(&config, None, &source, "us-west-2", &env)
    };

    let from_config = resolve(AwsCredentialSource::default());
    assert_eq!(from_config.kind(), "sts-assume-role");
    let role = from_config.role.clone().unwrap();
    assert_eq!(role.role_arn, "arn:cfg");
    assert_eq!(role.session_name.as_deref(), Some("cfg-session"));
    assert_eq!(role.session_ttl, 1800);

    let overridden = resolve(AwsCredentialSource {
        profile_name: Some("plugin-profile".into()),
        role_arn: Some("arn:plugin".into()),
        web_identity_token_file: Some("/token".into()),
        role_session_name: None,
        session_ttl_seconds: Some(900),
    });
    assert_eq!(overridden.kind(), "sts-web-identity");
    let role = overridden.role.clone().unwrap();
    assert_eq!(role.role_arn, "arn:plugin");
    assert_eq!(
        role.session_name.as_deref(),
        Some("cfg-session"),
        "None falls back"
    );
    assert_eq!(role.session_ttl, 900);
    assert!(matches!(
        &overridden.base,
        credentials::BaseCredentials::DefaultChain { profile: Some(p) } if p == "plugin-profile"
    ));

    let no_role = ProviderAwsConfig::default();
    let plain = credentials::ResolvedSource::resolve(
        &no_role,
        None,
        &AwsCredentialSource::default(),
        "us-east-1",
        &env,
    );
    assert_eq!(plain.kind(), "default-chain");
    assert_eq!(plain.role, None);
    let ttl_default = credentials::ResolvedSource::resolve(
        &no_role,
        None,
        &AwsCredentialSource {
            role_arn: Some("arn:x".into()),
            ..Default::default()
        },
        "us-east-1",
        &env,
    );
    assert_eq!(
        ttl_default.role.unwrap().session_ttl,
        DEFAULT_SESSION_TTL_SECONDS
    );
}

#[tokio::test]
async fn static_keys_from_config_never_refresh() {
    let identity = identity(
        json!({"aws_access_key_id": "AKIDCONFIG", "aws_secret_access_key": SECRET,
               "aws_session_token": "tok"}),
        isolated_env(&[]),
        RefreshWindows::default(),
    );
    let creds = identity
        .credentials("us-east-1", &AwsCredentialSource::default())
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "AKIDCONFIG");
    assert_eq!(creds.secret_access_key(), SECRET);
    assert_eq!(creds.session_token(), Some("tok"));
    assert_eq!(creds.expiry(), None);
    assert_eq!(identity.cache().sts_calls(), 0);
}

#[tokio::test]
async fn static_keys_from_env() {
    let identity = identity(
        json!({}),
        isolated_env(&[
            ("AWS_ACCESS_KEY_ID", "AKIDFROMENV"),
            ("AWS_SECRET_ACCESS_KEY", SECRET),
        ]),
        RefreshWindows::default(),
    );
    let creds = identity
        .credentials("us-east-1", &AwsCredentialSource::default())
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "AKIDFROMENV");
    assert_eq!(creds.session_token(), None);
}

#[tokio::test]
async fn half_a_key_pair_is_refused() {
    let identity = identity(
        json!({"aws_access_key_id": "AKIDONLY"}),
        isolated_env(&[]),
        RefreshWindows::default(),
    );
    let error = identity
        .credentials("us-east-1", &AwsCredentialSource::default())
        .await
        .unwrap_err();
    assert!(matches!(&error, HttpError::Credentials(m) if m.contains("only one of")));
}

#[tokio::test]
async fn profile_from_shared_files() {
    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("config");
    let credentials_file = dir.path().join("credentials");
    std::fs::write(&config_file, "[profile ogx-test]\nregion = eu-central-1\n").unwrap();
    std::fs::write(
        &credentials_file,
        format!(
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = {SECRET}\n\
             [ogx-test]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = {SECRET}\n"
        ),
    )
    .unwrap();
    let files = [
        ("AWS_CONFIG_FILE", config_file.to_str().unwrap()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials_file.to_str().unwrap(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let source = AwsCredentialSource::default();

    let named = identity(
        json!({"profile_name": "ogx-test"}),
        Environment::from_pairs(files),
        RefreshWindows::default(),
    );
    let creds = named.credentials("us-east-1", &source).await.unwrap();
    assert_eq!(creds.access_key_id(), "AKIDPROFILE");

    let mut with_env_profile = files.to_vec();
    with_env_profile.push(("AWS_PROFILE", "ogx-test"));
    let from_env = identity(
        json!({}),
        Environment::from_pairs(with_env_profile),
        Default::default(),
    );
    let creds = from_env.credentials("us-east-1", &source).await.unwrap();
    assert_eq!(creds.access_key_id(), "AKIDPROFILE");

    let default = identity(
        json!({}),
        Environment::from_pairs(files),
        Default::default(),
    );
    let creds = default.credentials("us-east-1", &source).await.unwrap();
    assert_eq!(creds.access_key_id(), "AKIDDEFAULT");

    let plugin_override = AwsCredentialSource {
        profile_name: Some("ogx-test".into()),
        ..Default::default()
    };
    let creds = default
        .credentials("us-east-1", &plugin_override)
        .await
        .unwrap();
    assert_eq!(creds.access_key_id(), "AKIDPROFILE");
}

#[tokio::test]
async fn nothing_configured_gives_the_sanitized_error() {
    let identity = identity(json!({}), isolated_env(&[]), RefreshWindows::default());
    let error = identity
        .credentials("us-east-1", &AwsCredentialSource::default())
        .await
        .unwrap_err();
    assert_eq!(error, HttpError::Credentials(NO_CREDENTIALS_FOUND.into()));
}

#[test]
fn debug_output_never_shows_secrets() {
    let env = Environment::from_pairs([
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_SESSION_TOKEN", "TOKENVALUE"),
    ]);
    let identity = identity(
        json!({"aws_access_key_id": "AKIDX"}),
        env.clone(),
        Default::default(),
    );
    for text in [
        format!("{identity:?}"),
        format!("{env:?}"),
        format!("{:?}", identity.config()),
    ] {
        assert!(!text.contains(SECRET), "{text}");
        assert!(!text.contains("TOKENVALUE"), "{text}");
    }
}
