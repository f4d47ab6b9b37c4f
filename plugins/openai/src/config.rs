//! The `config:` block of every provider type this plugin serves, and its validation.
//!
//! One struct covers the family: each type reads the keys OGX defines for it (see
//! [`crate::family`]) and ignores the others, as OGX ignores unknown keys. Blank strings count
//! as absent, as an empty `${env.VAR:=}` does in OGX. A config OGX refuses (a non-HTTP
//! `base_url`, Gemini's `api_key` with `access_token`, ...) is refused at `init` with a
//! message naming the key; nothing else is.

use ogx_provider_sdk::{Map, ProviderError, Value};
use serde::{Deserialize, Deserializer};

use crate::family::{Family, KeyField, NVIDIA_HOSTED_HOST};
use crate::oci::{OciKeys, OciSettings};

/// OGX's default for vLLM's `max_tokens`.
pub const VLLM_DEFAULT_MAX_TOKENS: u64 = 4096;

/// Outbound header names a `forward_headers` mapping may never target (OGX's
/// `CORE_BLOCKED_FORWARD_HEADERS`): framing, cookies and proxy/trust headers.
const CORE_BLOCKED_FORWARD_HEADERS: [&str; 17] = [
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "cookie",
    "set-cookie",
    "forwarded",
    "proxy-authorization",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-prefix",
    "x-real-ip",
];

/// The config keys of the family, as written in a run config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Upstream base URL, e.g. `https://api.openai.com/v1`.
    #[serde(deserialize_with = "blank_is_none")]
    pub base_url: Option<String>,
    /// Credential of `remote::openai`, `remote::passthrough`, ... (`KeyField::ApiKey`).
    #[serde(deserialize_with = "blank_is_none")]
    pub api_key: Option<String>,
    /// Credential of `remote::vllm` and `remote::runpod` (`KeyField::ApiToken`).
    #[serde(deserialize_with = "blank_is_none")]
    pub api_token: Option<String>,
    /// Only these upstream model ids may be listed and used; `None` allows all.
    pub allowed_models: Option<Vec<String>>,
    /// Whether the host should re-list models periodically (read by the host).
    pub refresh_models: bool,
    /// vLLM: `max_tokens` added to chat requests that set none.
    #[serde(deserialize_with = "int_or_numeric_string")]
    pub max_tokens: Option<u64>,
    /// Passthrough: provider-data key -> outbound header name.
    pub forward_headers: Option<Map<String, Value>>,
    /// Passthrough: more header names `forward_headers` may not target.
    pub extra_blocked_headers: Vec<String>,
    /// Gemini: an OAuth2 access token, sent as the bearer instead of `api_key`.
    #[serde(deserialize_with = "blank_is_none")]
    pub access_token: Option<String>,
    /// Gemini: the Google Cloud quota project (`x-goog-user-project`), with `access_token` only.
    #[serde(deserialize_with = "blank_is_none")]
    pub project: Option<String>,
    /// NVIDIA: rerank model id -> hosted rerank URL; its ids are listed as rerank models.
    pub rerank_model_to_url: Option<Map<String, Value>>,
    /// DeepSeek: the root of its native Anthropic Messages API (`/v1/messages` is appended).
    #[serde(deserialize_with = "blank_is_none")]
    pub anthropic_base_url: Option<String>,
    /// `false`: serve `/v1/messages` by translation to chat completions even where the type's
    /// upstream speaks Messages natively (an older vLLM without `/v1/messages`, say).
    pub native_messages: Option<bool>,
    /// OCI: `oci_auth_type`, `oci_region`, `oci_compartment_id`, `oci_config_file_path`,
    /// `oci_config_profile` (see [`crate::oci`]).
    #[serde(deserialize_with = "blank_is_none")]
    pub oci_auth_type: Option<String>,
    #[serde(deserialize_with = "blank_is_none")]
    pub oci_region: Option<String>,
    #[serde(deserialize_with = "blank_is_none")]
    pub oci_compartment_id: Option<String>,
    #[serde(deserialize_with = "blank_is_none")]
    pub oci_config_file_path: Option<String>,
    #[serde(deserialize_with = "blank_is_none")]
    pub oci_config_profile: Option<String>,
}

