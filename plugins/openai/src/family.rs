//! The provider types this plugin serves, and what differs between them.
//!
//! Every fact here comes from OGX 1.5.0 (`src/ogx/providers/remote/inference/<name>/
//! {config,<name>}.py` and `utils/inference/openai_mixin.py`): default `base_url` and the
//! environment variable that replaces it, which config key holds the credential, which
//! `x-ogx-provider-data` key overrides it, whether a request without any key is refused, the
//! embedding models it knows, how it lists models, and the operations it refuses (with OGX's
//! own message where OGX has one).
//!
//! `remote::oci` is here too: OGX 1.5.0 sends it through OCI Generative AI's OpenAI-compatible
//! endpoint (`.../20231130/actions/v1`) with the OpenAI client, only signing each request
//! (which the host does here, [`ogx_provider_sdk::http::Request::oci_signature`]) and adding
//! a `CompartmentId` header; so the family's chat, completions and embeddings serve it as
//! they are. Its listing is OCI's native `ListModels` (see [`Listing::Oci`]).
//!
//! Not here, because they need a cloud identity the host does not lend yet:
//! `remote::vertexai`, `remote::watsonx` and Azure's Entra ID mode.

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
    /// `remote::together`
    Together,
    /// `remote::anthropic` (Anthropic's OpenAI-compatible chat endpoint)
    Anthropic,
    /// `remote::gemini` (Google's OpenAI-compatible endpoint)
    Gemini,
    /// `remote::meta`
    Meta,
    /// `remote::sambanova`
    Sambanova,
    /// `remote::nvidia`
    Nvidia,
    /// `remote::databricks`
    Databricks,
    /// `remote::deepseek`
    Deepseek,
    /// `remote::mistral`
    Mistral,
    /// `remote::azure` (API-key mode)
    Azure,
    /// `remote::text-embeddings-inference`
    TextEmbeddingsInference,
    /// `remote::oci` (OCI Generative AI's OpenAI-compatible endpoint, requests signed by
    /// the host)
    Oci,
}

/// Which config key holds the upstream credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyField {
    /// `api_key` (OGX's `auth_credential` alias).
    ApiKey,
    /// `api_token` (vLLM, RunPod, Databricks).
    ApiToken,
    /// No credential at all (Ollama ignores `api_key`).
    None,
}

/// How a type lists its upstream's models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `GET {base_url}/models`, an OpenAI list (`{"data": [{"id": ...}]}`).
    OpenAi,
    /// `GET {base_url}/models` answering a bare JSON array (Together).
    BareList,
    /// Anthropic's native `GET /v1/models` with `x-api-key` and `anthropic-version`, paged.
    Anthropic,
    /// Databricks' `GET {host}/api/2.0/serving-endpoints`: one model per endpoint name.
    DatabricksEndpoints,
    /// TEI's native `GET {root}/info`: the one model it serves, always an embedding model.
    TeiInfo,
    /// OCI Generative AI's `ListModels` (`GET .../20231130/models` on the management host,
    /// `generativeai.<region>...` without `inference.`) for the compartment, active text
    /// generation and embedding models: OGX keeps those with `CHAT` and without `FINE_TUNE`,
    /// neither deprecated nor retired, one per display name, listed by display name.
    Oci,
}

/// An OpenAI operation a type may refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completions,
    /// `/v1/embeddings`
    Embeddings,
}

impl Operation {
    /// The route, as named in the generic 501 message.
    pub fn route(self) -> &'static str {
        match self {
            Operation::Chat => "/v1/chat/completions",
            Operation::Completions => "/v1/completions",
            Operation::Embeddings => "/v1/embeddings",
        }
    }
}

/// Why a type refuses an operation (501).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// OGX raises `NotImplementedError()` without a message: the SDK's generic
    /// `<provider type> does not support <operation>` is clearer than OGX's "Not implemented".
    Generic,
    /// OGX's own message.
    Message(&'static str),
}

/// Anthropic's public API host: the root of its native API; the OpenAI-compatible chat
/// endpoint is under `/v1`.
pub const ANTHROPIC_API_ROOT: &str = "https://api.anthropic.com";

/// The `anthropic-version` Anthropic's native API requires.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// NVIDIA's hosted API host: only there is a key required.
pub const NVIDIA_HOSTED_HOST: &str = "integrate.api.nvidia.com";

/// OCI's environment variables, read as OGX's `OCIConfig` reads them when a key is absent;
/// `OCI_GENAI_BASE_URL` (ogx's) moves the endpoint, e.g. to a test double.
pub const OCI_ENV_VARS: [&str; 6] = [
    "OCI_AUTH_TYPE",
    "OCI_REGION",
    "OCI_COMPARTMENT_OCID",
    "OCI_CONFIG_FILE_PATH",
    "OCI_CLI_PROFILE",
    "OCI_GENAI_BASE_URL",
];

