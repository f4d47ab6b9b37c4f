//! Where one request goes and with which credentials: base URL, bearer token and extra
//! headers, from the validated config and the request's `x-ogx-provider-data`.
//!
//! Precedence follows OGX. For the `OpenAIMixin` types a non-blank provider-data key (e.g.
//! `openai_api_key`) replaces the config key for that request. `remote::passthrough` is the
//! exception: its config `api_key` and `base_url` win over `passthrough_api_key` and
//! `passthrough_url`, and `forward_headers` copies listed provider-data keys into headers.

use ogx_provider_sdk::http::OciCredentialSource;
use ogx_provider_sdk::{Context, ProviderError, Value, python_repr};

use crate::config::Resolved;
use crate::family::Family;

/// Forwarded header values above this size are dropped, not truncated (OGX: downstreams
/// commonly answer 431 above 8 KB, and a cut token is harder to debug than a missing one).
pub const MAX_FORWARDED_HEADER_BYTES: usize = 8192;

/// The upstream of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Base URL without a trailing slash, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Token for `Authorization: Bearer`, added by the host; `None` sends no credential.
    pub bearer: Option<String>,
    /// Extra headers (passthrough's `forward_headers`, OCI's `CompartmentId`).
    pub headers: Vec<(String, String)>,
    /// The OCI identity the host signs the request with (`remote::oci`).
    pub oci: Option<OciCredentialSource>,
}

impl Target {
    /// `{base_url}/{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }
}

/// The credential a request would use, before deciding whether a missing one is an error.
pub fn credential(config: &Resolved, ctx: &Context) -> Option<String> {
    let from_request = |key: &str| ctx.provider_data_str(key).map(str::to_string);
    match config.family {
        Family::Passthrough => config
            .key
            .clone()
            .or_else(|| from_request("passthrough_api_key")),
        family => family
            .provider_data_key()
            .and_then(from_request)
            .or_else(|| config.key.clone()),
    }
}

/// The 400 OGX 1.5 answers when a key-requiring type has no credential: it names the
/// generic `<provider_id>_api_key` provider-data key, which works for every provider.
pub fn missing_key_error(provider_id: &str) -> ProviderError {
    ProviderError::InvalidRequest(format!(
        "API key not provided. Please provide a valid API key in the provider data header, e.g. x-ogx-provider-data: {{\"{provider_id}_api_key\": \"<API_KEY>\"}}."
    ))
}

/// Resolves the upstream of one request.
pub fn resolve(config: &Resolved, ctx: &Context) -> Result<Target, ProviderError> {
    let family = config.family;
    let bearer = credential(config, ctx);
    if bearer.is_none() && config.requires_key() {
        return Err(missing_key_error(ctx.provider_id()));
    }
    let base_url = match family {
        Family::Passthrough => {
            let url = config
                .base_url
                .clone()
                .or_else(|| ctx.provider_data_str("passthrough_url").map(str::to_string))
                .ok_or_else(|| {
                    ProviderError::InvalidRequest(
                        "Pass url of the passthrough endpoint in the header X-OGX-Provider-Data as { \"passthrough_url\": <your passthrough url>}".into(),
                    )
                })?;
            format!("{}/v1", url.trim_end_matches('/'))
        }
        _ => config
            .base_url
            .clone()
            .ok_or_else(|| {
                ProviderError::InvalidRequest(format!(
                    "No base_url is configured for provider '{}' ({}): set `base_url` in its config.",
                    ctx.provider_id(),
                    family.provider_type()
                ))
            })?
            .trim_end_matches('/')
            .to_string(),
    };
    let mut headers = config.headers.clone();
    headers.extend(forwarded_headers(config, ctx));
    if bearer.is_some() {
        // A configured or per-request key always wins over a forwarded Authorization.
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case("authorization"));
    }
    Ok(Target {
        base_url,
        bearer,
        headers,
        oci: config.oci.as_ref().map(|o| o.source.clone()),
    })
}

