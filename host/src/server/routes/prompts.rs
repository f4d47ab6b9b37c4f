//! OGX's Prompts API: `POST/GET /v1/prompts`, `GET/PUT/DELETE /v1/prompts/{prompt_id}`,
//! `GET /v1/prompts/{prompt_id}/versions` and `PUT /v1/prompts/{prompt_id}/set-default-version`.
//! Bodies are checked here (a 400 names the field); the rules on versions and variables are
//! the [`PromptStore`](crate::storage::prompts::PromptStore)'s.

use crate::server::AppState;
use crate::server::errors::ApiError;
use crate::server::request::{invalid, json_object, missing};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub async fn create(State(state): State<AppState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let prompt = string(&body, "prompt")?;
    let variables = variables(&body)?;
    let created = state.prompts.create(&prompt, variables).await?;
    Ok(Json(created.to_json()))
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let prompts = state.prompts.list().await?;
    let data: Vec<Value> = prompts.iter().map(|p| p.to_json()).collect();
    Ok(Json(json!({ "data": data })))
}

pub async fn get(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let version = match query.get("version").map(String::as_str) {
        None | Some("") => None,
        Some(text) => Some(
            text.parse::<u64>()
                .map_err(|_| invalid("version", "must be a whole number"))?,
        ),
    };
    Ok(Json(
        state.prompts.get(&prompt_id, version).await?.to_json(),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let prompt = string(&body, "prompt")?;
    let version = integer(&body, "version")?;
    let variables = variables(&body)?;
    let set_as_default = match body.get("set_as_default") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => return Err(invalid("set_as_default", "must be true or false")),
    };
    let updated = state
        .prompts
        .update(&prompt_id, &prompt, version, variables, set_as_default)
        .await?;
    Ok(Json(updated.to_json()))
}

pub async fn delete(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.prompts.delete(&prompt_id).await?;
    Ok(Json(Value::Null))
}

pub async fn versions(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let prompts = state.prompts.versions(&prompt_id).await?;
    let data: Vec<Value> = prompts.iter().map(|p| p.to_json()).collect();
    Ok(Json(json!({ "data": data })))
}

pub async fn set_default_version(
    State(state): State<AppState>,
    Path(prompt_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let body = json_object(&body)?;
    let version = integer(&body, "version")?;
    let version = u64::try_from(version).map_err(|_| invalid("version", "must be >= 1"))?;
    Ok(Json(
        state
            .prompts
            .set_default(&prompt_id, version)
            .await?
            .to_json(),
    ))
}

fn string(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(invalid(field, "must be a string")),
    }
}

fn integer(body: &Map<String, Value>, field: &str) -> Result<i64, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(missing(field)),
        Some(value) => value
            .as_i64()
            .ok_or_else(|| invalid(field, "must be a whole number")),
    }
}

/// `variables`: a list of strings; absent or null means none.
fn variables(body: &Map<String, Value>) -> Result<Vec<String>, ApiError> {
    match body.get("variables") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| invalid("variables", "must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(invalid("variables", "must be a list of strings")),
    }
}
