//! Which Bedrock API serves a model, and the per-model settings the operator gave it.
//!
//! Bedrock answers chat in two ways: the OpenAI-compatible endpoint
//! (`/openai/v1/chat/completions`, only the `openai.gpt-oss-*` family) and Converse
//! (`/model/{modelId}/converse[-stream]`, every other text model, inference profile and ARN).
//! [`Api::default_for`] picks by model id; the `model_overrides` config block can force either
//! and add Converse fields per model:
//!
//! ```yaml
//! model_overrides:
//!   "us.anthropic.claude-*":            # an exact id, or a prefix ending in `*`
//!     api: converse                     # converse | openai
//!     guardrail_config: {guardrailIdentifier: gr-1, guardrailVersion: "1"}
//!     additional_model_request_fields: {top_k: 50}
//!     prompt_caching: true              # a cachePoint after the system prompt and the tools
//!     messages: translate               # native | translate: how /v1/messages is served
//! ```
//!
//! `messages` decides the `/v1/messages` path ([`ModelRules::native_messages`]): by default a
//! Claude model is served natively through InvokeModel ([`crate::messages`]) and every other
//! model is translated by the host to chat completions; `translate` keeps a Claude model on
//! the translated path, `native` sends a model whose id names no Claude model (an
//! application inference profile ARN) natively.
//!
//! The longest matching pattern wins. Registered models' `metadata` does not reach plugins
//! (the plugin interface passes only the upstream model id), so this block is where per-model
//! choices live. A malformed block fails `init` naming the key.
//!
//! The model id goes into the URL path percent-encoded as botocore does (everything but
//! `A-Z a-z 0-9 - . _ ~`), so ARNs (`arn:aws:bedrock:…:inference-profile/…`) form one segment.

use ogx_provider_sdk::{Map, Value};

/// The Bedrock API a chat request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /model/{modelId}/converse` and `/converse-stream`.
    Converse,
    /// `POST /openai/v1/chat/completions`.
    OpenAi,
}

impl Api {
    /// Converse for every model but the `openai.gpt-oss-*` family (ids and inference profiles).
    pub fn default_for(model: &str) -> Api {
        let base = strip_profile_prefix(model);
        if base.starts_with("openai.gpt-oss-") {
            Api::OpenAi
        } else {
            Api::Converse
        }
    }
}

/// Geography prefixes of system-defined inference profiles.
const PROFILE_PREFIXES: [&str; 6] = ["us.", "eu.", "apac.", "global.", "us-gov.", "ca."];

/// The foundation-model id inside an inference-profile id (`us.x` → `x`); others unchanged.
pub fn strip_profile_prefix(model: &str) -> &str {
    PROFILE_PREFIXES
        .iter()
        .find_map(|p| model.strip_prefix(p))
        .unwrap_or(model)
}

/// The inference-profile id to use for a foundation model in `region` (`us-east-1` →
/// `us.<model>`), or `None` for an id that is already a profile or an ARN.
pub fn profile_for(model: &str, region: &str) -> Option<String> {
    if model.starts_with("arn:") || strip_profile_prefix(model) != model {
        return None;
    }
    let geography = match region.split('-').next()? {
        "us" if region.starts_with("us-gov-") => "us-gov",
        "us" => "us",
        "eu" => "eu",
        "ap" => "apac",
        "ca" => "ca",
        _ => "global",
    };
    Some(format!("{geography}.{model}"))
}