/// OGX's `build_forwarded_headers`: listed keys only, control characters stripped, oversized
/// values dropped, one header per name (case-insensitive, last mapping wins).
fn forwarded_headers(config: &Resolved, ctx: &Context) -> Vec<(String, String)> {
    let Some(data) = ctx.provider_data() else {
        return Vec::new();
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for (key, header) in &config.forward_headers {
        let value = match data.get(key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => s.clone(),
            Some(other) => python_repr(other),
        };
        let value: String = value
            .chars()
            .filter(|&c| c >= ' ' && !matches!(c, '\x7f' | '\u{85}' | '\u{2028}' | '\u{2029}'))
            .collect();
        if value.len() > MAX_FORWARDED_HEADER_BYTES {
            continue;
        }
        headers.retain(|(name, _)| !name.eq_ignore_ascii_case(header));
        headers.push((header.clone(), value));
    }
    headers
}

/// Rejects a model outside `allowed_models`, with OGX's message.
pub fn check_allowed_model(config: &Resolved, model: &str) -> Result<(), ProviderError> {
    match &config.allowed_models {
        Some(allowed) if !allowed.iter().any(|m| m == model) => {
            let list = Value::from(allowed.clone());
            Err(ProviderError::InvalidRequest(format!(
                "Model '{model}' is not in the allowed models list. Allowed models: {}",
                python_repr(&list)
            )))
        }
        _ => Ok(()),
    }
}

/// Python's `urljoin(base, name)` for a relative name: replaces the last path segment of
/// `base` (OGX's vLLM health check joins `health` this way).
pub fn join_relative(base: &str, name: &str) -> String {
    let path_start = base
        .find("://")
        .map(|i| i + 3)
        .and_then(|i| base[i..].find('/').map(|j| i + j));
    match path_start {
        None => format!("{base}/{name}"),
        Some(start) => {
            let last_slash = base[start..].rfind('/').map(|j| start + j).unwrap_or(start);
            format!("{}/{name}", &base[..last_slash])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, validate};
    use serde_json::json;
    use std::time::Duration;

    fn config(family: Family, json: Value) -> Resolved {
        let config: Config = serde_json::from_value(json).unwrap();
        validate(family, "p", config, None).unwrap()
    }

    fn ctx(provider_data: Value) -> Context {
        let data = match provider_data {
            Value::Object(map) => Some(map),
            _ => None,
        };
        Context::new("r", data, Duration::from_secs(1), "p", "t")
    }

    #[test]
    fn request_keys_win_over_config_keys_except_for_passthrough() {
        let cases = [
            (
                Family::OpenAi,
                json!({"api_key": "cfg"}),
                json!({"openai_api_key": "req"}),
                Some("req"),
            ),
            (
                Family::OpenAi,
                json!({"api_key": "cfg"}),
                json!({"openai_api_key": "  "}),
                Some("cfg"),
            ),
            (
                Family::OpenAi,
                json!({"api_key": "cfg"}),
                json!({"groq_api_key": "req"}),
                Some("cfg"),
            ),
            (
                Family::Vllm,
                json!({"base_url": "http://v/v1"}),
                json!({"vllm_api_token": "req"}),
                Some("req"),
            ),
            (
                Family::Vllm,
                json!({"base_url": "http://v/v1"}),
                json!(null),
                None,
            ),
            (
                Family::Ollama,
                json!({"api_key": "cfg"}),
                json!({"openai_api_key": "req"}),
                None,
            ),
            (
                Family::LlamaCppServer,
                json!({"api_key": "cfg"}),
                json!({}),
                Some("cfg"),
            ),
            (
                Family::Runpod,
                json!({"api_token": "cfg"}),
                json!({"runpod_api_token": "req"}),
                Some("req"),
            ),
            (
                Family::Passthrough,
                json!({"api_key": "cfg"}),
                json!({"passthrough_api_key": "req"}),
                Some("cfg"),
            ),
            (
                Family::Passthrough,
                json!({}),
                json!({"passthrough_api_key": "req"}),
                Some("req"),
            ),
        ];
        for (family, cfg, data, want) in cases {
            assert_eq!(
                credential(&config(family, cfg), &ctx(data.clone())).as_deref(),
                want,
                "{family:?} {data}"
            );
        }
    }

    #[test]
    fn a_missing_key_is_a_400_naming_the_provider_data_field() {
        let err = resolve(&config(Family::OpenAi, json!({})), &ctx(json!({}))).unwrap_err();
        assert_eq!(
            err,
            ProviderError::InvalidRequest(
                "API key not provided. Please provide a valid API key in the provider data header, e.g. x-ogx-provider-data: {\"p_api_key\": \"<API_KEY>\"}.".into()
            )
        );
        for family in [
            Family::Vllm,
            Family::Ollama,
            Family::LlamaCppServer,
            Family::TextEmbeddingsInference,
            Family::Nvidia,
        ] {
            let cfg = config(family, json!({"base_url": "http://h/v1"}));
            let target = resolve(&cfg, &ctx(json!({}))).unwrap();
            assert_eq!(target.bearer, None, "{family:?}");
        }
    }

    #[test]
    fn urls_join_without_double_slashes() {
        let cfg = config(Family::LlamaOpenAiCompat, json!({"api_key": "k"}));
        let target = resolve(&cfg, &ctx(json!({}))).unwrap();
        assert_eq!(
            target.url("chat/completions"),
            "https://api.llama.com/compat/v1/chat/completions"
        );
    }

    #[test]
    fn passthrough_appends_v1_and_prefers_the_configured_url() {
        let cfg = config(Family::Passthrough, json!({"base_url": "http://up:1/"}));
        let target = resolve(&cfg, &ctx(json!({"passthrough_url": "http://other"}))).unwrap();
        assert_eq!(target.base_url, "http://up:1/v1");
        let cfg = config(Family::Passthrough, json!({}));
        let target = resolve(&cfg, &ctx(json!({"passthrough_url": "http://other"}))).unwrap();
        assert_eq!(target.base_url, "http://other/v1");
        let err = resolve(&cfg, &ctx(json!({}))).unwrap_err();
        assert!(
            err.message()
                .starts_with("Pass url of the passthrough endpoint")
        );
    }

    #[test]
    fn passthrough_forwards_listed_keys_and_the_static_key_wins() {
        let fwd = json!({"forward_headers": {"tok": "Authorization", "tenant": "X-Tenant", "n": "X-N", "big": "X-Big"}, "base_url": "http://p"});
        let data = json!({"tok": "Bearer t", "tenant": "a\r\nb", "n": true, "big": "x".repeat(9000), "other": "no"});
        let target = resolve(
            &config(Family::Passthrough, fwd.clone()),
            &ctx(data.clone()),
        )
        .unwrap();
        assert_eq!(
            target.headers,
            vec![
                ("Authorization".to_string(), "Bearer t".to_string()),
                ("X-Tenant".to_string(), "ab".to_string()),
                ("X-N".to_string(), "True".to_string()),
            ]
        );
        assert_eq!(target.bearer, None);
        let mut with_key = fwd;
        with_key["api_key"] = json!("static");
        let target = resolve(&config(Family::Passthrough, with_key), &ctx(data)).unwrap();
        assert_eq!(target.bearer.as_deref(), Some("static"));
        assert!(target.headers.iter().all(|(n, _)| n != "Authorization"));
    }

    #[test]
    fn allowed_models_message_matches_ogx() {
        let cfg = config(Family::OpenAi, json!({"allowed_models": ["gpt-4o", "o3"]}));
        assert!(check_allowed_model(&cfg, "o3").is_ok());
        assert_eq!(
            check_allowed_model(&cfg, "gpt-5").unwrap_err().message(),
            "Model 'gpt-5' is not in the allowed models list. Allowed models: ['gpt-4o', 'o3']"
        );
    }

    #[test]
    fn join_relative_behaves_like_urljoin() {
        let cases = [
            ("http://h:8000/v1", "http://h:8000/health"),
            ("http://h:8000/v1/", "http://h:8000/v1/health"),
            ("http://h:8000", "http://h:8000/health"),
            ("https://h/a/b/v1", "https://h/a/b/health"),
        ];
        for (base, want) in cases {
            assert_eq!(join_relative(base, "health"), want, "{base}");
        }
    }

    #[test]
    fn gemini_sends_its_quota_project_and_the_request_key_wins_over_the_token() {
        let cfg = config(
            Family::Gemini,
            json!({"access_token": "tok", "project": "proj"}),
        );
        let target = resolve(&cfg, &ctx(json!({}))).unwrap();
        assert_eq!(target.bearer.as_deref(), Some("tok"));
        assert_eq!(
            target.headers,
            vec![("x-goog-user-project".to_string(), "proj".to_string())]
        );
        let target = resolve(&cfg, &ctx(json!({"gemini_api_key": "req"}))).unwrap();
        assert_eq!(target.bearer.as_deref(), Some("req"));
    }

    #[test]
    fn hosted_nvidia_needs_a_key_and_names_the_provider_id() {
        let cfg = config(Family::Nvidia, json!({}));
        let err = resolve(&cfg, &ctx(json!({}))).unwrap_err();
        assert!(
            err.message().contains(r#"{"p_api_key": "<API_KEY>"}"#),
            "{}",
            err.message()
        );
        let target = resolve(&cfg, &ctx(json!({"nvidia_api_key": "k"}))).unwrap();
        assert_eq!(target.bearer.as_deref(), Some("k"));
    }
}
