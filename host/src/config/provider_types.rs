//! What ogx knows about OGX 1.5.0's inference provider types without asking a plugin: which
//! ones it cannot serve until cloud identities land, which ones run models in-process, and the
//! `x-ogx-provider-data` key each type reads its per-request credential from.
//!
//! This is a table of OGX's own facts (`src/ogx/providers/registry/inference.py` and each
//! adapter's `provider_data_api_key_field`), not a table of plugins: whether a type is served
//! is always the plugin index's answer, asked first. [`unserved`] only explains, for a type no
//! plugin serves, why — and whether that stops start-up (a cloud-identity type the config
//! enables) or is a warning (an in-process model).

/// Why an enabled inference provider is not served when no plugin claims its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unserved {
    /// It runs models inside OGX's Python process (`inline::*`): warned about and ignored.
    InProcess,
    /// It needs a cloud identity ogx cannot obtain yet: start-up stops, naming what is missing.
    CloudIdentity {
        /// What the provider needs, for the message.
        needs: &'static str,
    },
    /// Any other type: start-up stops, saying no plugin serves it.
    NoPlugin,
}

/// The inference types of OGX 1.5.0 that need a cloud identity, and what each needs.
const CLOUD_IDENTITY_TYPES: &[(&str, &str)] = &[
    (
        "remote::vertexai",
        "Google Cloud application-default credentials (GOOGLE_APPLICATION_CREDENTIALS or gcloud) for Vertex AI",
    ),
    (
        "remote::watsonx",
        "an IBM Cloud IAM token exchange (watsonx api_key → https://iam.cloud.ibm.com/identity/token)",
    ),
];

/// Why a provider of `provider_type` (of the `inference` API) is not served, once the plugin
/// index has said that no plugin serves it.
pub fn unserved(provider_type: &str) -> Unserved {
    if let Some((_, needs)) = CLOUD_IDENTITY_TYPES
        .iter()
        .find(|(t, _)| *t == provider_type)
    {
        return Unserved::CloudIdentity { needs };
    }
    if provider_type.starts_with("inline::") {
        return Unserved::InProcess;
    }
    Unserved::NoPlugin
}

/// Each OGX 1.5.0 type's `provider_data_api_key_field`: the provider-data key its adapter
/// reads a per-request credential from. Types without one (ollama, llama-cpp-server,
/// passthrough, text-embeddings-inference, vertexai, oci) are absent, as in OGX, where
/// the generic `<provider_id>_api_key` does not apply to them either.
const PROVIDER_DATA_KEYS: &[(&str, &str)] = &[
    ("remote::anthropic", "anthropic_api_key"),
    ("remote::azure", "azure_api_key"),
    ("remote::bedrock", "aws_bedrock_bearer_token"),
    ("remote::cerebras", "cerebras_api_key"),
    ("remote::databricks", "databricks_api_token"),
    ("remote::deepseek", "deepseek_api_key"),
    ("remote::fireworks", "fireworks_api_key"),
    ("remote::gemini", "gemini_api_key"),
    ("remote::groq", "groq_api_key"),
    ("remote::llama-openai-compat", "llama_api_key"),
    ("remote::meta", "meta_api_key"),
    ("remote::mistral", "mistral_api_key"),
    ("remote::nvidia", "nvidia_api_key"),
    ("remote::openai", "openai_api_key"),
    ("remote::runpod", "runpod_api_token"),
    ("remote::sambanova", "sambanova_api_key"),
    ("remote::together", "together_api_key"),
    ("remote::vllm", "vllm_api_token"),
    ("remote::watsonx", "watsonx_api_key"),
];

/// The provider-data key holding a per-request credential for `provider_type`, if OGX 1.5.0
/// defines one.
pub fn provider_data_key(provider_type: &str) -> Option<&'static str> {
    PROVIDER_DATA_KEYS
        .iter()
        .find(|(t, _)| *t == provider_type)
        .map(|(_, key)| *key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unserved_types_are_explained() {
        let cases: &[(&str, Option<&str>)] = &[
            ("inline::sentence-transformers", None),
            ("remote::vertexai", Some("Vertex AI")),
            ("remote::watsonx", Some("IBM Cloud IAM")),
        ];
        for (provider_type, needs) in cases {
            match (unserved(provider_type), needs) {
                (Unserved::InProcess, None) => {}
                (Unserved::CloudIdentity { needs }, Some(part)) => {
                    assert!(needs.contains(part), "{provider_type}: {needs}")
                }
                (other, _) => panic!("{provider_type}: {other:?}"),
            }
        }
        assert_eq!(unserved("remote::together"), Unserved::NoPlugin);
        assert_eq!(unserved("remote::azure"), Unserved::NoPlugin);
        // Served by the openai-compatible plugin, signed by the host.
        assert_eq!(unserved("remote::oci"), Unserved::NoPlugin);
    }

    #[test]
    fn provider_data_keys_are_ogx_field_names() {
        let cases = [
            ("remote::vllm", Some("vllm_api_token")),
            ("remote::openai", Some("openai_api_key")),
            ("remote::databricks", Some("databricks_api_token")),
            ("remote::ollama", None),
            ("remote::bedrock", Some("aws_bedrock_bearer_token")),
            ("remote::unknown", None),
        ];
        for (provider_type, key) in cases {
            assert_eq!(provider_data_key(provider_type), key, "{provider_type}");
        }
    }
}
