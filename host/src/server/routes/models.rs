//! `GET /v1/models` (OpenAI's list shape with OGX's `custom_metadata`) and
//! `GET /v1/models/{id}` (OGX's full model object; ids may contain `/`).

use crate::registry::Model;
use crate::server::AppState;
use crate::server::errors::ApiError;
use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use std::time::{SystemTime, UNIX_EPOCH};

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let data: Vec<Value> = state
        .registry
        .models()
        .iter()
        .map(|model| openai_shape(model, now))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let model = state
        .registry
        .model(&model_id)
        .ok_or_else(|| ApiError::model_not_found(&model_id))?;
    Ok(Json(json!({
        "identifier": model.identifier,
        "provider_resource_id": model.provider_resource_id,
        "provider_id": model.provider_id,
        "type": "model",
        "metadata": model.metadata,
        "created": model.created,
        "owned_by": "ogx",
        "model_type": model.model_type,
        "model_validation": null,
        "id": model.identifier,
        "object": "model",
    })))
}

/// One entry of `/v1/models`. `created` is the time of the listing, as in OGX.
fn openai_shape(model: &Model, now: u64) -> Value {
    let mut custom = serde_json::Map::new();
    custom.insert("model_type".into(), json!(model.model_type));
    custom.insert("provider_id".into(), json!(model.provider_id));
    custom.insert(
        "provider_resource_id".into(),
        json!(model.provider_resource_id),
    );
    for (key, value) in &model.metadata {
        custom.insert(key.clone(), value.clone());
    }
    json!({
        "id": model.identifier,
        "object": "model",
        "created": now,
        "owned_by": "ogx",
        "custom_metadata": custom,
    })
}
