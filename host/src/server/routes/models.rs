//! `GET /v1/models` and `GET /v1/models/{id}` (ids may contain `/`), in the shape of the SDK
//! that asks, detected from the request headers as OGX 1.5.0 does
//! (`src/ogx_api/models/fastapi_routes.py`):
//!
//! - `anthropic-version` (any value): Anthropic's — the list sorted by id, paged with
//!   `before_id` / `after_id` / `limit` (1–1000, default 20), `created_at` the model's
//!   registration time in RFC 3339; the answer carries `anthropic-version: 2023-06-01`.
//! - otherwise any of `x-goog-api-key`, `x-goog-user-project`, `x-goog-api-client`: Google's —
//!   `{"models": [{"name": "models/<id>", "display_name", "description": ""}]}`, no paging; a
//!   get strips a leading `models/` and also matches a model's `provider_resource_id` (two
//!   matches are a 400 asking for `models/<provider_id>/<model_id>`).
//! - otherwise OpenAI's list with OGX's `custom_metadata`, and OGX's full model object.
//!
//! An unknown model is a 404 with OGX's message in every shape; paging mistakes are 400s.

use crate::calendar::rfc3339;
use crate::registry::{Model, unix_now};
use crate::server::AppState;
use crate::server::errors::ApiError;
use crate::server::routes::history::{Params, query_params};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The Anthropic API version OGX 1.5.0 answers with.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The headers that make a request Google-shaped.
const GOOGLE_HEADERS: [&str; 3] = ["x-goog-api-key", "x-goog-user-project", "x-goog-api-client"];
/// Anthropic's default page size.
const ANTHROPIC_DEFAULT_LIMIT: usize = 20;
/// Anthropic's largest page (OGX's `le=1000`).
const ANTHROPIC_MAX_LIMIT: usize = 1000;

/// Which SDK's shape to answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    OpenAi,
    Anthropic,
    Google,
}

impl Shape {
    fn of(headers: &HeaderMap) -> Self {
        if headers.contains_key("anthropic-version") {
            Shape::Anthropic
        } else if GOOGLE_HEADERS.iter().any(|h| headers.contains_key(*h)) {
            Shape::Google
        } else {
            Shape::OpenAi
        }
    }
}

/// `GET /v1/models`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let models = state.registry.models();
    match Shape::of(&headers) {
        Shape::OpenAi => {
            let now = unix_now();
            let data: Vec<Value> = models.iter().map(|m| openai_shape(m, now)).collect();
            Ok(Json(json!({ "object": "list", "data": data })).into_response())
        }
        Shape::Google => {
            let data: Vec<Value> = models.iter().map(google_shape).collect();
            Ok(Json(json!({ "models": data })).into_response())
        }
        Shape::Anthropic => {
            let params = query_params(params)?;
            Ok(anthropic_answer(anthropic_page(models, &params)?))
        }
    }
}

/// `GET /v1/models/{model_id}`.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(model_id): Path<String>,
) -> Result<Response, ApiError> {
    let shape = Shape::of(&headers);
    let model_id = match shape {
        Shape::Google => google_identifier(&state.registry.models(), &model_id)?,
        _ => model_id,
    };
    let model = state
        .registry
        .model(&model_id)
        .ok_or_else(|| ApiError::model_not_found(&model_id))?;
    Ok(match shape {
        Shape::Anthropic => anthropic_answer(anthropic_shape(&model)),
        Shape::Google => Json(google_shape(&model)).into_response(),
        Shape::OpenAi => Json(json!({
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
        }))
        .into_response(),
    })
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

fn google_shape(model: &Model) -> Value {
    json!({
        "name": format!("models/{}", model.identifier),
        "display_name": model.identifier,
        "description": "",
    })
}

fn anthropic_shape(model: &Model) -> Value {
    json!({
        "id": model.identifier,
        "type": "model",
        "display_name": model.identifier,
        "created_at": rfc3339(model.created),
    })
}

fn anthropic_answer(body: Value) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        "anthropic-version",
        HeaderValue::from_static(ANTHROPIC_VERSION),
    );
    response
}

