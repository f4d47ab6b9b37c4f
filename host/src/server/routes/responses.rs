//! The Responses API routes: `POST /v1/responses` (JSON or form-encoded; JSON answer, or SSE
//! with `"stream": true`), `GET /v1/responses` (a page of stored responses: `after`, `limit`
//! 1–100 default [`DEFAULT_LIST_LIMIT`], `order` default `desc`, `model`),
//! `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items` (`after`, `limit` default 20, `order` default `desc`).
//!
//! A create request is served in one chat-completions call to the model's provider, streamed
//! and turned into Responses events by [`crate::responses::events`]. With
//! `previous_response_id` the stored chain's messages come first; an unknown or deleted id is a
//! 404. With `store` (the default) the finished response is written before its answer goes
//! out, so it can be named by the very next request.
//!
//! **Failures.** Before the provider's stream starts, every failure is an HTTP error (400 bad
//! body, 404 unknown model or response, the provider's status). Once a stream has started, an
//! upstream failure ends it with `response.failed`; without `stream`, it is the provider's
//! HTTP error (the failed response is stored all the same). Without a `providers.responses`
//! entry in the config, every route answers 404 saying how to enable the API.

use super::history::{self, Params};
use crate::auth::Identity;
use crate::auth::policy::Action;
use crate::responses::events::ResponseBuilder;
use crate::responses::request::CreateResponse;
use crate::responses::{ResponsesError, convert, new_id, object};
use crate::runtime::ChunkStream;
use crate::server::errors::ApiError;
use crate::server::row_access;
use crate::server::{AppState, sse};
use crate::storage::inference_store::{ListQuery, Order};
use crate::storage::owner::Owner;
use crate::storage::responses_store::{ResponsesStore, StoredResponse};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;

/// `limit` of `GET /v1/responses` when the client gives none (OGX's).
pub const DEFAULT_LIST_LIMIT: usize = 50;

/// `POST /v1/responses`.
pub async fn create(
    State(state): State<AppState>,
    identity: Identity,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let store = enabled(&state)?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let request = if form {
        CreateResponse::from_form(&body)?
    } else {
        CreateResponse::from_json(&body)?
    };
    let route = state
        .registry
        .route(&request.model)
        .ok_or_else(|| ApiError::model_not_found(&request.model))?;
    super::inference::check_model_type(&request.model, &route, "llm")?;
    crate::server::observability::routed(&route, &request.model, "chat");
    let mut context = match &request.previous_response_id {
        Some(previous) => stored(&state, &identity, previous)
            .await?
            .messages
            .as_array()
            .cloned()
            .unwrap_or_default(),
        None => Vec::new(),
    };
    context.extend(convert::items_to_messages(&request.input)?);
    convert::check_outputs_answer_calls(&context)?;
    let owner = state.security.owner_for(&identity);
    let turn = Turn::new(store, &request, context, owner);
    let chat = convert::chat_request(&request, &turn.context, &route.upstream_model);
    let chunks =
        super::inference::chat_stream(&state, &headers, &request.model, &route, chat).await?;
    if request.stream {
        Ok(stream(turn, chunks))
    } else {
        drain(turn, chunks).await
    }
}

/// One response being made: what is stored when it ends.
struct Turn {
    store: Option<Arc<ResponsesStore>>,
    builder: ResponseBuilder,
    id: String,
    created_at: i64,
    model: String,
    input: Vec<Value>,
    /// The chat messages before this turn's output, without instructions.
    context: Vec<Value>,
    owner: Owner,
}

impl Turn {
    fn new(
        store: Arc<ResponsesStore>,
        request: &CreateResponse,
        context: Vec<Value>,
        owner: Owner,
    ) -> Self {
        let id = new_id("resp");
        let created_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let builder = ResponseBuilder::new(object::in_progress(&id, created_at, request));
        Self {
            store: request.store.then_some(store),
            builder,
            id,
            created_at,
            model: request.model.clone(),
            input: convert::with_ids(&request.input),
            context,
            owner,
        }
    }

    /// Stores the finished `response` (when `store`); a failed write is logged.
    async fn save(&mut self, response: &Value) {
        let Some(store) = self.store.take() else {
            return;
        };
        let mut messages = std::mem::take(&mut self.context);
        let output = response["output"].as_array().cloned().unwrap_or_default();
        match convert::items_to_messages(&output) {
            Ok(answer) => messages.extend(answer),
            Err(error) => {
                tracing::error!(id = %self.id, "a response's output could not be converted for its chain: {error}")
            }
        }
        let stored = StoredResponse {
            id: self.id.clone(),
            created_at: self.created_at,
            model: self.model.clone(),
            response: response.clone(),
            input: Value::Array(std::mem::take(&mut self.input)),
            messages: Value::Array(messages),
            owner: std::mem::take(&mut self.owner),
        };
        if let Err(error) = store.put(stored).await {
            tracing::error!(id = %self.id, "the response could not be stored: {error}");
        }
    }
}