/// Every environment variable the family reads, for `describe` (with [`OCI_ENV_VARS`]).
pub const ENV_VARS: [&str; 7] = [
    "CEREBRAS_BASE_URL",
    "DEEPSEEK_BASE_URL",
    "DEEPSEEK_ANTHROPIC_BASE_URL",
    "MISTRAL_BASE_URL",
    "NVIDIA_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GEMINI_BASE_URL",
];

/// How a type's upstream takes Anthropic's Messages API natively (OGX 1.5.0's
/// `AnthropicMixin` adapters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeMessages {
    /// How the credential is sent.
    pub auth: AnthropicAuth,
    /// The value sent as `x-api-key` when there is no credential (`None`: no header).
    pub no_key_placeholder: Option<&'static str>,
    /// Whether the upstream has `/v1/messages/count_tokens`; without it, tokens are counted
    /// by a `max_tokens: 1` message, as OGX does.
    pub count_tokens: bool,
}

/// The credential header of a native Messages request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnthropicAuth {
    /// `x-api-key: <key>` (Anthropic's own style).
    ApiKey,
    /// `Authorization: Bearer <key>` (vLLM).
    Bearer,
}

/// DeepSeek's Anthropic-compatible API root (OGX's `DEFAULT_ANTHROPIC_BASE_URL`).
pub const DEEPSEEK_ANTHROPIC_BASE_URL: &str = "https://api.deepseek.com/anthropic";