/// `model` as one URL path segment, encoded as botocore encodes `{modelId}`.
pub fn path_segment(model: &str) -> String {
    let mut out = String::with_capacity(model.len() + 8);
    for byte in model.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What `model_overrides` says about one model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSettings {
    /// The API to use; `None` for [`Api::default_for`].
    pub api: Option<Api>,
    /// Converse `guardrailConfig`.
    pub guardrail_config: Option<Value>,
    /// Merged into Converse `additionalModelRequestFields` (the request's own win).
    pub additional_model_request_fields: Option<Map<String, Value>>,
    /// A `cachePoint` after the system prompt and after the tools.
    pub prompt_caching: bool,
    /// `/v1/messages` natively (`Some(true)`) or translated (`Some(false)`); `None` decides
    /// by model id.
    pub native_messages: Option<bool>,
}

/// The `model_overrides` block: (pattern, settings), in config order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelRules(Vec<(String, ModelSettings)>);

impl ModelRules {
    /// Parses `model_overrides`; the error names the key at fault.
    pub fn parse(value: Option<&Value>) -> Result<ModelRules, String> {
        let entries = match value {
            None | Some(Value::Null) => return Ok(ModelRules::default()),
            Some(Value::Object(entries)) => entries,
            Some(_) => {
                return Err(
                    "model_overrides must be a mapping of model id (or prefix*) to settings".into(),
                );
            }
        };
        let mut rules = Vec::new();
        for (pattern, settings) in entries {
            let key = format!("model_overrides.{pattern}");
            let Value::Object(settings) = settings else {
                return Err(format!("{key} must be a mapping"));
            };
            let mut parsed = ModelSettings::default();
            for (name, value) in settings {
                match (name.as_str(), value) {
                    (_, Value::Null) => {}
                    ("api", Value::String(api)) => {
                        parsed.api = Some(match api.trim().to_ascii_lowercase().as_str() {
                            "converse" => Api::Converse,
                            "openai" => Api::OpenAi,
                            other => {
                                return Err(format!(
                                    "{key}.api must be `converse` or `openai`, not `{other}`"
                                ));
                            }
                        });
                    }
                    ("guardrail_config" | "guardrailConfig", Value::Object(_)) => {
                        parsed.guardrail_config = Some(value.clone());
                    }
                    (
                        "additional_model_request_fields" | "additionalModelRequestFields",
                        Value::Object(fields),
                    ) => parsed.additional_model_request_fields = Some(fields.clone()),
                    ("prompt_caching", Value::Bool(on)) => parsed.prompt_caching = *on,
                    ("messages", Value::String(path)) => {
                        parsed.native_messages = Some(
                            match path.trim().to_ascii_lowercase().as_str() {
                                "native" => true,
                                "translate" => false,
                                other => {
                                    return Err(format!(
                                        "{key}.messages must be `native` or `translate`, not `{other}`"
                                    ));
                                }
                            },
                        );
                    }
                    _ => {
                        return Err(format!(
                            "{key}.{name} is not a setting this provider knows (api: converse|openai, guardrail_config: mapping, additional_model_request_fields: mapping, prompt_caching: true|false, messages: native|translate)"
                        ));
                    }
                }
            }
            rules.push((pattern.clone(), parsed));
        }
        Ok(ModelRules(rules))
    }

    /// The settings of the longest pattern matching `model` (defaults when none does).
    pub fn for_model(&self, model: &str) -> ModelSettings {
        self.0
            .iter()
            .filter_map(|(pattern, settings)| {
                let len = match pattern.strip_suffix('*') {
                    Some(prefix) if model.starts_with(prefix) => prefix.len(),
                    None if pattern == model => pattern.len() + 1,
                    _ => return None,
                };
                Some((len, settings))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, settings)| settings.clone())
            .unwrap_or_default()
    }

    /// Whether `/v1/messages` for `model` goes to InvokeModel natively: the `messages`
    /// setting, else whether it is a Claude model.
    pub fn native_messages(&self, model: &str) -> bool {
        self.for_model(model)
            .native_messages
            .unwrap_or_else(|| crate::messages::is_claude(model))
    }

    /// The API `model` is served by.
    pub fn api_for(&self, model: &str) -> Api {
        self.for_model(model)
            .api
            .unwrap_or_else(|| Api::default_for(model))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_api_by_model_id() {
        let cases = [
            ("openai.gpt-oss-20b-1:0", Api::OpenAi),
            ("us.openai.gpt-oss-120b-1:0", Api::OpenAi),
            ("anthropic.claude-3-5-sonnet-20240620-v1:0", Api::Converse),
            ("us.anthropic.claude-sonnet-4-20250514-v1:0", Api::Converse),
            ("amazon.nova-pro-v1:0", Api::Converse),
            ("meta.llama3-1-70b-instruct-v1:0", Api::Converse),
            (
                "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0",
                Api::Converse,
            ),
        ];
        for (model, want) in cases {
            assert_eq!(Api::default_for(model), want, "{model}");
        }
    }

    #[test]
    fn path_segments_are_encoded_like_botocore() {
        assert_eq!(
            path_segment("anthropic.claude-3-haiku-20240307-v1:0"),
            "anthropic.claude-3-haiku-20240307-v1%3A0"
        );
        assert_eq!(
            path_segment("arn:aws:bedrock:us-west-2:1:inference-profile/us.x~y"),
            "arn%3Aaws%3Abedrock%3Aus-west-2%3A1%3Ainference-profile%2Fus.x~y"
        );
        assert_eq!(path_segment("a b"), "a%20b");
    }

    #[test]
    fn profiles_for_foundation_models() {
        assert_eq!(
            profile_for("anthropic.claude-3-5-haiku-20241022-v1:0", "us-west-2").as_deref(),
            Some("us.anthropic.claude-3-5-haiku-20241022-v1:0")
        );
        assert_eq!(
            profile_for("amazon.nova-pro-v1:0", "eu-central-1").as_deref(),
            Some("eu.amazon.nova-pro-v1:0")
        );
        assert_eq!(
            profile_for("m", "ap-northeast-1").as_deref(),
            Some("apac.m")
        );
        assert_eq!(
            profile_for("m", "us-gov-west-1").as_deref(),
            Some("us-gov.m")
        );
        assert_eq!(profile_for("m", "me-south-1").as_deref(), Some("global.m"));
        assert_eq!(profile_for("us.m", "us-east-1"), None);
        assert_eq!(profile_for("arn:aws:bedrock:x", "us-east-1"), None);
    }

    #[test]
    fn overrides_longest_pattern_wins() {
        let rules = ModelRules::parse(Some(&json!({
            "us.anthropic.*": {"api": "converse", "prompt_caching": true},
            "us.anthropic.claude-x": {"guardrail_config": {"guardrailIdentifier": "g", "guardrailVersion": "1"}},
            "openai.gpt-oss-20b-1:0": {"api": "CONVERSE"},
            "custom.*": {"api": "openai", "additional_model_request_fields": {"top_k": 5}},
        })))
        .unwrap();
        assert_eq!(rules.api_for("openai.gpt-oss-20b-1:0"), Api::Converse);
        assert_eq!(rules.api_for("openai.gpt-oss-120b-1:0"), Api::OpenAi);
        assert_eq!(rules.api_for("custom.model"), Api::OpenAi);
        let exact = rules.for_model("us.anthropic.claude-x");
        assert!(exact.guardrail_config.is_some() && !exact.prompt_caching);
        assert!(rules.for_model("us.anthropic.claude-y").prompt_caching);
        assert_eq!(
            rules.for_model("custom.m").additional_model_request_fields,
            Some(json!({"top_k": 5}).as_object().unwrap().clone())
        );
        assert_eq!(rules.for_model("other"), ModelSettings::default());
    }

    #[test]
    fn messages_are_native_for_claude_unless_overridden() {
        let rules = ModelRules::parse(Some(&json!({
            "us.anthropic.claude-3-haiku*": {"messages": "translate"},
            "arn:aws:bedrock:us-east-1:1:application-inference-profile/*": {"messages": "Native"},
        })))
        .unwrap();
        assert!(rules.native_messages("us.anthropic.claude-sonnet-4-20250514-v1:0"));
        assert!(!rules.native_messages("us.anthropic.claude-3-haiku-20240307-v1:0"));
        assert!(!rules.native_messages("amazon.nova-pro-v1:0"));
        assert!(
            rules.native_messages("arn:aws:bedrock:us-east-1:1:application-inference-profile/x")
        );
    }

    #[test]
    fn malformed_overrides_name_the_key() {
        let cases = [
            (json!([1]), "model_overrides must be"),
            (json!({"m": 1}), "model_overrides.m must be a mapping"),
            (json!({"m": {"api": "invoke"}}), "model_overrides.m.api"),
            (
                json!({"m": {"guardrail": {}}}),
                "model_overrides.m.guardrail",
            ),
            (
                json!({"m": {"prompt_caching": "yes"}}),
                "model_overrides.m.prompt_caching",
            ),
            (
                json!({"m": {"messages": "passthrough"}}),
                "model_overrides.m.messages must be `native` or `translate`",
            ),
        ];
        for (value, want) in cases {
            let err = ModelRules::parse(Some(&value)).unwrap_err();
            assert!(err.contains(want), "{value}: {err}");
        }
    }
}
