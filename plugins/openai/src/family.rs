//! The provider types this plugin serves, and what differs between them.
//!
//! Every fact here comes from OGX (`src/ogx/providers/remote/inference/<name>/{config,<name>}.py`
//! at 0.7.x): default `base_url`, which config key holds the credential, which
//! `x-ogx-provider-data` key overrides it, whether a request without any key is refused,
//! the embedding models it knows, and the operations it refuses.
//!
//! Left out on purpose, because their OGX adapters are more than base URL + key:
//! `remote::together` (own client for listing and embeddings), `remote::databricks`
//! (workspace SDK for listing), `remote::sambanova` (inlines image URLs).

use ogx_provider_sdk::{Map, Value};

/// One provider type of the OpenAI-compatible family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `remote::openai`
    OpenAi,
    /// `remote::vllm`
    Vllm,
    /// `remote::ollama`
    Ollama,
    /// `remote::llama-cpp-server`
    LlamaCppServer,
    /// `remote::passthrough`
    Passthrough,
    /// `remote::groq`
    Groq,
    /// `remote::fireworks`
    Fireworks,
    /// `remote::cerebras`
    Cerebras,
    /// `remote::llama-openai-compat`
    LlamaOpenAiCompat,
    /// `remote::runpod`
    Runpod,
}

/// Which config key holds the upstream credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// `api_key` (OGX's `auth_credential` alias).
    ApiKey,
    /// `api_token` (vLLM, RunPod).
    ApiToken,
    /// No credential at all (Ollama ignores `api_key`).
    None,
}

/// The `CEREBRAS_BASE_URL` variable OGX reads when `remote::cerebras` has no `base_url`.
pub const CEREBRAS_BASE_URL_ENV: &str = "CEREBRAS_BASE_URL";

impl Family {
    /// Every type, in the order `describe` lists them.
    pub const ALL: [Family; 10] = [
        Family::OpenAi,
        Family::Vllm,
        Family::Ollama,
        Family::LlamaCppServer,
        Family::Passthrough,
        Family::Groq,
        Family::Fireworks,
        Family::Cerebras,
        Family::LlamaOpenAiCompat,
        Family::Runpod,
    ];