impl Family {
    /// Every type, in the order `describe` lists them.
    pub const ALL: [Family; 22] = [
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
        Family::Together,
        Family::Anthropic,
        Family::Gemini,
        Family::Meta,
        Family::Sambanova,
        Family::Nvidia,
        Family::Databricks,
        Family::Deepseek,
        Family::Mistral,
        Family::Azure,
        Family::TextEmbeddingsInference,
        Family::Oci,
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
            Family::Together => "remote::together",
            Family::Anthropic => "remote::anthropic",
            Family::Gemini => "remote::gemini",
            Family::Meta => "remote::meta",
            Family::Sambanova => "remote::sambanova",
            Family::Nvidia => "remote::nvidia",
            Family::Databricks => "remote::databricks",
            Family::Deepseek => "remote::deepseek",
            Family::Mistral => "remote::mistral",
            Family::Azure => "remote::azure",
            Family::TextEmbeddingsInference => "remote::text-embeddings-inference",
            Family::Oci => "remote::oci",
        }
    }

    /// The family serving `provider_type`, if this plugin serves it.
    pub fn from_provider_type(provider_type: &str) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.provider_type() == provider_type)
    }

    /// The `base_url` used when the config has none and [`Family::base_url_env`] is unset
    /// (`None`: there is no default).
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            Family::OpenAi => Some("https://api.openai.com/v1"),
            Family::Ollama => Some("http://localhost:11434/v1"),
            Family::LlamaCppServer | Family::TextEmbeddingsInference => {
                Some("http://localhost:8080/v1")
            }
            Family::Groq => Some("https://api.groq.com/openai/v1"),
            Family::Fireworks => Some("https://api.fireworks.ai/inference/v1"),
            Family::Cerebras => Some("https://api.cerebras.ai/v1"),
            Family::LlamaOpenAiCompat => Some("https://api.llama.com/compat/v1/"),
            Family::Together => Some("https://api.together.xyz/v1"),
            Family::Anthropic => Some("https://api.anthropic.com/v1"),
            Family::Gemini => Some("https://generativelanguage.googleapis.com/v1beta/openai/"),
            Family::Meta => Some("https://api.meta.ai/v1"),
            Family::Sambanova => Some("https://api.sambanova.ai/v1"),
            Family::Nvidia => Some("https://integrate.api.nvidia.com/v1"),
            Family::Deepseek => Some("https://api.deepseek.com/v1"),
            Family::Mistral => Some("https://api.mistral.ai/v1"),
            Family::Vllm
            | Family::Passthrough
            | Family::Runpod
            | Family::Databricks
            | Family::Azure
            // From `oci_region` (see `config::oci_base_url`).
            | Family::Oci => None,
        }
    }

    /// The environment variable whose value replaces [`Family::default_base_url`] when the
    /// config has no `base_url` (OGX reads these in the config classes).
    ///
    /// `remote::anthropic` and `remote::gemini` have a fixed URL in OGX and no `base_url` key;
    /// ogx lets the operator move them with `ANTHROPIC_BASE_URL` (the Anthropic SDK's own
    /// variable, which OGX's model listing through that SDK honours; the API root, `/v1` is
    /// appended) and `GEMINI_BASE_URL` (the full OpenAI-compatible base URL).
    pub fn base_url_env(self) -> Option<&'static str> {
        match self {
            Family::Cerebras => Some("CEREBRAS_BASE_URL"),
            Family::Deepseek => Some("DEEPSEEK_BASE_URL"),
            Family::Mistral => Some("MISTRAL_BASE_URL"),
            Family::Nvidia => Some("NVIDIA_BASE_URL"),
            Family::Anthropic => Some("ANTHROPIC_BASE_URL"),
            Family::Gemini => Some("GEMINI_BASE_URL"),
            Family::Oci => Some("OCI_GENAI_BASE_URL"),
            _ => None,
        }
    }

    /// How the type serves `/v1/messages` natively; `None`: the host translates to chat.
    pub fn native_messages(self) -> Option<NativeMessages> {
        let api_key = |count_tokens, no_key_placeholder| NativeMessages {
            auth: AnthropicAuth::ApiKey,
            no_key_placeholder,
            count_tokens,
        };
        match self {
            Family::Anthropic => Some(api_key(true, None)),
            Family::Meta | Family::Ollama => Some(api_key(true, Some("no-key-required"))),
            Family::Fireworks | Family::Deepseek => Some(api_key(false, Some("no-key-required"))),
            Family::Vllm => Some(NativeMessages {
                auth: AnthropicAuth::Bearer,
                no_key_placeholder: None,
                count_tokens: true,
            }),
            _ => None,
        }
    }

    /// Whether OGX ignores a configured `base_url` (its URL is fixed).
    pub fn fixed_base_url(self) -> bool {
        matches!(self, Family::Anthropic | Family::Gemini)
    }

    /// The config key holding the credential.
    pub fn key_field(self) -> KeyField {
        match self {
            Family::Vllm | Family::Runpod | Family::Databricks => KeyField::ApiToken,
            Family::Ollama | Family::Oci => KeyField::None,
            _ => KeyField::ApiKey,
        }
    }

    /// The `x-ogx-provider-data` key whose non-blank value replaces the config credential
    /// for one request (OGX's `provider_data_api_key_field`). Passthrough's
    /// `passthrough_api_key` is not here: there the config key wins (see `target.rs`).
    pub fn provider_data_key(self) -> Option<&'static str> {
        match self {
            Family::OpenAi => Some("openai_api_key"),
            Family::Vllm => Some("vllm_api_token"),
            Family::Groq => Some("groq_api_key"),
            Family::Fireworks => Some("fireworks_api_key"),
            Family::Cerebras => Some("cerebras_api_key"),
            Family::LlamaOpenAiCompat => Some("llama_api_key"),
            Family::Runpod => Some("runpod_api_token"),
            Family::Together => Some("together_api_key"),
            Family::Anthropic => Some("anthropic_api_key"),
            Family::Gemini => Some("gemini_api_key"),
            Family::Meta => Some("meta_api_key"),
            Family::Sambanova => Some("sambanova_api_key"),
            Family::Nvidia => Some("nvidia_api_key"),
            Family::Databricks => Some("databricks_api_token"),
            Family::Deepseek => Some("deepseek_api_key"),
            Family::Mistral => Some("mistral_api_key"),
            Family::Azure => Some("azure_api_key"),
            Family::Ollama
            | Family::LlamaCppServer
            | Family::Passthrough
            | Family::TextEmbeddingsInference
            // OGX's OCI config declares `oci_*` provider-data fields its adapter never reads.
            | Family::Oci => None,
        }
    }

    /// Whether a request with no credential at all is refused (400) and listing skipped.
    /// OGX's vLLM, Ollama, llama.cpp and TEI adapters substitute a dummy key instead (so does
    /// NVIDIA's when it is self-hosted, see `Resolved::requires_key`); we send no
    /// `Authorization` header then.
    pub fn requires_key(self) -> bool {
        !matches!(
            self,
            Family::Vllm
                | Family::Ollama
                | Family::LlamaCppServer
                | Family::Passthrough
                | Family::TextEmbeddingsInference
                | Family::Oci
        )
    }

    /// Whether `operation` is refused with 501, and with which message.
    pub fn refusal(self, operation: Operation) -> Option<Refusal> {
        use Operation::*;
        match (self, operation) {
            (Family::LlamaOpenAiCompat, Completions | Embeddings)
            | (Family::Cerebras, Embeddings)
            | (Family::Databricks, Completions) => Some(Refusal::Generic),
            (Family::Anthropic, Completions) => Some(Refusal::Message(
                "Anthropic does not support /v1/completions endpoint. Only /v1/chat/completions is supported. ",
            )),
            (Family::Deepseek, Completions) => Some(Refusal::Message(
                "DeepSeek does not support /v1/completions endpoint. Only /v1/chat/completions is supported.",
            )),
            (Family::Deepseek, Embeddings) => Some(Refusal::Message(
                "DeepSeek does not expose an embeddings endpoint.",
            )),
            (Family::Mistral, Completions) => Some(Refusal::Message(
                "Mistral does not support /v1/completions endpoint. Only /v1/chat/completions is supported. ",
            )),
            (Family::TextEmbeddingsInference, Chat) => Some(Refusal::Message(
                "Text-Embeddings-Inference provider does not support chat completions",
            )),
            (Family::TextEmbeddingsInference, Completions) => Some(Refusal::Message(
                "Text-Embeddings-Inference provider does not support completions",
            )),
            _ => None,
        }
    }

    /// How the type lists its models.
    pub fn listing(self) -> Listing {
        match self {
            Family::Together => Listing::BareList,
            Family::Anthropic => Listing::Anthropic,
            Family::Databricks => Listing::DatabricksEndpoints,
            Family::TextEmbeddingsInference => Listing::TeiInfo,
            Family::Oci => Listing::Oci,
            _ => Listing::OpenAi,
        }
    }

    /// Whether the family checks `allowed_models` on requests and listings (OGX's
    /// `OpenAIMixin` does; the passthrough adapter does not).
    pub fn checks_allowed_models(self) -> bool {
        self != Family::Passthrough
    }

    /// Whether every stream chunk's `usage` is moved into one final chunk (OGX's
    /// `coalesce_streaming_usage`: Gemini sends usage on every chunk).
    pub fn coalesces_streaming_usage(self) -> bool {
        self == Family::Gemini
    }

    /// Metadata of an embedding model this family knows by id, e.g.
    /// `{"embedding_dimension": 1536, "context_length": 8192}`.
    pub fn embedding_metadata(self, model_id: &str) -> Option<Map<String, Value>> {
        let table: &[(&str, u64, u64)] = match self {
            Family::OpenAi => &[
                ("text-embedding-ada-002", 1536, 8192),
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
            Family::Together => &[
                ("togethercomputer/m2-bert-80M-32k-retrieval", 768, 32768),
                ("BAAI/bge-large-en-v1.5", 1024, 512),
                ("BAAI/bge-base-en-v1.5", 768, 512),
                ("Alibaba-NLP/gte-modernbert-base", 768, 8192),
                ("intfloat/multilingual-e5-large-instruct", 1024, 512),
            ],
            Family::Gemini => &[
                ("models/text-embedding-004", 768, 2048),
                ("models/gemini-embedding-001", 3072, 2048),
            ],
            Family::Nvidia => &[
                ("nvidia/llama-3.2-nv-embedqa-1b-v2", 2048, 8192),
                ("nvidia/nv-embedqa-e5-v5", 512, 1024),
                ("nvidia/nv-embedqa-mistral-7b-v2", 512, 4096),
                ("snowflake/arctic-embed-l", 512, 1024),
            ],
            Family::Databricks => &[
                ("databricks-gte-large-en", 1024, 8192),
                ("databricks-bge-large-en", 1024, 512),
            ],
            Family::Mistral => &[("mistral-embed", 1024, 8192)],
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
        let meta = Family::Mistral.embedding_metadata("mistral-embed").unwrap();
        assert_eq!(meta["embedding_dimension"], 1024);
    }

    #[test]
    fn refusals_use_ogx_messages_where_ogx_has_one() {
        use Operation::*;
        let cases = [
            (Family::Anthropic, Completions, true),
            (Family::Anthropic, Embeddings, false),
            (Family::Deepseek, Embeddings, true),
            (Family::Mistral, Completions, true),
            (Family::Mistral, Embeddings, false),
            (Family::TextEmbeddingsInference, Chat, true),
            (Family::TextEmbeddingsInference, Embeddings, false),
            (Family::Together, Completions, false),
            (Family::Gemini, Embeddings, false),
        ];
        for (family, op, refused) in cases {
            assert_eq!(family.refusal(op).is_some(), refused, "{family:?} {op:?}");
        }
        assert_eq!(
            Family::Databricks.refusal(Completions),
            Some(Refusal::Generic)
        );
    }

    #[test]
    fn every_type_with_a_key_field_names_one_for_provider_data_except_local_servers() {
        for family in Family::ALL {
            if family.requires_key() {
                assert!(family.provider_data_key().is_some(), "{family:?}");
            }
        }
    }
}
