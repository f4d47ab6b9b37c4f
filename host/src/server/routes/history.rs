//! The chat-completion history: `GET /v1/chat/completions` (a page of stored completions),
//! `GET /v1/chat/completions/{id}` (one) and `GET /v1/chat/completions/{id}/messages` (its
//! input messages, OpenAI's route, which OGX does not serve).
//!
//! Query parameters: `after` (an id from a previous page), `limit` (any whole number from 1,
//! as OGX 1.5.0 — its client asks for 1000; default [`DEFAULT_LIMIT`]), `order` (`asc` |
//! `desc`; default `desc` for completions, `asc` for messages) and, for completions, `model`
//! (the client-facing id). Unlike OGX, an unknown completion id is a 404 (OpenAI's status).
//! With `storage.stores.inference.enabled: false` every route answers OGX's 501.

use crate::auth::Identity;
use crate::auth::policy::Action;
use crate::server::errors::ApiError;
use crate::server::{AppState, row_access};
use crate::storage::inference_store::{InferenceStore, ListQuery, Order, StoredCompletion};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use std::collections::HashMap;

/// `limit` when the client gives none.
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `limit` the Responses API's lists accept (OpenAI's).
pub const MAX_LIMIT: usize = 100;

pub(crate) type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// `GET /v1/chat/completions`.
pub async fn list(
    State(state): State<AppState>,
    identity: Identity,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(params)?;
    let query = ListQuery {
        after: params.get("after").cloned(),
        limit: limit(&params, DEFAULT_LIMIT, None)?,
        order: order(&params, Order::Desc)?,
        model: params.get("model").cloned(),
    };
    let store = history(&state, "List chat completions")?;
    let (rows, has_more) = row_access::readable_page(
        &state,
        &identity,
        store.table_name(),
        query,
        |query| async {
            let page = store.list(query).await?;
            Ok((page.data, page.has_more))
        },
    )
    .await?;
    let data: Vec<Value> = rows.iter().map(StoredCompletion::to_json).collect();
    Ok(Json(list_body(data, has_more)))
}

/// `GET /v1/chat/completions/{completion_id}`.
pub async fn get(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        stored(&state, &identity, &id, "Get chat completion")
            .await?
            .to_json(),
    ))
}

/// `GET /v1/chat/completions/{completion_id}/messages`: the input messages, then the answer's
/// messages (one per choice), each with the id `<completion id>-<index>`, as OGX 1.5.0.
pub async fn messages(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(params)?;
    let (limit, order) = (
        limit(&params, DEFAULT_LIMIT, None)?,
        order(&params, Order::Asc)?,
    );
    let completion = stored(&state, &identity, &id, "List chat completion messages").await?;
    // OGX 1.5.0: the input messages, then each choice's message.
    let mut messages: Vec<Value> = match completion.input_messages {
        Value::Array(messages) => messages,
        _ => Vec::new(),
    };
    if let Value::Array(choices) = completion.choices {
        messages.extend(
            choices
                .into_iter()
                .filter_map(|mut choice| choice.get_mut("message").map(Value::take)),
        );
    }
    for (index, message) in messages.iter_mut().enumerate() {
        if let Value::Object(fields) = message {
            fields.insert("id".into(), json!(format!("{id}-{index}")));
        }
    }
    let after = params.get("after").map(String::as_str);
    Ok(Json(page_after(messages, after, limit, order, || {
        format!(
            "message with id '{}' in chat completion '{id}'",
            after.unwrap_or_default()
        )
    })?))
}

/// One page of `items` (oldest first) as a list body: reversed for `desc`, starting after the
/// item whose `id` is `after` (a 400 saying "no <missing()>" when none has it).
pub(crate) fn page_after(
    mut items: Vec<Value>,
    after: Option<&str>,
    limit: usize,
    order: Order,
    missing: impl FnOnce() -> String,
) -> Result<Value, ApiError> {
    if order == Order::Desc {
        items.reverse();
    }
    let start = match after {
        None => 0,
        Some(after) => items
            .iter()
            .position(|item| item["id"] == after)
            .map(|p| p + 1)
            .ok_or_else(|| ApiError::BadRequest(format!("'after': no {}", missing())))?,
    };
    let rest: Vec<Value> = items.into_iter().skip(start).collect();
    let has_more = rest.len() > limit;
    Ok(list_body(rest.into_iter().take(limit).collect(), has_more))
}

/// The history, or OGX 1.5.0's 501 for `operation` when it is off.
fn history<'s>(state: &'s AppState, operation: &str) -> Result<&'s InferenceStore, ApiError> {
    state
        .inference_store
        .as_deref()
        .ok_or_else(|| ApiError::history_off(operation))
}

/// The stored completion `id`, when the caller may read it (otherwise "not found").
async fn stored(
    state: &AppState,
    identity: &Identity,
    id: &str,
    operation: &str,
) -> Result<StoredCompletion, ApiError> {
    let store = history(state, operation)?;
    let row = store.get(id).await?;
    row_access::only_if_allowed(state, identity, Action::Read, store.table_name(), row)
        .ok_or_else(|| ApiError::completion_not_found(id))
}

pub(crate) fn list_body(data: Vec<Value>, has_more: bool) -> Value {
    let id_at = |item: Option<&Value>| item.map(|item| item["id"].clone()).unwrap_or(json!(""));
    json!({
        "object": "list",
        "first_id": id_at(data.first()),
        "last_id": id_at(data.last()),
        "has_more": has_more,
        "data": data,
    })
}

pub(crate) fn query_params(params: Params) -> Result<HashMap<String, String>, ApiError> {
    params
        .map(|Query(params)| params)
        .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))
}

/// `limit`: a whole number from 1, up to `max` when there is one.
pub(crate) fn limit(
    params: &HashMap<String, String>,
    default: usize,
    max: Option<usize>,
) -> Result<usize, ApiError> {
    let Some(text) = params.get("limit") else {
        return Ok(default);
    };
    text.parse()
        .ok()
        .filter(|limit| *limit >= 1 && max.is_none_or(|max| *limit <= max))
        .ok_or_else(|| {
            ApiError::BadRequest(match max {
                Some(max) => {
                    format!("'limit' must be a whole number from 1 to {max}, not {text:?}")
                }
                None => format!("'limit' must be a whole number of at least 1, not {text:?}"),
            })
        })
}

pub(crate) fn order(params: &HashMap<String, String>, default: Order) -> Result<Order, ApiError> {
    match params.get("order").map(String::as_str) {
        None => Ok(default),
        Some("asc") => Ok(Order::Asc),
        Some("desc") => Ok(Order::Desc),
        Some(other) => Err(ApiError::BadRequest(format!(
            "'order' must be 'asc' or 'desc', not {other:?}"
        ))),
    }
}
