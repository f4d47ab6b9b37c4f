//! The `remote::bedrock` config block, resolved once per instance into [`Resolved`].
//!
//! Keys (OGX's `BedrockConfig`; unknown keys are ignored, as OGX ignores them):
//!
//! | key | default |
//! | --- | --- |
//! | `aws_bedrock_bearer_token` (aliases `api_key`, `aws_bearer_token_bedrock`) | env `AWS_BEDROCK_BEARER_TOKEN`, then legacy `AWS_BEARER_TOKEN_BEDROCK`; blank = none |
//! | `region_name` | env `AWS_DEFAULT_REGION`, then `AWS_REGION`, then `us-east-2` |
//! | `profile_name` | env `AWS_PROFILE` |
//! | `aws_role_arn` | env `AWS_ROLE_ARN` |
//! | `aws_web_identity_token_file` | env `AWS_WEB_IDENTITY_TOKEN_FILE` |
//! | `aws_role_session_name` | env `AWS_ROLE_SESSION_NAME`; else the host picks a random name |
//! | `session_ttl` | env `AWS_SESSION_TTL`, then 3600 (0 also means 3600) |
//! | `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token` | read by the host itself, never by the plugin |
//! | `refresh_models` | `false`: list models only when true |
//! | `allowed_models` | none: every model is allowed |
//! | `model_overrides` | none: Converse for every model but `openai.gpt-oss-*` (see [`crate::routing`]) |
//! | `network.timeout` (seconds, or `{connect, read}`), `network.headers` | host defaults, no extra headers |
//!
//! Endpoints: `https://bedrock-runtime.{region}.amazonaws.com` for inference (the
//! OpenAI-compatible path, Converse and InvokeModel),
//! `https://bedrock.{region}.amazonaws.com` for the model list with SigV4 and
//! `https://bedrock-mantle.{region}.api.aws` for the model list with a bearer token, each
//! replaceable by the standard AWS endpoint variables (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`,
//! `AWS_ENDPOINT_URL_BEDROCK`, then `AWS_ENDPOINT_URL`; `AWS_ENDPOINT_URL_BEDROCK_MANTLE` for
//! the mantle endpoint, which has no standard variable).
//!
//! Env values are read when the instance is initialised (OGX reads them when it builds the
//! config). A value of the wrong type is refused with a message naming the key.

use std::time::Duration;

use ogx_provider_sdk::http::AwsCredentialSource;

use crate::routing::ModelRules;
use ogx_provider_sdk::{Map, Value};

/// Region when neither the config nor the environment names one (OGX's default).
pub const DEFAULT_REGION: &str = "us-east-2";

/// The config keys that may hold the bearer token, canonical name first.
pub const BEARER_TOKEN_KEYS: [&str; 3] = [
    "aws_bedrock_bearer_token",
    "api_key",
    "aws_bearer_token_bedrock",
];

/// Env variables holding the bearer token, canonical name first.
pub const BEARER_TOKEN_ENV: [&str; 2] = ["AWS_BEDROCK_BEARER_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"];

/// Env variables naming the region, in order.
pub const REGION_ENV: [&str; 2] = ["AWS_DEFAULT_REGION", "AWS_REGION"];

/// Replaces the inference endpoint (the AWS SDKs' variable for `bedrock-runtime`).
pub const RUNTIME_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME";
/// Replaces the control-plane endpoint (the AWS SDKs' variable for `bedrock`).
pub const CONTROL_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_BEDROCK";
/// Replaces the mantle endpoint (no AWS SDK has one; named like the others).
pub const MANTLE_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL_BEDROCK_MANTLE";
/// Replaces every endpoint without a specific variable set.
pub const GENERIC_ENDPOINT_ENV: &str = "AWS_ENDPOINT_URL";

/// (config key, env fallback) of the credential-source fields handed to the host.
const PROFILE: (&str, &str) = ("profile_name", "AWS_PROFILE");
const ROLE_ARN: (&str, &str) = ("aws_role_arn", "AWS_ROLE_ARN");
const TOKEN_FILE: (&str, &str) = ("aws_web_identity_token_file", "AWS_WEB_IDENTITY_TOKEN_FILE");
const SESSION_NAME: (&str, &str) = ("aws_role_session_name", "AWS_ROLE_SESSION_NAME");
const SESSION_TTL: (&str, &str) = ("session_ttl", "AWS_SESSION_TTL");