    /// The `provider_type` string.
    pub fn provider_type(self) -> &'static str {
        match self {
            Family::OpenAi => "remote::openai",
            Family::Vllm => "remote::vllm",
            Family::Ollama => "remote::ollama",
            Family::LlamaCppServer => "remote::llama-cpp-server",
            Family::Passthrough => "remote::passthrough",
            Family::Groq => "remote::groq",
            Family::Fireworks => "remote::fireworks",
            Family::Cerebras => "remote::cerebras",
            Family::LlamaOpenAiCompat => "remote::llama-openai-compat",
            Family::Runpod => "remote::runpod",
        }
    }

    /// The family serving `provider_type`, if this plugin serves it.
    pub fn from_provider_type(provider_type: &str) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.provider_type() == provider_type)
    }

    /// The `base_url` used when the config has none (`None`: there is no default).
    /// Cerebras' default can be overridden by [`CEREBRAS_BASE_URL_ENV`], read by the caller.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Family::OpenAi => Some("https://api.openai.com/v1"),
            Family::Ollama => Some("http://localhost:11434/v1"),
            Family::LlamaCppServer => Some("http://localhost:8080/v1"),
            Family::Groq => Some("https://api.groq.com/openai/v1"),
            Family::Fireworks => Some("https://api.fireworks.ai/inference/v1"),
            Family::Cerebras => Some("https://api.cerebras.ai/v1"),
            Family::LlamaOpenAiCompat => Some("https://api.llama.com/compat/v1/"),
            Family::Vllm | Family::Passthrough | Family::Runpod => None,
        }
    }

    /// The config key holding the credential.
    pub fn key_field(self) -> KeyField {
        match self {
            Family::Vllm | Family::Runpod => KeyField::ApiToken,
            Family::Ollama => KeyField::None,
            _ => KeyField::ApiKey,
        }
    }

    /// The `x-ogx-provider-data` key whose non-blank value replaces the config credential
    /// for one request. Passthrough's `passthrough_api_key` is not here: there the config
    /// key wins (see `target.rs`).
    pub fn provider_data_key(self) -> Option<&'static str> {
        match self {
            Family::OpenAi => Some("openai_api_key"),
            Family::Vllm => Some("vllm_api_token"),
            Family::Groq => Some("groq_api_key"),
            Family::Fireworks => Some("fireworks_api_key"),
            Family::Cerebras => Some("cerebras_api_key"),
            Family::LlamaOpenAiCompat => Some("llama_api_key"),
            Family::Runpod => Some("runpod_api_token"),
            Family::Ollama | Family::LlamaCppServer | Family::Passthrough => None,
        }
    }

    /// Whether a request with no credential at all is refused (400) and listing skipped.
    /// OGX's vLLM, Ollama and llama.cpp adapters substitute a dummy key instead; we send no
    /// `Authorization` header then.
    pub fn requires_key(self) -> bool {
        !matches!(
            self,
            Family::Vllm | Family::Ollama | Family::LlamaCppServer | Family::Passthrough
        )
    }

    /// Whether `/v1/completions` is refused (501), as OGX's adapter raises
    /// `NotImplementedError`.
    pub fn refuses_completions(self) -> bool {
        matches!(self, Family::LlamaOpenAiCompat)
    }

    /// Whether `/v1/embeddings` is refused (501).
    pub fn refuses_embeddings(self) -> bool {
        matches!(self, Family::Cerebras | Family::LlamaOpenAiCompat)
    }

    /// Whether the family checks `allowed_models` on requests and listings (OGX's
    /// `OpenAIMixin` does; the passthrough adapter does not).
    pub fn checks_allowed_models(self) -> bool {
        self != Family::Passthrough
    }

    /// Metadata of an embedding model this family knows by id, e.g.
    /// `{"embedding_dimension": 1536, "context_length": 8192}`.
    pub fn embedding_metadata(self, model_id: &str) -> Option<Map<String, Value>> {
        let table: &[(&str, u64, u64)] = match self {
            Family::OpenAi => &[
                ("text-embedding-3-small", 1536, 8192),
                ("text-embedding-3-large", 3072, 8192),
            ],
            Family::Ollama => &[
                ("all-minilm:l6-v2", 384, 512),
                ("nomic-embed-text:latest", 768, 8192),
                ("nomic-embed-text:v1.5", 768, 8192),
                ("nomic-embed-text:137m-v1.5-fp16", 768, 8192),
            ],
            Family::Fireworks => &[
                ("nomic-ai/nomic-embed-text-v1.5", 768, 8192),
                ("accounts/fireworks/models/qwen3-embedding-8b", 4096, 40960),
            ],
            _ => &[],
        };
        table
            .iter()
            .find(|(id, _, _)| *id == model_id)
            .map(|(_, dimension, context)| {
                let mut map = Map::new();
                map.insert("embedding_dimension".into(), (*dimension).into());
                map.insert("context_length".into(), (*context).into());
                map
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_types_round_trip() {
        for family in Family::ALL {
            assert_eq!(
                Family::from_provider_type(family.provider_type()),
                Some(family)
            );
        }
        assert_eq!(Family::from_provider_type("remote::bedrock"), None);
    }

    #[test]
    fn embedding_metadata_is_known_per_family() {
        let meta = Family::OpenAi
            .embedding_metadata("text-embedding-3-large")
            .unwrap();
        assert_eq!(meta["embedding_dimension"], 3072);
        assert!(
            Family::Groq
                .embedding_metadata("text-embedding-3-large")
                .is_none()
        );
        assert!(Family::OpenAi.embedding_metadata("gpt-4o").is_none());
    }
}
