//! The AWS fields of a provider's config block, with OGX's environment defaults.
//!
//! OGX's `BedrockBaseConfig` reads each field's default from the environment when the config is
//! built: a key present in the config block wins, even when it is null or empty (both mean
//! unset, as OGX's `${env.X:=}` gives None); a key absent takes the environment variable
//! (empty = unset). `session_ttl` of 0 or unset means [`DEFAULT_SESSION_TTL_SECONDS`].
//!
//! Refuses: a field of the wrong type, a `session_ttl` (or `AWS_SESSION_TTL`) that is not a
//! whole number of seconds — like OGX, at construction. The error names the field or the
//! variable, never its value. Secrets are kept in [`Secret`], whose `Debug` is redacted.

use serde_json::Value;

use crate::environment::Environment;

/// STS `DurationSeconds` when `session_ttl` is unset or 0 (OGX's `DEFAULT_SESSION_TTL`).
pub const DEFAULT_SESSION_TTL_SECONDS: u32 = 3600;

/// A config block that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsConfigError {
    #[error("provider config field `{field}` must be {expected}")]
    InvalidField {
        field: &'static str,
        expected: &'static str,
    },
    #[error("environment variable {var} must be a whole number of seconds")]
    InvalidEnv { var: &'static str },
}

/// A secret string: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("********")
    }
}

/// The AWS part of a provider's config (OGX's Bedrock fields), defaults applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderAwsConfig {
    /// `aws_access_key_id` / `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key` / `AWS_SECRET_ACCESS_KEY`.
    pub(crate) secret_access_key: Option<Secret>,
    /// `aws_session_token` / `AWS_SESSION_TOKEN`.
    pub(crate) session_token: Option<Secret>,
    /// `profile_name` / `AWS_PROFILE`.
    pub profile_name: Option<String>,
    /// `aws_role_arn` / `AWS_ROLE_ARN`.
    pub role_arn: Option<String>,
    /// `aws_web_identity_token_file` / `AWS_WEB_IDENTITY_TOKEN_FILE`.
    pub web_identity_token_file: Option<String>,
    /// `aws_role_session_name` / `AWS_ROLE_SESSION_NAME`.
    pub role_session_name: Option<String>,
    /// `session_ttl` / `AWS_SESSION_TTL`; `None` when unset or 0.
    pub session_ttl: Option<u32>,
    /// `region_name` / `AWS_DEFAULT_REGION` (OGX does not read `AWS_REGION`).
    pub region_name: Option<String>,
}

impl ProviderAwsConfig {
    /// Reads the fields from `config` (the provider's `config` object; anything else counts as
    /// empty), falling back to `env` for absent keys.
    pub fn from_json(config: &Value, env: &Environment) -> Result<Self, AwsConfigError> {
        let empty = serde_json::Map::new();
        let object = config.as_object().unwrap_or(&empty);
        let text = |field: &'static str, var: &str| -> Result<Option<String>, AwsConfigError> {
            match object.get(field) {
                None => Ok(env.get(var)),
                Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(AwsConfigError::InvalidField {
                    field,
                    expected: "a string",
                }),
            }
        };
        let session_ttl =
            match object.get("session_ttl") {
                None => {
                    match env.get("AWS_SESSION_TTL") {
                        None => None,
                        Some(v) => Some(v.trim().parse::<u32>().map_err(|_| {
                            AwsConfigError::InvalidEnv {
                                var: "AWS_SESSION_TTL",
                            }
                        })?),
                    }
                }
                Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(s.trim().parse::<u32>().map_err(|_| ttl_error())?),
                Some(Value::Number(n)) => Some(
                    n.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(ttl_error)?,
                ),
                Some(_) => return Err(ttl_error()),
            };
        Ok(ProviderAwsConfig {
            access_key_id: text("aws_access_key_id", "AWS_ACCESS_KEY_ID")?,
            secret_access_key: text("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY")?.map(Secret),
            session_token: text("aws_session_token", "AWS_SESSION_TOKEN")?.map(Secret),
            profile_name: text("profile_name", "AWS_PROFILE")?,
            role_arn: text("aws_role_arn", "AWS_ROLE_ARN")?,
            web_identity_token_file: text(
                "aws_web_identity_token_file",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
            )?,
            role_session_name: text("aws_role_session_name", "AWS_ROLE_SESSION_NAME")?,
            session_ttl: session_ttl.filter(|ttl| *ttl > 0),
            region_name: text("region_name", "AWS_DEFAULT_REGION")?,
        })
    }

    /// Whether a secret access key is configured (the key itself stays private).
    pub fn has_secret_access_key(&self) -> bool {
        self.secret_access_key.is_some()
    }

    /// Whether a session token is configured.
    pub fn has_session_token(&self) -> bool {
        self.session_token.is_some()
    }
}

fn ttl_error() -> AwsConfigError {
    AwsConfigError::InvalidField {
        field: "session_ttl",
        expected: "a whole number of seconds",
    }
}
