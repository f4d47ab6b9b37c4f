//! `/v1/admin/keys...`: create, list, read, update, rotate, disable, enable and delete gateway
//! keys, and read their usage. Only an admin may call them: a request that presented the
//! bootstrap admin key (`$OGX_GATEWAY_ADMIN_KEY`), or whose [`Principal`] was established by
//! OGX's `server.auth` and is named by `gateway_keys.admin` (a principal, or an attribute
//! value). A gateway key never makes its holder an admin.
//!
//! A key's secret is in the answer of create and rotate only; listings and reads show its hint.
//! Without a `gateway_keys:` section every route answers 404 saying how to configure it.

use super::guard::BootstrapAdmin;
use super::key::{
    KeyRecord, KeySettings, Period, new_key_id, new_secret, secret_hash, secret_hint,
};
use super::limits::{NANOS_PER_UNIT, TOTALS, counter, total, window};
use super::{GatewayKeyError, GatewayKeys, now_seconds, parse_record};
use crate::auth::{Principal, PrincipalSource};
use crate::server::AppState;
use crate::server::errors::ApiError;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/keys", post(create).get(list))
        .route(
            "/v1/admin/keys/{key_id}",
            get(read).patch(update).delete(delete),
        )
        .route("/v1/admin/keys/{key_id}/rotate", post(rotate))
        .route("/v1/admin/keys/{key_id}/disable", post(disable))
        .route("/v1/admin/keys/{key_id}/enable", post(enable))
        .route("/v1/admin/keys/{key_id}/usage", get(usage))
        .route("/v1/admin/usage", get(usage_of_all))
}

/// An admin's request; the rejection is a 401, 403 or 404.
pub struct Admin(pub Arc<GatewayKeys>);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let keys = state
            .gateway_keys
            .clone()
            .ok_or(GatewayKeyError::NotConfigured)?;
        if parts.extensions.get::<BootstrapAdmin>().is_some() {
            return Ok(Admin(keys));
        }
        let Some(principal) = parts.extensions.get::<Principal>() else {
            return Err(GatewayKeyError::AdminUnauthenticated.into());
        };
        if is_admin(&keys, principal) {
            Ok(Admin(keys))
        } else {
            Err(GatewayKeyError::NotAdmin(principal.id.clone()).into())
        }
    }
}

fn is_admin(keys: &GatewayKeys, principal: &Principal) -> bool {
    if !matches!(principal.source, PrincipalSource::ServerAuth { .. }) {
        return false;
    }
    keys.config.admin_principals.contains(&principal.id)
        || keys
            .config
            .admin_attributes
            .iter()
            .any(|(category, values)| {
                principal
                    .attribute(category)
                    .iter()
                    .any(|value| values.contains(value))
            })
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body)
        .map_err(|e| GatewayKeyError::Invalid(format!("the body is not valid JSON: {e}")).into())
}

async fn stored(keys: &GatewayKeys, key_id: &str) -> Result<KeyRecord, ApiError> {
    match keys
        .store
        .key(key_id)
        .await
        .map_err(GatewayKeyError::from)?
    {
        Some(text) => Ok(parse_record(&text)?),
        None => Err(GatewayKeyError::KeyNotFound(key_id.to_string()).into()),
    }
}

/// The record with a new secret, and the secret.
fn with_new_secret(mut record: KeyRecord) -> Result<(KeyRecord, String), ApiError> {
    let secret = new_secret()?;
    record.secret_hash = secret_hash(&secret);
    record.secret_hint = secret_hint(&secret);
    Ok((record, secret))
}

fn shown_once(record: &KeyRecord, secret: String) -> Json<Value> {
    let mut view = record.public_view();
    view["secret"] = json!(secret);
    Json(view)
}

fn encode(record: &KeyRecord) -> String {
    serde_json::to_string(record).expect("a key record serializes")
}

async fn create(Admin(keys): Admin, body: Bytes) -> Result<Json<Value>, ApiError> {
    let settings = KeySettings::from_json(&json_body(&body)?)?;
    let (record, secret) = with_new_secret(KeyRecord {
        id: new_key_id(),
        secret_hash: String::new(),
        secret_hint: String::new(),
        created_at: now_seconds(),
        settings,
    })?;
    keys.store
        .insert_key(&record.id, &record.secret_hash, &encode(&record))
        .await
        .map_err(GatewayKeyError::from)?;
    tracing::info!(key_id = %record.id, owner = %record.settings.owner, "gateway key created");
    Ok(shown_once(&record, secret))
}

async fn list(Admin(keys): Admin) -> Result<Json<Value>, ApiError> {
    let records = keys.store.keys().await.map_err(GatewayKeyError::from)?;
    let data = records
        .iter()
        .map(|text| parse_record(text).map(|r| r.public_view()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"object": "list", "data": data})))
}

async fn read(Admin(keys): Admin, Path(key_id): Path<String>) -> Result<Json<Value>, ApiError> {
    Ok(Json(stored(&keys, &key_id).await?.public_view()))
}

/// Saves `record` (its hash replacing `old_hash`) and forgets this replica's cached records.
async fn save(keys: &GatewayKeys, old_hash: &str, record: &KeyRecord) -> Result<(), ApiError> {
    let saved = keys
        .store
        .replace_key(&record.id, old_hash, &record.secret_hash, &encode(record))
        .await
        .map_err(GatewayKeyError::from)?;
    keys.forget_cached();
    if saved {
        Ok(())
    } else {
        Err(GatewayKeyError::KeyNotFound(record.id.clone()).into())
    }
}