/// Every env variable the plugin reads; the descriptor declares exactly these.
pub const ENV_VARS: [&str; 13] = [
    BEARER_TOKEN_ENV[0],
    BEARER_TOKEN_ENV[1],
    REGION_ENV[0],
    REGION_ENV[1],
    RUNTIME_ENDPOINT_ENV,
    CONTROL_ENDPOINT_ENV,
    MANTLE_ENDPOINT_ENV,
    GENERIC_ENDPOINT_ENV,
    PROFILE.1,
    ROLE_ARN.1,
    TOKEN_FILE.1,
    SESSION_NAME.1,
    SESSION_TTL.1,
];

/// The config, resolved: everything a request needs, no secret but the bearer token.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The configured bearer token (non-blank, trimmed), if any.
    pub bearer_token: Option<String>,
    /// The region of the endpoints and of the SigV4 scope.
    pub region: String,
    /// The runtime endpoint (Converse, ConverseStream, InvokeModel).
    pub runtime_url: String,
    /// `…/openai/v1/chat/completions` on the runtime endpoint.
    pub chat_url: String,
    /// `…/foundation-models?byInferenceType=ON_DEMAND` on the control-plane endpoint.
    pub foundation_models_url: String,
    /// `…/inference-profiles` on the control-plane endpoint.
    pub inference_profiles_url: String,
    /// `…/v1/models` on the mantle endpoint.
    pub mantle_models_url: String,
    /// `model_overrides`: the API and Converse settings per model.
    pub model_rules: ModelRules,
    /// Where the host finds AWS credentials for SigV4.
    pub credentials: AwsCredentialSource,
    /// Whether `list-models` asks the upstream (otherwise it lists nothing).
    pub refresh_models: bool,
    /// The only models requests may use and listing may return; `None` for all.
    pub allowed_models: Option<Vec<String>>,
    /// `network.timeout` (the read timeout when split): the whole exchange's limit.
    pub timeout: Option<Duration>,
    /// `network.headers`: sent on every request, after ours.
    pub headers: Vec<(String, String)>,
}

/// Resolves a config block. `env` returns a variable's value (unset and empty are `None`).
pub fn resolve(
    config: &Map<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Resolved, String> {
    let env_str = |name: &str| env(name).and_then(non_blank);

    let mut bearer_token = None;
    for key in BEARER_TOKEN_KEYS {
        if let Some(token) = string(config, key)? {
            bearer_token = Some(token);
            break;
        }
    }
    let bearer_token = bearer_token.or_else(|| BEARER_TOKEN_ENV.iter().find_map(|n| env_str(n)));

    let region = match string(config, "region_name")? {
        Some(region) => region,
        None => REGION_ENV
            .iter()
            .find_map(|n| env_str(n))
            .unwrap_or_else(|| DEFAULT_REGION.to_string()),
    };
    if !region
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(format!("region_name '{region}' is not an AWS region name"));
    }

    let field = |(key, var): (&str, &str)| -> Result<Option<String>, String> {
        Ok(string(config, key)?.or_else(|| env_str(var)))
    };
    let session_ttl = match config.get(SESSION_TTL.0) {
        Some(value) if !is_blank(value) => Some(seconds(SESSION_TTL.0, value)?),
        _ => match env_str(SESSION_TTL.1) {
            Some(text) => Some(seconds(SESSION_TTL.1, &Value::String(text))?),
            None => None,
        },
    };
    let credentials = AwsCredentialSource {
        profile_name: field(PROFILE)?,
        role_arn: field(ROLE_ARN)?,
        web_identity_token_file: field(TOKEN_FILE)?,
        role_session_name: field(SESSION_NAME)?,
        // OGX: a falsy session_ttl means the default.
        session_ttl_seconds: session_ttl.filter(|ttl| *ttl != 0),
    };

    let endpoint = |specific: &str, default: String| {
        env_str(specific)
            .or_else(|| env_str(GENERIC_ENDPOINT_ENV))
            .map(|url| url.trim_end_matches('/').to_string())
            .unwrap_or(default)
    };
    let runtime = endpoint(
        RUNTIME_ENDPOINT_ENV,
        format!("https://bedrock-runtime.{region}.amazonaws.com"),
    );
    let control = endpoint(
        CONTROL_ENDPOINT_ENV,
        format!("https://bedrock.{region}.amazonaws.com"),
    );
    let mantle = endpoint(
        MANTLE_ENDPOINT_ENV,
        format!("https://bedrock-mantle.{region}.api.aws"),
    );

    let (timeout, headers) = network(config.get("network"))?;
    Ok(Resolved {
        bearer_token,
        chat_url: format!("{runtime}/openai/v1/chat/completions"),
        runtime_url: runtime,
        foundation_models_url: format!("{control}/foundation-models?byInferenceType=ON_DEMAND"),
        inference_profiles_url: format!("{control}/inference-profiles?maxResults=1000"),
        mantle_models_url: format!("{mantle}/v1/models"),
        model_rules: ModelRules::parse(config.get("model_overrides"))?,
        region,
        credentials,
        refresh_models: boolean(config, "refresh_models")?.unwrap_or(false),
        allowed_models: string_list(config, "allowed_models")?,
        timeout,
        headers,
    })
}