/// OGX's default `rerank_model_to_url` of `remote::nvidia`.
pub const NVIDIA_DEFAULT_RERANK_MODELS: [&str; 3] = [
    "nv-rerank-qa-mistral-4b:1",
    "nvidia/nv-rerankqa-mistral-4b-v3",
    "nvidia/llama-3.2-nv-rerankqa-1b-v2",
];

fn blank_is_none<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(de)?;
    Ok(value.filter(|s| !s.trim().is_empty()))
}

fn int_or_numeric_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum IntOrString {
        Int(u64),
        Text(String),
    }
    match Option::<IntOrString>::deserialize(de)? {
        None => Ok(None),
        Some(IntOrString::Int(n)) => Ok(Some(n)),
        Some(IntOrString::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(IntOrString::Text(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("expected an integer, got {s:?}"))),
    }
}

/// A config that passed [`validate`], with the family's defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// The provider type.
    pub family: Family,
    /// The configured or default base URL; `None` for types without a default.
    pub base_url: Option<String>,
    /// The configured credential, from the family's key field.
    pub key: Option<String>,
    /// `allowed_models`, for the families that check it.
    pub allowed_models: Option<Vec<String>>,
    /// vLLM's `max_tokens` default for chat requests.
    pub max_tokens: Option<u64>,
    /// Passthrough's provider-data key -> header name mapping, validated.
    pub forward_headers: Vec<(String, String)>,
    /// Headers sent on every request (Gemini's `x-goog-user-project`).
    pub headers: Vec<(String, String)>,
    /// NVIDIA's rerank model ids, listed besides the upstream's models.
    pub rerank_models: Vec<String>,
    /// The root `/v1/messages` is appended to, for the types that speak Messages natively
    /// (see [`Family::native_messages`]): the base URL without its `/v1`, or DeepSeek's
    /// separate `anthropic_base_url`.
    pub anthropic_root: Option<String>,
    /// `remote::oci`'s identity, region and compartment.
    pub oci: Option<OciSettings>,
}

impl Resolved {
    /// Whether a request without any credential is refused. NVIDIA needs a key only on its
    /// hosted API (OGX: `_is_nvidia_hosted`).
    pub fn requires_key(&self) -> bool {
        match self.family {
            Family::Nvidia => {
                self.base_url.as_deref().and_then(url_host) == Some(NVIDIA_HOSTED_HOST)
            }
            family => family.requires_key(),
        }
    }
}

/// The host of an `http(s)://` URL, without port or credentials.
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => host_port.split(':').next()?,
    };
    Some(host)
}

