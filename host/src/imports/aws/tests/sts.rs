//! STS flows and the cache's refresh rules against a real moto STS on 127.0.0.1, reached
//! through `AWS_ENDPOINT_URL_STS` in the injected environment.
//!
//! moto returns `Expiration = now + DurationSeconds` and accepts durations below STS's 900 s
//! minimum, which makes short-lived credentials (and so refreshes) testable in seconds. It
//! checks neither the web identity token nor the base keys' signatures.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use serde_json::json;

use super::{SECRET, identity, isolated_env, moto};
use crate::imports::aws::{AwsIdentity, RefreshWindows};
use crate::imports::http::{AwsCredentialSource, HttpError};

const REGION: &str = "us-west-2";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/test-role";
const TOKEN_FILE_ERROR: &str = "the web identity token file could not be read";

fn web_identity(
    endpoint: &str,
    token_file: &Path,
    extra: serde_json::Value,
    windows: RefreshWindows,
) -> AwsIdentity {
    let mut config = json!({
        "aws_role_arn": ROLE_ARN,
        "aws_web_identity_token_file": token_file.to_str().unwrap(),
    });
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    identity(
        config,
        isolated_env(&[("AWS_ENDPOINT_URL_STS", endpoint)]),
        windows,
    )
}

fn windows(advisory: u64, mandatory: u64) -> RefreshWindows {
    RefreshWindows {
        advisory: Duration::from_secs(advisory),
        mandatory: Duration::from_secs(mandatory),
    }
}

fn write_token(path: &Path, token: &str) {
    std::fs::write(path, format!("  {token}\n")).unwrap();
}

async fn get(identity: &AwsIdentity) -> Result<Credentials, HttpError> {
    identity
        .credentials(REGION, &AwsCredentialSource::default())
        .await
}