/// Without `stream`: every chunk, then the Response object.
async fn drain(mut turn: Turn, mut chunks: ChunkStream) -> Result<Response, ApiError> {
    turn.builder.start();
    while let Some(chunk) = chunks.next().await {
        match chunk {
            Ok(chunk) => {
                turn.builder.chunk(&chunk);
            }
            Err(error) => {
                let error = ApiError::from(error);
                let (_, failed) = turn.builder.fail(&error.status_and_message().1);
                turn.save(&failed).await;
                return Err(error);
            }
        }
    }
    let (_, response) = turn.builder.finish();
    turn.save(&response).await;
    Ok(Json(response).into_response())
}

/// With `stream`: the events as SSE, produced by a task that outlives no client: when the
/// client goes away the task stops and the provider's stream is dropped.
fn stream(mut turn: Turn, mut chunks: ChunkStream) -> Response {
    sse::named_events(move |sink| async move {
        if !sink.send(turn.builder.start()).await {
            return;
        }
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(chunk) => {
                    if !sink.send(turn.builder.chunk(&chunk)).await {
                        return;
                    }
                }
                Err(error) => {
                    let error = ApiError::from(error);
                    tracing::warn!("a response stream failed after it started: {error}");
                    let (events, failed) = turn.builder.fail(&error.status_and_message().1);
                    turn.save(&failed).await;
                    sink.send(events).await;
                    return;
                }
            }
        }
        drop(chunks);
        let (events, response) = turn.builder.finish();
        turn.save(&response).await;
        sink.send(events).await;
    })
}

/// `GET /v1/responses`: each entry is the Response object plus its `input` items (OGX's shape).
pub async fn list(
    State(state): State<AppState>,
    identity: Identity,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let store = enabled(&state)?;
    let params = history::query_params(params)?;
    let query = ListQuery {
        after: params.get("after").cloned(),
        limit: history::limit(&params, DEFAULT_LIST_LIMIT, Some(history::MAX_LIMIT))?,
        order: history::order(&params, Order::Desc)?,
        model: params.get("model").cloned(),
    };
    let (rows, has_more) =
        row_access::readable_page(&state, &identity, store.table_name(), query, |query| {
            let store = Arc::clone(&store);
            async move {
                let page = store.list(query).await?;
                Ok((page.data, page.has_more))
            }
        })
        .await?;
    let data = rows
        .into_iter()
        .map(|stored| {
            let mut response = stored.response;
            response["input"] = stored.input;
            response
        })
        .collect();
    Ok(Json(history::list_body(data, has_more)))
}

/// `GET /v1/responses/{response_id}`.
pub async fn get(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(stored(&state, &identity, &id).await?.response))
}

/// `DELETE /v1/responses/{response_id}`.
pub async fn delete(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = enabled(&state)?;
    let row = store.get(&id).await?;
    let allowed =
        row_access::only_if_allowed(&state, &identity, Action::Delete, store.table_name(), row);
    if allowed.is_none() || !store.delete(&id).await? {
        return Err(ResponsesError::response_not_found(&id).into());
    }
    Ok(Json(
        json!({"id": id, "object": "response", "deleted": true}),
    ))
}

/// `GET /v1/responses/{response_id}/input_items`.
pub async fn input_items(
    State(state): State<AppState>,
    identity: Identity,
    Path(id): Path<String>,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let params = history::query_params(params)?;
    let (limit, order) = (
        history::limit(&params, history::DEFAULT_LIMIT, Some(history::MAX_LIMIT))?,
        history::order(&params, Order::Desc)?,
    );
    let items = stored(&state, &identity, &id).await?.input;
    let items = items.as_array().cloned().unwrap_or_default();
    let after = params.get("after").map(String::as_str);
    Ok(Json(history::page_after(
        items,
        after,
        limit,
        order,
        || {
            format!(
                "input item with id '{}' in response '{id}'",
                after.unwrap_or_default()
            )
        },
    )?))
}

/// The stored response `id`, when the caller may read it (otherwise "not found").
async fn stored(
    state: &AppState,
    identity: &Identity,
    id: &str,
) -> Result<StoredResponse, ApiError> {
    let store = enabled(state)?;
    let row = store.get(id).await?;
    row_access::only_if_allowed(state, identity, Action::Read, store.table_name(), row)
        .ok_or_else(|| ResponsesError::response_not_found(id).into())
}

/// The store, or a 404 saying how to enable the Responses API.
fn enabled(state: &AppState) -> Result<Arc<ResponsesStore>, ApiError> {
    state.responses.clone().ok_or_else(|| {
        ApiError::NotFound(
            "The Responses API is not enabled: add a `responses` provider (provider_type: inline::builtin) under `providers` in the run config.".into(),
        )
    })
}
