//! Model lists, read from either of the two places Bedrock publishes them.
//!
//! - SigV4: the control plane's `ListFoundationModels` (`GET /foundation-models
//!   ?byInferenceType=ON_DEMAND`), `{"modelSummaries": [{"modelId", "modelLifecycle":
//!   {"status"}, "outputModalities", ...}]}`; only `ACTIVE` models that produce text are kept.
//! - bearer: bedrock-mantle's OpenAI-style `GET /v1/models`, `{"data": [{"id"}]}`.
//!
//! `allowed_models`, when set, filters both.

use ogx_provider_sdk::Value;

/// The model ids of a `ListFoundationModels` answer, or why it is not one.
pub fn from_foundation_models(body: &Value) -> Result<Vec<String>, String> {
    let summaries = body
        .get("modelSummaries")
        .and_then(Value::as_array)
        .ok_or("the model list has no `modelSummaries` array")?;
    Ok(summaries
        .iter()
        .filter(|s| s.pointer("/modelLifecycle/status").and_then(Value::as_str) == Some("ACTIVE"))
        .filter(
            |s| match s.get("outputModalities").and_then(Value::as_array) {
                Some(modalities) => modalities.iter().any(|m| m.as_str() == Some("TEXT")),
                None => true,
            },
        )
        .filter_map(|s| s.get("modelId").and_then(Value::as_str).map(str::to_string))
        .collect())
}

/// The model ids of an OpenAI-style model list, or why it is not one.
pub fn from_openai_list(body: &Value) -> Result<Vec<String>, String> {
    let data = body
        .get("data")
        .and_then(Value::as_array)
        .ok_or("the model list has no `data` array")?;
    Ok(data
        .iter()
        .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string))
        .collect())
}

/// Keeps the ids `allowed` lets through (all of them when it is `None`).
pub fn allowed(ids: Vec<String>, allowed: Option<&[String]>) -> Vec<String> {
    match allowed {
        None => ids,
        Some(allowed) => ids.into_iter().filter(|id| allowed.contains(id)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn foundation_models_keep_active_text_models() {
        let body = json!({"modelSummaries": [
            {"modelId": "openai.gpt-oss-20b-1:0", "modelLifecycle": {"status": "ACTIVE"},
             "outputModalities": ["TEXT"], "inferenceTypesSupported": ["ON_DEMAND"]},
            {"modelId": "anthropic.claude-v2", "modelLifecycle": {"status": "LEGACY"},
             "outputModalities": ["TEXT"]},
            {"modelId": "amazon.titan-embed-text-v2:0", "modelLifecycle": {"status": "ACTIVE"},
             "outputModalities": ["EMBEDDING"]},
            {"modelId": "no.modalities-v1", "modelLifecycle": {"status": "ACTIVE"}},
            {"modelLifecycle": {"status": "ACTIVE"}},
        ]});
        assert_eq!(
            from_foundation_models(&body).unwrap(),
            vec!["openai.gpt-oss-20b-1:0", "no.modalities-v1"]
        );
        assert!(from_foundation_models(&json!({"models": []})).is_err());
    }

    #[test]
    fn openai_lists_and_allowed_models() {
        let ids = from_openai_list(&json!({"data": [{"id": "a"}, {"id": "b"}, {"x": 1}]})).unwrap();
        assert_eq!(ids, vec!["a", "b"]);
        assert!(from_openai_list(&json!([])).is_err());
        assert_eq!(allowed(ids.clone(), None), ids);
        assert_eq!(allowed(ids, Some(&["b".to_string()])), vec!["b"]);
    }
}