/// Checks `config` for `family` and applies the defaults. `env_base_url` is the value of the
/// family's [`Family::base_url_env`], which replaces its default `base_url`.
pub fn validate(
    family: Family,
    provider_id: &str,
    config: Config,
    env_base_url: Option<String>,
) -> Result<Resolved, ProviderError> {
    let invalid = |what: String| {
        ProviderError::InvalidRequest(format!(
            "Invalid config for provider '{provider_id}' ({}): {what}",
            family.provider_type()
        ))
    };
    let configured = config.base_url.filter(|_| !family.fixed_base_url());
    let from_env = env_base_url
        .filter(|s| !s.trim().is_empty())
        .map(|url| match family {
            // ANTHROPIC_BASE_URL names the API root, as for the Anthropic SDK.
            Family::Anthropic => format!("{}/v1", url.trim().trim_end_matches('/')),
            _ => url.trim().to_string(),
        });
    let source = match (&configured, &from_env, family.base_url_env()) {
        (None, Some(_), Some(var)) => format!("environment variable `{var}`"),
        _ => "field `base_url`".to_string(),
    };
    let oci = match family {
        Family::Oci => Some(
            crate::oci::settings(OciKeys {
                auth_type: config.oci_auth_type,
                region: config.oci_region,
                compartment_id: config.oci_compartment_id,
                config_file_path: config.oci_config_file_path,
                config_profile: config.oci_config_profile,
            })
            .map_err(invalid)?,
        ),
        _ => None,
    };
    let base_url = configured
        .or(from_env)
        .or_else(|| family.default_base_url().map(str::to_string))
        .or_else(|| oci.as_ref().map(|o| crate::oci::base_url(&o.region)));
    if let Some(url) = &base_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(invalid(format!(
            "{source}: {url:?} is not an http:// or https:// URL"
        )));
    }
    if family == Family::Vllm && base_url.is_none() {
        return Err(ProviderError::InvalidRequest(
            "You must provide a URL in config.yaml (or via the VLLM_URL environment variable) to use vLLM."
                .into(),
        ));
    }
    let mut key = match family.key_field() {
        KeyField::ApiKey => config.api_key,
        KeyField::ApiToken => config.api_token,
        KeyField::None => None,
    };
    let mut headers = Vec::new();
    if let Some(oci) = &oci {
        headers.push(("CompartmentId".to_string(), oci.compartment_id.clone()));
    }
    if family == Family::Gemini {
        // OGX's GeminiConfig._validate_auth, message for message.
        match (&key, &config.access_token, &config.project) {
            (Some(_), Some(_), _) => {
                return Err(invalid(
                    "api_key and access_token are mutually exclusive — set one or the other, not both".into(),
                ));
            }
            (_, Some(_), None) => {
                return Err(invalid(
                    "project is required when using access_token (Google APIs need a quota project for OAuth/ADC credentials)".into(),
                ));
            }
            (_, None, Some(_)) => {
                return Err(invalid(
                    "project requires access_token — api_key authentication does not use a quota project".into(),
                ));
            }
            _ => {}
        }
        if let Some(project) = config.project {
            headers.push(("x-goog-user-project".to_string(), project));
        }
        key = key.or(config.access_token);
    }
    let rerank_models = match (family, config.rerank_model_to_url) {
        (Family::Nvidia, Some(map)) => map.keys().cloned().collect(),
        (Family::Nvidia, None) => NVIDIA_DEFAULT_RERANK_MODELS
            .iter()
            .map(|s| s.to_string())
            .collect(),
        _ => Vec::new(),
    };
    let max_tokens = match family {
        Family::Vllm => {
            Some(config.max_tokens.unwrap_or(VLLM_DEFAULT_MAX_TOKENS)).filter(|n| *n > 0)
        }
        _ => None,
    };
    let forward_headers = match family {
        Family::Passthrough => validate_forward_headers(
            config.forward_headers.unwrap_or_default(),
            &config.extra_blocked_headers,
        )
        .map_err(invalid)?,
        _ => Vec::new(),
    };
    let anthropic_root = match config.native_messages {
        Some(false) => None,
        _ => anthropic_root(family, base_url.as_deref(), config.anthropic_base_url),
    };
    Ok(Resolved {
        family,
        base_url,
        key,
        allowed_models: config
            .allowed_models
            .filter(|_| family.checks_allowed_models()),
        max_tokens,
        forward_headers,
        headers,
        rerank_models,
        anthropic_root,
        oci,
    })
}

/// See [`Resolved::anthropic_root`].
fn anthropic_root(
    family: Family,
    base_url: Option<&str>,
    configured: Option<String>,
) -> Option<String> {
    family.native_messages()?;
    let root = match family {
        Family::Deepseek => {
            configured.unwrap_or_else(|| crate::family::DEEPSEEK_ANTHROPIC_BASE_URL.to_string())
        }
        _ => {
            let base = base_url?.trim_end_matches('/');
            base.strip_suffix("/v1").unwrap_or(base).to_string()
        }
    };
    Some(root.trim_end_matches('/').to_string())
}

fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// OGX's `validate_forward_headers_config`: every problem is listed in one message.
fn validate_forward_headers(
    mapping: Map<String, Value>,
    extra_blocked: &[String],
) -> Result<Vec<(String, String)>, String> {
    let mut errors = Vec::new();
    let mut blocked: Vec<String> = CORE_BLOCKED_FORWARD_HEADERS
        .iter()
        .map(|s| s.to_string())
        .collect();
    for name in extra_blocked {
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            errors.push("extra_blocked_headers contains an empty header name".to_string());
        } else {
            blocked.push(name);
        }
    }
    let mut pairs = Vec::new();
    for (key, header) in mapping {
        let Value::String(header) = header else {
            errors.push(format!("header for provider key '{key}' is not a string"));
            continue;
        };
        if key.starts_with("__") {
            errors.push(format!("provider key '{key}' uses reserved __ prefix"));
        }
        let stripped = header.trim();
        if !is_token(stripped) {
            errors.push(format!("header '{header}' is not a valid HTTP header name"));
        }
        if blocked.contains(&stripped.to_ascii_lowercase()) {
            errors.push(format!("header '{header}' is blocked (security-sensitive)"));
        }
        pairs.push((key, stripped.to_string()));
    }
    if errors.is_empty() {
        Ok(pairs)
    } else {
        Err(format!("invalid forward_headers: {}", errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(json: Value) -> Config {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_and_key_fields_per_family() {
        let cases = [
            (
                Family::OpenAi,
                json!({"api_key": "k", "api_token": "t"}),
                Some("https://api.openai.com/v1"),
                Some("k"),
            ),
            (
                Family::Vllm,
                json!({"base_url": "http://v:8000/v1", "api_key": "k", "api_token": "t"}),
                Some("http://v:8000/v1"),
                Some("t"),
            ),
            (
                Family::Ollama,
                json!({"api_key": "k"}),
                Some("http://localhost:11434/v1"),
                None,
            ),
            (
                Family::LlamaCppServer,
                json!({}),
                Some("http://localhost:8080/v1"),
                None,
            ),
            (Family::Passthrough, json!({"api_key": "  "}), None, None),
            (
                Family::Groq,
                json!({"api_key": ""}),
                Some("https://api.groq.com/openai/v1"),
                None,
            ),
            (Family::Runpod, json!({"api_token": "t"}), None, Some("t")),
            (
                Family::LlamaOpenAiCompat,
                json!({"base_url": null}),
                Some("https://api.llama.com/compat/v1/"),
                None,
            ),
            (
                Family::Together,
                json!({"api_key": "k"}),
                Some("https://api.together.xyz/v1"),
                Some("k"),
            ),
            (
                Family::Anthropic,
                json!({"api_key": "k"}),
                Some("https://api.anthropic.com/v1"),
                Some("k"),
            ),
            (
                Family::Gemini,
                json!({"api_key": "k"}),
                Some("https://generativelanguage.googleapis.com/v1beta/openai/"),
                Some("k"),
            ),
            (
                Family::Meta,
                json!({}),
                Some("https://api.meta.ai/v1"),
                None,
            ),
            (
                Family::Sambanova,
                json!({"api_key": "k"}),
                Some("https://api.sambanova.ai/v1"),
                Some("k"),
            ),
            (
                Family::Nvidia,
                json!({"api_key": "k"}),
                Some("https://integrate.api.nvidia.com/v1"),
                Some("k"),
            ),
            (
                Family::Databricks,
                json!({"base_url": "https://w/serving-endpoints", "api_key": "no", "api_token": "t"}),
                Some("https://w/serving-endpoints"),
                Some("t"),
            ),
            (
                Family::Deepseek,
                json!({"api_key": "k"}),
                Some("https://api.deepseek.com/v1"),
                Some("k"),
            ),
            (
                Family::Mistral,
                json!({"api_key": "k"}),
                Some("https://api.mistral.ai/v1"),
                Some("k"),
            ),
            (
                Family::Azure,
                json!({"api_key": "k", "api_version": "2024-12-01-preview", "api_type": "azure"}),
                None,
                Some("k"),
            ),
            (
                Family::TextEmbeddingsInference,
                json!({}),
                Some("http://localhost:8080/v1"),
                None,
            ),
        ];
        for (family, json, base_url, key) in cases {
            let resolved = validate(family, "p", parse(json), None).unwrap();
            assert_eq!(resolved.base_url.as_deref(), base_url, "{family:?}");
            assert_eq!(resolved.key.as_deref(), key, "{family:?}");
        }
    }

    #[test]
    fn cerebras_reads_its_env_default_only_without_base_url() {
        let env = Some("https://c.example/v1".to_string());
        let resolved = validate(Family::Cerebras, "p", parse(json!({})), env.clone()).unwrap();
        assert_eq!(resolved.base_url.as_deref(), Some("https://c.example/v1"));
        let resolved = validate(
            Family::Cerebras,
            "p",
            parse(json!({"base_url": "https://x/v1"})),
            env,
        )
        .unwrap();
        assert_eq!(resolved.base_url.as_deref(), Some("https://x/v1"));
        let resolved = validate(Family::Cerebras, "p", parse(json!({})), None).unwrap();
        assert_eq!(
            resolved.base_url.as_deref(),
            Some("https://api.cerebras.ai/v1")
        );
    }

    #[test]
    fn vllm_needs_a_base_url_and_defaults_max_tokens() {
        let err = validate(Family::Vllm, "p", parse(json!({"base_url": ""})), None).unwrap_err();
        assert_eq!(
            err.message(),
            "You must provide a URL in config.yaml (or via the VLLM_URL environment variable) to use vLLM."
        );
        let resolved = validate(
            Family::Vllm,
            "p",
            parse(json!({"base_url": "http://v/v1"})),
            None,
        )
        .unwrap();
        assert_eq!(resolved.max_tokens, Some(4096));
        let resolved = validate(
            Family::Vllm,
            "p",
            parse(json!({"base_url": "http://v/v1", "max_tokens": "512"})),
            None,
        )
        .unwrap();
        assert_eq!(resolved.max_tokens, Some(512));
        let resolved = validate(
            Family::Vllm,
            "p",
            parse(json!({"base_url": "http://v/v1", "max_tokens": 0})),
            None,
        )
        .unwrap();
        assert_eq!(resolved.max_tokens, None);
    }

    #[test]
    fn base_url_must_be_http() {
        let err = validate(
            Family::OpenAi,
            "oai",
            parse(json!({"base_url": "ftp://x"})),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Invalid config for provider 'oai' (remote::openai): field `base_url`: \"ftp://x\" is not an http:// or https:// URL"
        );
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let config = parse(json!({"api_key": "k", "network": {"timeout": 3}, "surprise": 1}));
        assert_eq!(config.api_key.as_deref(), Some("k"));
    }

    #[test]
    fn allowed_models_are_not_checked_by_passthrough() {
        let config = json!({"base_url": "http://p", "allowed_models": ["a"]});
        let resolved = validate(Family::Passthrough, "p", parse(config.clone()), None).unwrap();
        assert_eq!(resolved.allowed_models, None);
        let resolved = validate(Family::OpenAi, "p", parse(config), None).unwrap();
        assert_eq!(resolved.allowed_models, Some(vec!["a".to_string()]));
    }

    #[test]
    fn forward_headers_are_validated_like_ogx() {
        let ok = validate(
            Family::Passthrough,
            "p",
            parse(json!({"forward_headers": {"maas_token": " Authorization ", "tenant": "X-Tenant-ID"}})),
            None,
        )
        .unwrap();
        assert_eq!(
            ok.forward_headers,
            vec![
                ("maas_token".to_string(), "Authorization".to_string()),
                ("tenant".to_string(), "X-Tenant-ID".to_string())
            ]
        );
        let err = validate(
            Family::Passthrough,
            "pt",
            parse(json!({
                "forward_headers": {"__user": "X-User", "c": "Cookie", "bad": "a b", "t": "X-Team"},
                "extra_blocked_headers": ["x-team", " "]
            })),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Invalid config for provider 'pt' (remote::passthrough): invalid forward_headers: \
             extra_blocked_headers contains an empty header name; \
             provider key '__user' uses reserved __ prefix; \
             header 'Cookie' is blocked (security-sensitive); \
             header 'a b' is not a valid HTTP header name; \
             header 'X-Team' is blocked (security-sensitive)"
        );
    }

    #[test]
    fn env_base_urls_replace_defaults_and_fixed_urls_ignore_the_config() {
        let env = |s: &str| Some(s.to_string());
        let cases = [
            (
                Family::Deepseek,
                json!({}),
                env("http://127.0.0.1:9/v1"),
                "http://127.0.0.1:9/v1",
            ),
            (
                Family::Deepseek,
                json!({"base_url": "http://cfg/v1"}),
                env("http://127.0.0.1:9/v1"),
                "http://cfg/v1",
            ),
            (
                Family::Mistral,
                json!({}),
                env("http://m/v1"),
                "http://m/v1",
            ),
            (
                Family::Nvidia,
                json!({}),
                env("http://nim:8000/v1"),
                "http://nim:8000/v1",
            ),
            (
                Family::Anthropic,
                json!({"base_url": "http://ignored"}),
                env("http://127.0.0.1:9/"),
                "http://127.0.0.1:9/v1",
            ),
            (
                Family::Anthropic,
                json!({"base_url": "http://ignored"}),
                None,
                "https://api.anthropic.com/v1",
            ),
            (
                Family::Gemini,
                json!({}),
                env("http://127.0.0.1:9/v1beta/openai/"),
                "http://127.0.0.1:9/v1beta/openai/",
            ),
            (
                Family::Gemini,
                json!({}),
                env(" "),
                "https://generativelanguage.googleapis.com/v1beta/openai/",
            ),
        ];
        for (family, json, env, want) in cases {
            let resolved = validate(family, "p", parse(json), env).unwrap();
            assert_eq!(resolved.base_url.as_deref(), Some(want), "{family:?}");
        }
        let err = validate(Family::Mistral, "m", parse(json!({})), env("ftp://x")).unwrap_err();
        assert_eq!(
            err.message(),
            "Invalid config for provider 'm' (remote::mistral): environment variable `MISTRAL_BASE_URL`: \"ftp://x\" is not an http:// or https:// URL"
        );
    }

    #[test]
    fn gemini_auth_rules_match_ogx() {
        let resolved = validate(
            Family::Gemini,
            "g",
            parse(json!({"access_token": "tok", "project": "proj", "api_key": ""})),
            None,
        )
        .unwrap();
        assert_eq!(resolved.key.as_deref(), Some("tok"));
        assert_eq!(
            resolved.headers,
            vec![("x-goog-user-project".to_string(), "proj".to_string())]
        );
        let prefix = "Invalid config for provider 'g' (remote::gemini): ";
        let cases = [
            (
                json!({"api_key": "k", "access_token": "t", "project": "p"}),
                "api_key and access_token are mutually exclusive — set one or the other, not both",
            ),
            (
                json!({"access_token": "t"}),
                "project is required when using access_token (Google APIs need a quota project for OAuth/ADC credentials)",
            ),
            (
                json!({"api_key": "k", "project": "p"}),
                "project requires access_token — api_key authentication does not use a quota project",
            ),
        ];
        for (json, want) in cases {
            let err = validate(Family::Gemini, "g", parse(json), None).unwrap_err();
            assert_eq!(err.message(), format!("{prefix}{want}"));
        }
        let blank = parse(json!({"api_key": "", "access_token": "", "project": ""}));
        assert!(validate(Family::Gemini, "g", blank, None).is_ok());
    }

    #[test]
    fn nvidia_needs_a_key_only_when_hosted_and_lists_rerank_models() {
        let hosted = validate(Family::Nvidia, "n", parse(json!({})), None).unwrap();
        assert!(hosted.requires_key());
        assert_eq!(hosted.rerank_models.len(), 3);
        let local = validate(
            Family::Nvidia,
            "n",
            parse(
                json!({"base_url": "http://nim:8000/v1", "rerank_model_to_url": {"r": "http://x"}}),
            ),
            None,
        )
        .unwrap();
        assert!(!local.requires_key());
        assert_eq!(local.rerank_models, vec!["r".to_string()]);
        assert!(
            !validate(Family::Ollama, "o", parse(json!({})), None)
                .unwrap()
                .requires_key()
        );
    }

    #[test]
    fn url_host_strips_scheme_port_and_path() {
        let cases = [
            (
                "https://integrate.api.nvidia.com/v1",
                Some("integrate.api.nvidia.com"),
            ),
            ("http://u:p@h:80/x", Some("h")),
            ("http://[::1]:8000/v1", Some("::1")),
            ("no-scheme", None),
        ];
        for (url, want) in cases {
            assert_eq!(url_host(url), want, "{url}");
        }
    }
}