fn non_blank(s: String) -> Option<String> {
    let trimmed = s.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A string key: absent, null and blank are `None`; the value is trimmed.
fn string(config: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(non_blank(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

fn boolean(config: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => Ok(None),
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(format!("{key} must be true or false, not '{s}'")),
        },
        Some(_) => Err(format!("{key} must be true or false")),
    }
}

fn string_list(config: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, String> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(format!("{key} must be a list of model ids")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("{key} must be a list of model ids")),
    }
}

/// A whole number of seconds, given as a number or as text.
fn seconds(key: &str, value: &Value) -> Result<u32, String> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    parsed
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{key} must be a whole number of seconds, not {value}"))
}

/// `network.timeout` and `network.headers`.
type Network = (Option<Duration>, Vec<(String, String)>);

/// `network.timeout` and `network.headers`; TLS and proxy settings belong to the host.
fn network(value: Option<&Value>) -> Result<Network, String> {
    let Some(Value::Object(network)) = value else {
        return match value {
            None | Some(Value::Null) => Ok((None, Vec::new())),
            Some(_) => Err("network must be a mapping".into()),
        };
    };
    let secs = |v: &Value, what: &str| -> Result<Option<Duration>, String> {
        let n = match v {
            Value::Null => return Ok(None),
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n > 0.0 && n.is_finite() => Ok(Some(Duration::from_secs_f64(n))),
            _ => Err(format!("{what} must be a positive number of seconds")),
        }
    };
    let timeout = match network.get("timeout") {
        None => None,
        Some(Value::Object(split)) => match split.get("read") {
            Some(read) => secs(read, "network.timeout.read")?,
            None => None,
        },
        Some(other) => secs(other, "network.timeout")?,
    };
    let headers = match network.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(headers)) => headers
            .iter()
            .map(|(name, value)| match value {
                Value::String(s) => Ok((name.clone(), s.clone())),
                Value::Number(n) => Ok((name.clone(), n.to_string())),
                _ => Err(format!("network.headers.{name} must be a string")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err("network.headers must be a mapping".into()),
    };
    Ok((timeout, headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ogx_provider_sdk::Value;
    use serde_json::json;

    /// (config block, environment, expected)
    type Case<'a, T> = (Value, &'a [(&'a str, &'a str)], T);

    fn resolve_with(config: Value, env: &[(&str, &str)]) -> Result<Resolved, String> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, v)| k == name && !v.is_empty())
                .map(|(_, v)| v.clone())
        };
        resolve(config.as_object().unwrap(), &lookup)
    }

    #[test]
    fn defaults_without_env() {
        let r = resolve_with(json!({}), &[]).unwrap();
        assert_eq!(r.bearer_token, None);
        assert_eq!(r.region, "us-east-2");
        assert_eq!(
            r.chat_url,
            "https://bedrock-runtime.us-east-2.amazonaws.com/openai/v1/chat/completions"
        );
        assert_eq!(
            r.foundation_models_url,
            "https://bedrock.us-east-2.amazonaws.com/foundation-models?byInferenceType=ON_DEMAND"
        );
        assert_eq!(
            r.mantle_models_url,
            "https://bedrock-mantle.us-east-2.api.aws/v1/models"
        );
        assert_eq!(r.credentials, AwsCredentialSource::default());
        assert!(!r.refresh_models);
        assert_eq!(
            (r.allowed_models, r.timeout, r.headers),
            (None, None, vec![])
        );
    }

    #[test]
    fn bearer_token_from_each_name_and_env_in_order() {
        let cases: &[Case<Option<&str>>] = &[
            (
                json!({"aws_bedrock_bearer_token": "canon"}),
                &[],
                Some("canon"),
            ),
            (json!({"api_key": "legacy"}), &[], Some("legacy")),
            (
                json!({"aws_bearer_token_bedrock": "older"}),
                &[],
                Some("older"),
            ),
            (
                json!({"aws_bedrock_bearer_token": "", "api_key": " k "}),
                &[],
                Some("k"),
            ),
            (json!({"aws_bedrock_bearer_token": "  "}), &[], None),
            (json!({"api_key": null}), &[], None),
            (
                json!({}),
                &[("AWS_BEDROCK_BEARER_TOKEN", "envnew")],
                Some("envnew"),
            ),
            (
                json!({}),
                &[("AWS_BEARER_TOKEN_BEDROCK", "envold")],
                Some("envold"),
            ),
            (
                json!({}),
                &[
                    ("AWS_BEARER_TOKEN_BEDROCK", "envold"),
                    ("AWS_BEDROCK_BEARER_TOKEN", "envnew"),
                ],
                Some("envnew"),
            ),
            (
                json!({"api_key": "cfg"}),
                &[("AWS_BEDROCK_BEARER_TOKEN", "env")],
                Some("cfg"),
            ),
            (json!({}), &[("AWS_BEDROCK_BEARER_TOKEN", "   ")], None),
        ];
        for (config, env, want) in cases {
            let got = resolve_with(config.clone(), env).unwrap().bearer_token;
            assert_eq!(got.as_deref(), *want, "{config} {env:?}");
        }
    }

    #[test]
    fn region_order() {
        let cases: &[Case<&str>] = &[
            (
                json!({"region_name": "us-west-2"}),
                &[("AWS_DEFAULT_REGION", "eu-west-1")],
                "us-west-2",
            ),
            (
                json!({"region_name": ""}),
                &[("AWS_DEFAULT_REGION", "eu-west-1")],
                "eu-west-1",
            ),
            (
                json!({}),
                &[
                    ("AWS_REGION", "ap-south-1"),
                    ("AWS_DEFAULT_REGION", "eu-west-1"),
                ],
                "eu-west-1",
            ),
            (json!({}), &[("AWS_REGION", "ap-south-1")], "ap-south-1"),
            (json!({}), &[], "us-east-2"),
        ];
        for (config, env, want) in cases {
            let r = resolve_with(config.clone(), env).unwrap();
            assert_eq!(r.region, *want, "{config} {env:?}");
            assert!(
                r.chat_url
                    .contains(&format!("bedrock-runtime.{want}.amazonaws.com"))
            );
        }
        assert!(resolve_with(json!({"region_name": "us-west-2/../x"}), &[]).is_err());
    }

    #[test]
    fn endpoint_overrides() {
        let r = resolve_with(
            json!({"region_name": "us-west-2"}),
            &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9/")],
        )
        .unwrap();
        assert_eq!(r.chat_url, "http://127.0.0.1:9/openai/v1/chat/completions");
        assert_eq!(
            r.foundation_models_url,
            "http://127.0.0.1:9/foundation-models?byInferenceType=ON_DEMAND"
        );
        assert_eq!(r.mantle_models_url, "http://127.0.0.1:9/v1/models");
        let r = resolve_with(
            json!({}),
            &[
                ("AWS_ENDPOINT_URL", "http://generic"),
                ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://runtime:1"),
                ("AWS_ENDPOINT_URL_BEDROCK", "http://control:2"),
                ("AWS_ENDPOINT_URL_BEDROCK_MANTLE", "http://mantle:3"),
            ],
        )
        .unwrap();
        assert_eq!(r.chat_url, "http://runtime:1/openai/v1/chat/completions");
        assert!(r.foundation_models_url.starts_with("http://control:2/"));
        assert!(r.mantle_models_url.starts_with("http://mantle:3/"));
    }

    #[test]
    fn credential_source_from_config_then_env() {
        let r = resolve_with(
            json!({
                "aws_role_arn": "arn:aws:iam::123456789012:role/r",
                "aws_web_identity_token_file": "/tok",
                "aws_role_session_name": "ogx-bedrock-demo",
                "session_ttl": "900",
                "profile_name": "",
                "aws_access_key_id": "AKID", "aws_secret_access_key": "never-read",
            }),
            &[
                ("AWS_PROFILE", "dev"),
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/env"),
            ],
        )
        .unwrap();
        assert_eq!(
            r.credentials,
            AwsCredentialSource {
                profile_name: Some("dev".into()),
                role_arn: Some("arn:aws:iam::123456789012:role/r".into()),
                web_identity_token_file: Some("/tok".into()),
                role_session_name: Some("ogx-bedrock-demo".into()),
                session_ttl_seconds: Some(900),
            }
        );
        let r = resolve_with(
            json!({"aws_role_arn": ""}),
            &[
                ("AWS_ROLE_ARN", "arn:aws:iam::1:role/env"),
                ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
                ("AWS_SESSION_TTL", "1800"),
            ],
        )
        .unwrap();
        assert_eq!(
            r.credentials.role_arn.as_deref(),
            Some("arn:aws:iam::1:role/env")
        );
        assert_eq!(
            r.credentials.web_identity_token_file.as_deref(),
            Some("/var/run/token")
        );
        assert_eq!(r.credentials.session_ttl_seconds, Some(1800));
        for ttl in [json!(0), json!("0"), json!(null), json!("")] {
            let r = resolve_with(json!({"session_ttl": ttl}), &[]).unwrap();
            assert_eq!(r.credentials.session_ttl_seconds, None, "{ttl}");
        }
        assert_eq!(
            resolve_with(json!({"session_ttl": 3600}), &[])
                .unwrap()
                .credentials
                .session_ttl_seconds,
            Some(3600)
        );
        let err = resolve_with(json!({"session_ttl": "soon"}), &[]).unwrap_err();
        assert!(err.contains("session_ttl"), "{err}");
    }

    #[test]
    fn every_variable_read_is_declared() {
        let asked = std::cell::RefCell::new(Vec::new());
        let env = |name: &str| {
            asked.borrow_mut().push(name.to_string());
            None
        };
        resolve(json!({}).as_object().unwrap(), &env).unwrap();
        let asked = asked.into_inner();
        for name in &asked {
            assert!(
                ENV_VARS.contains(&name.as_str()),
                "{name} is read but not declared"
            );
        }
        for name in ENV_VARS {
            assert!(
                asked.iter().any(|a| a == name),
                "{name} is declared but never read"
            );
        }
    }

    #[test]
    fn models_and_network() {
        let r = resolve_with(
            json!({
                "refresh_models": "true",
                "allowed_models": ["a", "b"],
                "network": {"timeout": {"connect": 1, "read": 2.5}, "headers": {"X-Team": "ml"}},
                "something_unknown": {"x": 1}
            }),
            &[],
        )
        .unwrap();
        assert!(r.refresh_models);
        assert_eq!(
            r.allowed_models,
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(r.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(r.headers, vec![("X-Team".to_string(), "ml".to_string())]);
        let r = resolve_with(json!({"network": {"timeout": 30}}), &[]).unwrap();
        assert_eq!(r.timeout, Some(Duration::from_secs(30)));
        assert!(resolve_with(json!({"refresh_models": "maybe"}), &[]).is_err());
        assert!(resolve_with(json!({"allowed_models": "a"}), &[]).is_err());
        assert!(resolve_with(json!({"network": {"timeout": -1}}), &[]).is_err());
    }
}