/// OGX's `anthropic_list_models`: sorted by identifier, then one page.
fn anthropic_page(
    mut models: Vec<Model>,
    params: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let limit = match params.get("limit") {
        None => ANTHROPIC_DEFAULT_LIMIT,
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| (1..=ANTHROPIC_MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "'limit' must be a whole number from 1 to {ANTHROPIC_MAX_LIMIT}, not {text:?}"
                ))
            })?,
    };
    models.sort_by(|a, b| a.identifier.cmp(&b.identifier));
    let position = |key: &str, id: &str| {
        models
            .iter()
            .position(|m| m.identifier == id)
            .ok_or_else(|| {
                ApiError::BadRequest(format!("Failed to list models: {key} was not found."))
            })
    };
    let (start, end, has_more) = match (params.get("after_id"), params.get("before_id")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "Failed to list models: before_id and after_id are mutually exclusive.".into(),
            ));
        }
        (Some(after), None) => {
            let start = position("after_id", after)? + 1;
            let end = (start + limit).min(models.len());
            (start, end, start + limit < models.len())
        }
        (None, Some(before)) => {
            let end = position("before_id", before)?;
            let start = end.saturating_sub(limit);
            (start, end, start > 0)
        }
        (None, None) => {
            let end = limit.min(models.len());
            (0, end, models.len() > limit)
        }
    };
    let data: Vec<Value> = models[start..end].iter().map(anthropic_shape).collect();
    let id_at = |item: Option<&Value>| item.map(|item| item["id"].clone());
    let mut body = json!({ "data": data, "has_more": has_more });
    // OGX leaves out the ids of an empty page (`exclude_none`).
    if let Some(first) = id_at(data_slice(&body).first()) {
        body["first_id"] = first;
    }
    if let Some(last) = id_at(data_slice(&body).last()) {
        body["last_id"] = last;
    }
    Ok(body)
}

fn data_slice(body: &Value) -> &[Value] {
    body["data"].as_array().map_or(&[], Vec::as_slice)
}