fn seconds_left(creds: &Credentials) -> f64 {
    creds
        .expiry()
        .expect("temporary credentials expire")
        .duration_since(SystemTime::now())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Sleeps until `creds` have at most `left` seconds to live.
async fn age_until(creds: &Credentials, left: u64) {
    let wait = seconds_left(creds) - left as f64 + 0.2;
    if wait > 0.0 {
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
    }
}

/// The assumed-role ARN moto reports for these credentials.
async fn caller_arn(endpoint: &str, creds: &Credentials) -> String {
    let config = aws_sdk_sts::Config::builder()
        .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
        .region(aws_sdk_sts::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(creds.clone())
        .build();
    aws_sdk_sts::Client::from_conf(config)
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity")
        .arn()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn web_identity_sends_session_name_and_duration() {
    let Some(endpoint) = moto::endpoint("web_identity_sends_session_name_and_duration") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_token(&token, "eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    let identity = web_identity(
        &endpoint,
        &token,
        json!({"aws_role_session_name": "ogx-test-session", "session_ttl": 1234}),
        RefreshWindows::default(),
    );
    let creds = get(&identity).await.unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"), "temporary key");
    assert!(creds.session_token().is_some_and(|t| !t.is_empty()));
    let left = seconds_left(&creds);
    assert!(
        (1228.0..=1235.0).contains(&left),
        "DurationSeconds reached STS: {left}"
    );
    assert!(
        caller_arn(&endpoint, &creds)
            .await
            .ends_with("assumed-role/test-role/ogx-test-session")
    );
    assert_eq!(identity.cache().sts_calls(), 1);

    // A cache hit: no second STS call.
    let again = get(&identity).await.unwrap();
    assert_eq!(again.access_key_id(), creds.access_key_id());
    assert_eq!(identity.cache().sts_calls(), 1);

    // The plugin's session-ttl override reaches STS too (a distinct source, a distinct entry).
    let source = AwsCredentialSource {
        session_ttl_seconds: Some(1800),
        ..Default::default()
    };
    let longer = identity.credentials(REGION, &source).await.unwrap();
    let left = seconds_left(&longer);
    assert!((1794.0..=1801.0).contains(&left), "override: {left}");
}

#[tokio::test]
async fn web_identity_default_session_name_is_random_hex_fixed_per_source() {
    let Some(endpoint) = moto::endpoint("web_identity_default_session_name") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_token(&token, "token-a");
    // Every load refreshes: the windows are longer than the credentials live.
    let identity = web_identity(
        &endpoint,
        &token,
        json!({"session_ttl": 60}),
        windows(120, 0),
    );
    let first = get(&identity).await.unwrap();
    let second = get(&identity).await.unwrap();
    assert_ne!(first.access_key_id(), second.access_key_id(), "refreshed");
    let name_of = |arn: String| arn.rsplit('/').next().unwrap().to_owned();
    let first_name = name_of(caller_arn(&endpoint, &first).await);
    let second_name = name_of(caller_arn(&endpoint, &second).await);
    assert_eq!(first_name.len(), 32, "{first_name}");
    assert!(first_name.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(first_name, second_name, "chosen once per source");
}

#[tokio::test]
async fn missing_token_file_is_a_sanitized_error_and_is_read_again() {
    let Some(endpoint) = moto::endpoint("missing_token_file") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("secret-named-token");
    let identity = web_identity(&endpoint, &token, json!({}), RefreshWindows::default());
    let error = get(&identity).await.unwrap_err();
    assert_eq!(error, HttpError::Credentials(TOKEN_FILE_ERROR.into()));
    assert!(
        !error.to_string().contains("secret-named-token"),
        "no path in the message"
    );
    assert_eq!(identity.cache().sts_calls(), 0);

    std::fs::write(&token, "   \n").unwrap();
    let error = get(&identity).await.unwrap_err();
    assert_eq!(
        error,
        HttpError::Credentials("the web identity token file is empty".into())
    );

    write_token(&token, "now-present");
    let creds = get(&identity).await.unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert_eq!(identity.cache().sts_calls(), 1);
}

#[tokio::test]
async fn short_credentials_are_refreshed_and_the_token_file_reread() {
    let Some(endpoint) = moto::endpoint("short_credentials_are_refreshed") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_token(&token, "token-1");
    // 60 s credentials; refresh (mandatory) when 57 s or less remain.
    let identity = web_identity(
        &endpoint,
        &token,
        json!({"session_ttl": 60}),
        windows(58, 57),
    );
    let first = get(&identity).await.unwrap();
    assert_eq!(
        get(&identity).await.unwrap().access_key_id(),
        first.access_key_id()
    );
    assert_eq!(identity.cache().sts_calls(), 1);

    write_token(&token, "token-2-rotated");
    age_until(&first, 57).await;
    let second = get(&identity).await.unwrap();
    assert_ne!(
        second.access_key_id(),
        first.access_key_id(),
        "new credentials"
    );
    assert_eq!(identity.cache().sts_calls(), 2);

    // The refresh reads the file again: once it is gone, the next refresh fails, and
    // credentials inside the mandatory window are not served.
    std::fs::remove_file(&token).unwrap();
    age_until(&second, 57).await;
    let error = get(&identity).await.unwrap_err();
    assert_eq!(error, HttpError::Credentials(TOKEN_FILE_ERROR.into()));
    assert_eq!(identity.cache().sts_calls(), 2);
}

#[tokio::test]
async fn advisory_refresh_failure_keeps_the_current_credentials() {
    let Some(endpoint) = moto::endpoint("advisory_refresh_failure") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_token(&token, "token");
    let identity = web_identity(
        &endpoint,
        &token,
        json!({"session_ttl": 60}),
        windows(58, 20),
    );
    let first = get(&identity).await.unwrap();
    std::fs::remove_file(&token).unwrap();
    age_until(&first, 58).await;
    let kept = get(&identity).await.unwrap();
    assert_eq!(kept.access_key_id(), first.access_key_id());

    write_token(&token, "token-back");
    let refreshed = get(&identity).await.unwrap();
    assert_ne!(refreshed.access_key_id(), first.access_key_id());
    assert_eq!(identity.cache().sts_calls(), 2);
}

#[tokio::test]
async fn expired_credentials_are_never_returned() {
    let Some(endpoint) = moto::endpoint("expired_credentials_are_never_returned") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_token(&token, "token");
    // No refresh windows at all: the credentials are used until they expire.
    let identity = web_identity(&endpoint, &token, json!({"session_ttl": 3}), windows(0, 0));
    let first = get(&identity).await.unwrap();
    assert_eq!(
        get(&identity).await.unwrap().access_key_id(),
        first.access_key_id()
    );
    std::fs::remove_file(&token).unwrap();
    age_until(&first, 0).await;
    let error = get(&identity).await.unwrap_err();
    assert_eq!(error, HttpError::Credentials(TOKEN_FILE_ERROR.into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_one_sts_call() {
    let Some(endpoint) = moto::endpoint("concurrent_callers_share_one_sts_call") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_token(&token, "token");
    let identity = Arc::new(web_identity(
        &endpoint,
        &token,
        json!({"session_ttl": 60}),
        windows(58, 57),
    ));
    let burst = |identity: Arc<AwsIdentity>| async move {
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let identity = identity.clone();
                tokio::spawn(async move { get(&identity).await })
            })
            .collect();
        let mut keys = Vec::new();
        for task in tasks {
            keys.push(task.await.unwrap().unwrap().access_key_id().to_owned());
        }
        keys
    };

    // Cold cache: 50 callers, one STS call.
    let cold = burst(identity.clone()).await;
    assert!(cold.iter().all(|k| k == &cold[0]));
    assert_eq!(identity.cache().sts_calls(), 1);

    // Inside the mandatory window: 50 callers wait for one refresh and share it.
    let first = get(&identity).await.unwrap();
    age_until(&first, 57).await;
    let warm = burst(identity.clone()).await;
    assert!(warm.iter().all(|k| k == &warm[0]));
    assert_ne!(warm[0], cold[0]);
    assert_eq!(identity.cache().sts_calls(), 2);
}

#[tokio::test]
async fn assume_role_over_static_base_keys() {
    let Some(endpoint) = moto::endpoint("assume_role_over_static_base_keys") else {
        return;
    };
    let identity = identity(
        json!({
            "aws_access_key_id": "AKIDBASEKEYS",
            "aws_secret_access_key": SECRET,
            "aws_role_arn": ROLE_ARN,
            "aws_role_session_name": "ogx-assume",
            "session_ttl": 900,
        }),
        isolated_env(&[("AWS_ENDPOINT_URL_STS", &endpoint)]),
        RefreshWindows::default(),
    );
    let creds = get(&identity).await.unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"));
    assert_ne!(creds.access_key_id(), "AKIDBASEKEYS");
    let left = seconds_left(&creds);
    assert!((894.0..=901.0).contains(&left), "{left}");
    assert!(
        caller_arn(&endpoint, &creds)
            .await
            .ends_with("assumed-role/test-role/ogx-assume")
    );
    assert_eq!(identity.cache().sts_calls(), 1);
}

#[tokio::test]
async fn assume_role_without_base_credentials_fails_before_sts() {
    let Some(endpoint) = moto::endpoint("assume_role_without_base_credentials") else {
        return;
    };
    let identity = identity(
        json!({"aws_role_arn": ROLE_ARN}),
        isolated_env(&[("AWS_ENDPOINT_URL_STS", &endpoint)]),
        RefreshWindows::default(),
    );
    let error = get(&identity).await.unwrap_err();
    assert_eq!(
        error,
        HttpError::Credentials(crate::imports::aws::NO_CREDENTIALS_FOUND.into())
    );
    assert_eq!(identity.cache().sts_calls(), 0);
}

#[tokio::test]
async fn unreachable_sts_is_a_sanitized_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_token(&token, "never-shown-token");
    let identity = web_identity(
        &format!("http://127.0.0.1:{port}"),
        &token,
        json!({}),
        RefreshWindows::default(),
    );
    let error = get(&identity).await.unwrap_err();
    assert_eq!(
        error,
        HttpError::Credentials(
            "STS AssumeRoleWithWebIdentity failed: the STS endpoint could not be reached".into()
        )
    );
}
