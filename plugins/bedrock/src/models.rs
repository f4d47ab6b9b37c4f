//! Model lists, read from the places Bedrock publishes them.
//!
//! - SigV4: the control plane's `ListFoundationModels` (`GET /foundation-models
//!   ?byInferenceType=ON_DEMAND`), `{"modelSummaries": [{"modelId", "modelLifecycle":
//!   {"status"}, "outputModalities", ...}]}`: `ACTIVE` models that produce text (llm) or
//!   embeddings (embedding); and `ListInferenceProfiles` (`GET /inference-profiles`),
//!   `{"inferenceProfileSummaries": [{"inferenceProfileId", "status", "models": [{"modelArn"}]}]}`:
//!   `ACTIVE` profiles, typed by the models they route to.
//! - bearer: bedrock-mantle's OpenAI-style `GET /v1/models`, `{"data": [{"id"}]}` (llm).
//!
//! Embedding models of a family the plugin can call carry their default
//! `embedding_dimension`. `allowed_models`, when set, filters every list.

use ogx_provider_sdk::{Map, Model, ModelType, Value};
use serde_json::json;

use crate::embeddings::Family;

/// A model of `model_type` with the metadata the host shows.
fn model(id: &str, model_type: ModelType) -> Model {
    let dimension = match Family::of(id) {
        Some(Family::TitanV2 | Family::CohereV3) => Some(1024),
        Some(Family::TitanV1 | Family::CohereV4) => Some(1536),
        None => None,
    };
    let metadata = match (model_type, dimension) {
        (ModelType::Embedding, Some(d)) => {
            let mut m = Map::new();
            m.insert("embedding_dimension".into(), json!(d));
            Some(m)
        }
        _ => None,
    };
    Model {
        id: id.to_string(),
        model_type,
        metadata,
    }
}

/// The models of a `ListFoundationModels` answer, or why it is not one.
pub fn from_foundation_models(body: &Value) -> Result<Vec<Model>, String> {
    let summaries = body
        .get("modelSummaries")
        .and_then(Value::as_array)
        .ok_or("the model list has no `modelSummaries` array")?;
    Ok(summaries
        .iter()
        .filter(|s| s.pointer("/modelLifecycle/status").and_then(Value::as_str) == Some("ACTIVE"))
        .filter_map(|s| {
            let id = s.get("modelId").and_then(Value::as_str)?;
            let modalities = s.get("outputModalities").and_then(Value::as_array);
            let has =
                |m: &str| modalities.is_some_and(|ms| ms.iter().any(|x| x.as_str() == Some(m)));
            if has("EMBEDDING") {
                Some(model(id, ModelType::Embedding))
            } else if modalities.is_none() || has("TEXT") {
                Some(model(id, ModelType::Llm))
            } else {
                None
            }
        })
        .collect())
}

/// The models of a `ListInferenceProfiles` answer (and its `nextToken`), or why it is not one.
pub fn from_inference_profiles(body: &Value) -> Result<(Vec<Model>, Option<String>), String> {
    let summaries = body
        .get("inferenceProfileSummaries")
        .and_then(Value::as_array)
        .ok_or("the inference-profile list has no `inferenceProfileSummaries` array")?;
    let models = summaries
        .iter()
        .filter(|s| {
            s.get("status")
                .and_then(Value::as_str)
                .is_none_or(|st| st == "ACTIVE")
        })
        .filter_map(|s| {
            let id = s.get("inferenceProfileId").and_then(Value::as_str)?;
            let embeds = s
                .get("models")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("modelArn").and_then(Value::as_str))
                .any(|arn| Family::of(arn).is_some());
            Some(model(
                id,
                if embeds {
                    ModelType::Embedding
                } else {
                    ModelType::Llm
                },
            ))
        })
        .collect();
    let next = body
        .get("nextToken")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((models, next))
}