async fn update(
    Admin(keys): Admin,
    Path(key_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut record = stored(&keys, &key_id).await?;
    record.settings = record.settings.patched(&json_body(&body)?)?;
    save(&keys, &record.secret_hash.clone(), &record).await?;
    Ok(Json(record.public_view()))
}

async fn set_disabled(
    keys: &GatewayKeys,
    key_id: &str,
    disabled: bool,
) -> Result<Json<Value>, ApiError> {
    let mut record = stored(keys, key_id).await?;
    record.settings.disabled = disabled;
    save(keys, &record.secret_hash.clone(), &record).await?;
    tracing::info!(key_id = %key_id, disabled, "gateway key updated");
    Ok(Json(record.public_view()))
}

async fn disable(Admin(keys): Admin, Path(key_id): Path<String>) -> Result<Json<Value>, ApiError> {
    set_disabled(&keys, &key_id, true).await
}

async fn enable(Admin(keys): Admin, Path(key_id): Path<String>) -> Result<Json<Value>, ApiError> {
    set_disabled(&keys, &key_id, false).await
}

async fn rotate(Admin(keys): Admin, Path(key_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let record = stored(&keys, &key_id).await?;
    let old_hash = record.secret_hash.clone();
    let (record, secret) = with_new_secret(record)?;
    save(&keys, &old_hash, &record).await?;
    tracing::info!(key_id = %key_id, "gateway key rotated");
    Ok(shown_once(&record, secret))
}

async fn delete(Admin(keys): Admin, Path(key_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let record = stored(&keys, &key_id).await?;
    let deleted = keys
        .store
        .delete_key(&key_id, &record.secret_hash)
        .await
        .map_err(GatewayKeyError::from)?;
    keys.forget_cached();
    if !deleted {
        return Err(GatewayKeyError::KeyNotFound(key_id).into());
    }
    tracing::info!(key_id = %key_id, "gateway key deleted");
    Ok(Json(
        json!({"id": key_id, "object": "gateway_key.deleted", "deleted": true}),
    ))
}

async fn usage(Admin(keys): Admin, Path(key_id): Path<String>) -> Result<Json<Value>, ApiError> {
    let record = stored(&keys, &key_id).await?;
    Ok(Json(usage_view(&keys, &record).await?))
}

async fn usage_of_all(Admin(keys): Admin) -> Result<Json<Value>, ApiError> {
    let records = keys.store.keys().await.map_err(GatewayKeyError::from)?;
    let mut data = Vec::with_capacity(records.len());
    for text in records {
        data.push(usage_view(&keys, &parse_record(&text)?).await?);
    }
    Ok(Json(json!({"object": "list", "data": data})))
}

/// A key's totals, and for each limit and budget it has: the limit, what its current window
/// used, and when that window resets.
async fn usage_view(keys: &GatewayKeys, record: &KeyRecord) -> Result<Value, ApiError> {
    let now = now_seconds();
    let limits = &record.settings.limits;
    let mut windows: Vec<(&str, f64, String, Period, bool)> = Vec::new();
    for (label, limit, what, period) in [
        (
            "requests_per_minute",
            limits.requests_per_minute,
            "req",
            Period::Minute,
        ),
        (
            "requests_per_day",
            limits.requests_per_day,
            "req",
            Period::Day,
        ),
        (
            "tokens_per_minute",
            limits.tokens_per_minute,
            "tok",
            Period::Minute,
        ),
        ("tokens_per_day", limits.tokens_per_day, "tok", Period::Day),
    ] {
        if let Some(limit) = limit {
            windows.push((
                label,
                limit as f64,
                counter(&record.id, what, period, now).0,
                period,
                false,
            ));
        }
    }
    if let Some(budget) = record.settings.budget {
        windows.push((
            "budget",
            budget.amount,
            counter(&record.id, "spend", budget.period, now).0,
            budget.period,
            true,
        ));
    }
    let mut names: Vec<String> = TOTALS.iter().map(|what| total(&record.id, what)).collect();
    names.extend(windows.iter().map(|(_, _, name, ..)| name.clone()));
    let values = keys
        .store
        .counters(&names)
        .await
        .map_err(GatewayKeyError::from)?;
    let spend = |nanos: i64| nanos as f64 / NANOS_PER_UNIT;
    let mut view = json!({
        "object": "gateway_key.usage",
        "key_id": record.id,
        "owner": record.settings.owner,
        "requests": values[0],
        "input_tokens": values[1],
        "output_tokens": values[2],
        "cached_tokens": values[3],
        "spend": spend(values[4]),
        "limits": {},
    });
    for ((label, limit, _, period, money), used) in windows.iter().zip(&values[TOTALS.len()..]) {
        let used = if *money {
            json!(spend(*used))
        } else {
            json!(used)
        };
        let mut entry = json!({"limit": limit, "used": used, "period": period});
        if let Some(end) = window(*period, now).1 {
            entry["resets_at"] = json!(end);
        }
        view["limits"][label] = entry;
    }
    Ok(view)
}