/// OGX's `_resolve_google_model_request`: `models/` stripped, then the one model whose
/// identifier or `provider_resource_id` is that id (the id itself when none is).
fn google_identifier(models: &[Model], requested: &str) -> Result<String, ApiError> {
    let id = requested
        .strip_prefix("/models/")
        .or_else(|| requested.strip_prefix("models/"))
        .unwrap_or(requested);
    let mut matches: Vec<&str> = models
        .iter()
        .filter(|m| m.identifier == id || m.provider_resource_id == id)
        .map(|m| m.identifier.as_str())
        .collect();
    matches.sort_unstable();
    matches.dedup();
    match matches.as_slice() {
        [] => Ok(id.to_string()),
        [one] => Ok(one.to_string()),
        _ => Err(ApiError::BadRequest(
            "Failed to get model: Google model ID is ambiguous across providers. Use 'models/{provider_id}/{model_id}'."
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ModelSource;

    fn model(identifier: &str, provider_resource_id: &str) -> Model {
        Model {
            identifier: identifier.into(),
            provider_id: identifier.split('/').next().unwrap_or_default().into(),
            provider_resource_id: provider_resource_id.into(),
            model_type: "llm".into(),
            metadata: Default::default(),
            created: 0,
            source: ModelSource::Registered,
        }
    }

    #[test]
    fn rfc3339_dates() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_764_771_930, "2025-12-03T14:25:30Z"),
        ];
        for (seconds, text) in cases {
            assert_eq!(rfc3339(seconds), text);
        }
    }

    #[test]
    fn anthropic_pages_like_ogx() {
        let models: Vec<Model> = ["c/3", "a/1", "b/2", "d/4", "e/5"]
            .iter()
            .map(|id| model(id, "x"))
            .collect();
        let page = |pairs: &[(&str, &str)]| {
            let params: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            anthropic_page(models.clone(), &params).map_err(|e| e.to_string())
        };
        let ids = |body: &Value| -> Vec<String> {
            data_slice(body)
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect()
        };
        type Query<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Query, &[&str], bool)] = &[
            (&[], &["a/1", "b/2", "c/3", "d/4", "e/5"], false),
            (&[("limit", "2")], &["a/1", "b/2"], true),
            (
                &[("after_id", "b/2"), ("limit", "2")],
                &["c/3", "d/4"],
                true,
            ),
            (
                &[("after_id", "c/3"), ("limit", "2")],
                &["d/4", "e/5"],
                false,
            ),
            (
                &[("before_id", "d/4"), ("limit", "2")],
                &["b/2", "c/3"],
                true,
            ),
            (
                &[("before_id", "c/3"), ("limit", "5")],
                &["a/1", "b/2"],
                false,
            ),
            (&[("after_id", "e/5")], &[], false),
        ];
        for (params, expected, more) in cases {
            let body = page(params).unwrap();
            assert_eq!(ids(&body), *expected, "{params:?}");
            assert_eq!(body["has_more"], *more, "{params:?}");
            assert_eq!(
                body.get("first_id").and_then(Value::as_str),
                expected.first().copied()
            );
            assert_eq!(
                body.get("last_id").and_then(Value::as_str),
                expected.last().copied()
            );
        }
        let errors: &[(Query, &str)] = &[
            (
                &[("after_id", "zz")],
                "Failed to list models: after_id was not found.",
            ),
            (
                &[("before_id", "zz")],
                "Failed to list models: before_id was not found.",
            ),
            (
                &[("after_id", "a/1"), ("before_id", "b/2")],
                "Failed to list models: before_id and after_id are mutually exclusive.",
            ),
            (
                &[("limit", "0")],
                "'limit' must be a whole number from 1 to 1000",
            ),
            (
                &[("limit", "1001")],
                "'limit' must be a whole number from 1 to 1000",
            ),
        ];
        for (params, message) in errors {
            let error = page(params).unwrap_err();
            assert!(error.contains(message), "{params:?}: {error}");
        }
    }

    #[test]
    fn google_ids_match_identifiers_and_upstream_ids() {
        let models = [
            model("openai/gpt", "gpt"),
            model("vllm/llama", "llama"),
            model("groq/llama", "llama"),
        ];
        let cases = [
            ("models/openai/gpt", Ok("openai/gpt")),
            ("/models/gpt", Ok("openai/gpt")),
            ("gpt", Ok("openai/gpt")),
            ("unknown", Ok("unknown")),
            ("models/llama", Err("ambiguous across providers")),
            ("models/vllm/llama", Ok("vllm/llama")),
        ];
        for (requested, expected) in cases {
            match (google_identifier(&models, requested), expected) {
                (Ok(id), Ok(want)) => assert_eq!(id, want, "{requested}"),
                (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{requested}: {e}"),
                (got, want) => panic!("{requested}: {got:?} vs {want:?}"),
            }
        }
    }

    #[test]
    fn the_shape_follows_the_headers() {
        let with = |names: &[&str]| {
            let mut headers = HeaderMap::new();
            for name in names {
                headers.insert(
                    axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_static("v"),
                );
            }
            Shape::of(&headers)
        };
        assert_eq!(with(&[]), Shape::OpenAi);
        assert_eq!(with(&["x-api-key"]), Shape::OpenAi);
        assert_eq!(with(&["anthropic-version"]), Shape::Anthropic);
        assert_eq!(
            with(&["anthropic-version", "x-goog-api-key"]),
            Shape::Anthropic
        );
        for google in GOOGLE_HEADERS {
            assert_eq!(with(&[google]), Shape::Google);
        }
    }
}