/// The models of an OpenAI-style model list, or why it is not one.
pub fn from_openai_list(body: &Value) -> Result<Vec<Model>, String> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the model list has no `data` array")?;
    Ok(data
        .iter()
        .filter_map(|m| {
            m.get("id")
                .and_then(Value::as_str)
                .map(|id| model(id, ModelType::Llm))
        })
        .collect())
}

/// Keeps the models `allowed` lets through (all of them when it is `None`).
pub fn allowed(models: Vec<Model>, allowed: Option<&[String]>) -> Vec<Model> {
    match allowed {
        None => models,
        Some(allowed) => models
            .into_iter()
            .filter(|m| allowed.contains(&m.id))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(models: &[Model]) -> Vec<(&str, ModelType)> {
        models
            .iter()
            .map(|m| (m.id.as_str(), m.model_type))
            .collect()
    }

    #[test]
    fn foundation_models_keep_active_text_and_embedding_models() {
        let body = json!({"modelSummaries": [
            {"modelId": "openai.gpt-oss-20b-1:0", "modelLifecycle": {"status": "ACTIVE"},
             "outputModalities": ["TEXT"], "inferenceTypesSupported": ["ON_DEMAND"]},
            {"modelId": "anthropic.claude-v2", "modelLifecycle": {"status": "LEGACY"},
             "outputModalities": ["TEXT"]},
            {"modelId": "amazon.titan-embed-text-v2:0", "modelLifecycle": {"status": "ACTIVE"},
             "outputModalities": ["EMBEDDING"]},
            {"modelId": "stability.sd3", "modelLifecycle": {"status": "ACTIVE"},
             "outputModalities": ["IMAGE"]},
            {"modelId": "no.modalities-v1", "modelLifecycle": {"status": "ACTIVE"}},
            {"modelLifecycle": {"status": "ACTIVE"}},
        ]});
        let models = from_foundation_models(&body).unwrap();
        assert_eq!(
            ids(&models),
            vec![
                ("openai.gpt-oss-20b-1:0", ModelType::Llm),
                ("amazon.titan-embed-text-v2:0", ModelType::Embedding),
                ("no.modalities-v1", ModelType::Llm),
            ]
        );
        assert_eq!(
            models[1].metadata.as_ref().unwrap()["embedding_dimension"],
            1024
        );
        assert!(from_foundation_models(&json!({"models": []})).is_err());
    }

    #[test]
    fn inference_profiles() {
        let body = json!({"inferenceProfileSummaries": [
            {"inferenceProfileId": "us.anthropic.claude-3-5-haiku-20241022-v1:0", "status": "ACTIVE",
             "models": [{"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0"}]},
            {"inferenceProfileId": "us.cohere.embed-v4:0", "status": "ACTIVE",
             "models": [{"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/cohere.embed-v4:0"}]},
            {"inferenceProfileId": "old", "status": "INACTIVE"},
        ], "nextToken": "n2"});
        let (models, next) = from_inference_profiles(&body).unwrap();
        assert_eq!(
            ids(&models),
            vec![
                (
                    "us.anthropic.claude-3-5-haiku-20241022-v1:0",
                    ModelType::Llm
                ),
                ("us.cohere.embed-v4:0", ModelType::Embedding),
            ]
        );
        assert_eq!(next.as_deref(), Some("n2"));
        assert!(from_inference_profiles(&json!({})).is_err());
    }

    #[test]
    fn openai_lists_and_allowed_models() {
        let models =
            from_openai_list(&json!({"data": [{"id": "a"}, {"id": "b"}, {"x": 1}]})).unwrap();
        assert_eq!(
            ids(&models),
            vec![("a", ModelType::Llm), ("b", ModelType::Llm)]
        );
        assert!(from_openai_list(&json!([])).is_err());
        assert_eq!(allowed(models.clone(), None), models);
        assert_eq!(
            ids(&allowed(models, Some(&["b".to_string()]))),
            vec![("b", ModelType::Llm)]
        );
    }
}
