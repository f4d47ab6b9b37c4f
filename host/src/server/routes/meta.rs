//! The operational routes: `/v1/health` and `/v1/version` (for probes), `/v1/providers`
//! (what is configured, secrets shown as `********`, with each provider's health and, for an
//! inference provider, its routing state: retries, limit, each routed target's breaker),
//! `/v1/inspect/routes` (what this server answers) and `/v1/inspect/plugins` (the plugin files
//! live now), and `POST /v1/admin/reload` (the config read again and applied, as `SIGHUP` does;
//! for admins only, as the gateway keys' admin routes: see [`Admin`]).

use crate::gateway_keys::admin::Admin;
use crate::runtime::CallContext;
use crate::server::errors::ApiError;
use crate::server::{AppState, ProviderInfo, ROUTES};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// How long `/v1/providers` waits for each provider's health check (OGX waits 3 s).
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn health() -> Json<Value> {
    Json(json!({ "status": "OK" }))
}

pub async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

/// The plugin files live now, with their provider types, content hash, load time and last
/// refusal (see `reload`); 404 on a server that does not report them.
pub async fn plugins(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let view = state
        .plugins
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("this server does not report its live plugins".into()))?;
    Ok(Json((view.0)()))
}

/// `POST /v1/admin/reload`: the config applied (200 with the change's report), or refused with
/// the messages start-up would give (400; the running config keeps serving).
pub async fn reload(_admin: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let reloader = state
        .reloader
        .as_ref()
        .ok_or_else(|| ApiError::NotImplemented("this server cannot reload its config".into()))?;
    match (reloader.0)().await {
        Ok(report) => Ok(Json(json!({ "status": "applied", "report": report }))),
        Err(refused) => Err(ApiError::BadRequest(refused)),
    }
}

pub async fn providers(State(state): State<AppState>) -> Json<Value> {
    let entries =
        futures::future::join_all(state.providers.iter().map(|info| describe(&state, info))).await;
    Json(json!({ "data": entries }))
}

pub async fn provider(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let info = state
        .providers
        .iter()
        .find(|info| info.provider_id == provider_id)
        .ok_or_else(|| ApiError::NotFound(format!("Provider {provider_id} not found")))?;
    Ok(Json(describe(&state, info).await))
}

async fn describe(state: &AppState, info: &ProviderInfo) -> Value {
    let health = match state.registry.provider(&info.provider_id) {
        Some(provider) => {
            let context = CallContext {
                request_id: format!("health-{}", info.provider_id),
                provider_data: None,
                timeout: Some(HEALTH_CHECK_TIMEOUT),
                model: None,
                upstream_clock: None,
                trace: None,
            };
            match provider.health(context).await {
                Ok(health) => json!({ "status": health.status, "message": health.message }),
                Err(error) => json!({ "status": "Error", "message": error.to_string() }),
            }
        }
        None => {
            json!({ "status": "Not Implemented", "message": "Provider does not implement health check" })
        }
    };
    let mut described = json!({
        "api": info.api,
        "provider_id": info.provider_id,
        "provider_type": info.provider_type,
        "config": info.redacted_config,
        "health": health,
    });
    if let Some(routing) = state.routing.provider_status(&info.provider_id) {
        described["routing"] = routing;
    }
    described
}

#[derive(Deserialize)]
pub struct RouteFilter {
    api_filter: Option<String>,
}

pub async fn routes(
    State(state): State<AppState>,
    Query(filter): Query<RouteFilter>,
) -> Json<Value> {
    let data: Vec<Value> = ROUTES
        .iter()
        // Every route ogx serves is a stable `/v1` route; none is deprecated.
        .filter(|_| matches!(filter.api_filter.as_deref(), None | Some("v1")))
        .map(|route| {
            let provider_types: Vec<&str> = state
                .providers
                .iter()
                .filter(|info| info.api == route.api)
                .map(|info| info.provider_type.as_str())
                .collect();
            json!({ "route": route.path, "method": route.method, "provider_types": provider_types })
        })
        .collect();
    Json(json!({ "data": data }))
}
