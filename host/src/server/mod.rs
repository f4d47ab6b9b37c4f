//! The HTTP API: an axum router over the [`Registry`], OpenAI-compatible routes, OGX's
//! operational routes, and the serving loop (plain HTTP, or TLS when the config asks for it).
//!
//! Handlers never touch wasmtime: they call [`crate::runtime::Provider`] methods and turn
//! every failure into an OpenAI error body through [`errors::ApiError`].

pub mod cors;
pub mod errors;
pub mod history;
pub mod listen;
pub mod observability;
pub mod provider_data;
pub mod request;
pub mod routes;
pub mod row_access;
pub mod scrub;
pub mod sse;

use crate::registry::Registry;
use crate::runtime::{CallContext, Provider};
use crate::storage::inference_store::InferenceStore;
use crate::storage::prompts::PromptStore;
use crate::storage::responses_store::ResponsesStore;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use std::sync::Arc;

/// The largest request body accepted (images travel inline as base64).
pub const MAX_REQUEST_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The response header carrying the id given to each request.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    /// Every enabled provider of the config, for `/v1/providers`.
    pub providers: Arc<Vec<ProviderInfo>>,
    /// The Prompts API's store.
    pub prompts: Arc<PromptStore>,
    /// The chat-completion history; `None` with `storage.stores.inference.enabled: false`.
    pub inference_store: Option<Arc<InferenceStore>>,
    /// The Responses API's stored responses; `None` when the config enables no Responses API.
    pub responses: Option<Arc<ResponsesStore>>,
    /// The Messages API's config; `None` when the config does not enable it.
    pub messages: Option<crate::config::messages::MessagesConfig>,
    /// `server.auth` and `server.tenancy` ([`crate::auth::middleware`]).
    pub security: Arc<crate::auth::middleware::ServerSecurity>,
    /// `server.cors`; `None` when off.
    pub cors: Option<Arc<cors::Cors>>,
    /// `server.quota`; `None` when off.
    pub quota: Option<Arc<crate::quota::QuotaGuard>>,
    /// Gateway keys; `None` without a `gateway_keys:` section.
    pub gateway_keys: Option<Arc<crate::gateway_keys::GatewayKeys>>,
    /// Retries, limits and multi-target models ([`crate::routing`]).
    pub routing: Arc<crate::routing::Routing>,
    /// What `/v1/inspect/plugins` shows; `None` answers 404.
    pub plugins: Option<PluginsView>,
    /// What `POST /v1/admin/reload` runs; `None` answers 501.
    pub reloader: Option<Reloader>,
}

/// Re-reads the config and applies it, as `SIGHUP` does: the change's report as JSON, or why
/// it was refused (the running config stays). Given by whoever swaps the serving state.
#[derive(Clone)]
pub struct Reloader(
    pub  Arc<
        dyn Fn() -> futures::future::BoxFuture<'static, Result<serde_json::Value, String>>
            + Send
            + Sync,
    >,
);

/// The plugin files live now, as `/v1/inspect/plugins` shows them (a JSON object with `data`),
/// given by whoever swaps plugins in while the server runs. It never shows a secret.
#[derive(Clone)]
pub struct PluginsView(pub Arc<dyn Fn() -> serde_json::Value + Send + Sync>);

/// A provider as `/v1/providers` shows it.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub api: String,
    pub provider_id: String,
    pub provider_type: String,
    /// The config block with secrets replaced by `********`.
    pub redacted_config: serde_json::Value,
}

impl AppState {
    /// The context of a call to `provider` made for a request with these headers (its
    /// provider data as that provider sees it: [`provider_data::for_provider`]).
    pub fn call_context(&self, headers: &HeaderMap, provider: &Provider) -> CallContext {
        let request_id = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string)
            .unwrap_or_default();
        let record = crate::telemetry::record::current();
        CallContext {
            request_id,
            provider_data: provider_data::for_provider(
                provider_data::from_headers(headers),
                provider.id(),
                provider.provider_type(),
            ),
            timeout: None,
            model: None,
            upstream_clock: record.as_ref().map(|r| r.upstream.clone()),
            trace: record.and_then(|r| r.call_propagation()),
        }
    }
}

/// A route this server answers, for `/v1/inspect/routes`.
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    /// The OGX API the route belongs to.
    pub api: &'static str,
}

/// Every route, in the order `/v1/inspect/routes` lists them. [`router`] serves exactly these
/// (a unit test checks it).
pub const ROUTES: &[RouteInfo] = &[
    RouteInfo {
        method: "GET",
        path: "/v1/models",
        api: "models",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/models/{model_id:path}",
        api: "models",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/chat/completions",
        api: "inference",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/chat/completions",
        api: "inference",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/chat/completions/{completion_id}",
        api: "inference",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/chat/completions/{completion_id}/messages",
        api: "inference",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/completions",
        api: "inference",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/embeddings",
        api: "inference",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/health",
        api: "inspect",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/version",
        api: "inspect",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/inspect/routes",
        api: "inspect",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/inspect/plugins",
        api: "inspect",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/providers",
        api: "providers",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/providers/{provider_id}",
        api: "providers",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/prompts",
        api: "prompts",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/prompts",
        api: "prompts",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/prompts/{prompt_id}",
        api: "prompts",
    },
    RouteInfo {
        method: "PUT",
        path: "/v1/prompts/{prompt_id}",
        api: "prompts",
    },
    RouteInfo {
        method: "DELETE",
        path: "/v1/prompts/{prompt_id}",
        api: "prompts",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/prompts/{prompt_id}/versions",
        api: "prompts",
    },
    RouteInfo {
        method: "PUT",
        path: "/v1/prompts/{prompt_id}/set-default-version",
        api: "prompts",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/responses",
        api: "responses",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/responses",
        api: "responses",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/responses/{response_id}",
        api: "responses",
    },
    RouteInfo {
        method: "DELETE",
        path: "/v1/responses/{response_id}",
        api: "responses",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/responses/{response_id}/input_items",
        api: "responses",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/messages",
        api: "messages",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/messages/count_tokens",
        api: "messages",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/admin/keys",
        api: "admin",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/admin/keys",
        api: "admin",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/admin/keys/{key_id}",
        api: "admin",
    },
    RouteInfo {
        method: "PATCH",
        path: "/v1/admin/keys/{key_id}",
        api: "admin",
    },
    RouteInfo {
        method: "DELETE",
        path: "/v1/admin/keys/{key_id}",
        api: "admin",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/admin/keys/{key_id}/rotate",
        api: "admin",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/admin/keys/{key_id}/disable",
        api: "admin",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/admin/keys/{key_id}/enable",
        api: "admin",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/admin/keys/{key_id}/usage",
        api: "admin",
    },
    RouteInfo {
        method: "GET",
        path: "/v1/admin/usage",
        api: "admin",
    },
    RouteInfo {
        method: "POST",
        path: "/v1/admin/reload",
        api: "admin",
    },
];

/// The API router; with `metrics_route`, `GET /metrics` too.
pub fn router(state: AppState, metrics_route: bool) -> Router {
    use routes::{history, inference, messages, meta, models, prompts, responses};
    let router = if metrics_route {
        Router::new().route("/metrics", get(observability::metrics_text))
    } else {
        Router::new()
    };
    let router = router
        .route("/v1/models", get(models::list))
        .route("/v1/models/{*model_id}", get(models::get))
        .route(
            "/v1/chat/completions",
            post(inference::chat_completions).get(history::list),
        )
        .route("/v1/chat/completions/{completion_id}", get(history::get))
        .route(
            "/v1/chat/completions/{completion_id}/messages",
            get(history::messages),
        )
        .route("/v1/completions", post(inference::completions))
        .route("/v1/embeddings", post(inference::embeddings))
        .route("/v1/health", get(meta::health))
        .route("/v1/version", get(meta::version))
        .route("/v1/inspect/routes", get(meta::routes))
        .route("/v1/inspect/plugins", get(meta::plugins))
        .route("/v1/admin/reload", post(meta::reload))
        .route("/v1/providers", get(meta::providers))
        .route("/v1/providers/{provider_id}", get(meta::provider))
        .route("/v1/prompts", post(prompts::create).get(prompts::list))
        .route(
            "/v1/prompts/{prompt_id}",
            get(prompts::get)
                .put(prompts::update)
                .delete(prompts::delete),
        )
        .route("/v1/prompts/{prompt_id}/versions", get(prompts::versions))
        .route(
            "/v1/prompts/{prompt_id}/set-default-version",
            put(prompts::set_default_version),
        )
        .route(
            "/v1/responses",
            post(responses::create).get(responses::list),
        )
        .route(
            "/v1/responses/{response_id}",
            get(responses::get).delete(responses::delete),
        )
        .route(
            "/v1/responses/{response_id}/input_items",
            get(responses::input_items),
        )
        .merge(messages::router())
        .merge(crate::gateway_keys::admin::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY_BYTES));
    // Outermost last: the request's record (id, timing, metrics), secret scrubbing, CORS,
    // gateway keys, authentication (tenancy, route policy), quota. Layers that learn a request's secrets
    // (authentication, gateway keys) stay inside the scrubbing layer: it must see every answer
    // last.
    let router = match &state.quota {
        Some(quota) => router.layer(middleware::from_fn_with_state(
            Arc::clone(quota),
            crate::quota::enforce,
        )),
        None => router,
    };
    let router = match state.security.is_active() {
        true => router.layer(middleware::from_fn_with_state(
            Arc::clone(&state.security),
            crate::auth::middleware::enforce,
        )),
        false => router,
    };
    // Gateway keys authenticate before OGX's server.auth (a layer added later runs first).
    let router = router.layer(middleware::from_fn_with_state(
        state.clone(),
        crate::gateway_keys::guard::guard,
    ));
    let router = match &state.cors {
        Some(cors) => router.layer(middleware::from_fn_with_state(
            Arc::clone(cors),
            cors::handle,
        )),
        None => router,
    };
    router
        .layer(middleware::from_fn(scrub::scrub_secrets))
        .layer(middleware::from_fn(observability::observe))
        .with_state(state)
}

/// The router of a separate metrics port: only `GET /metrics`.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(observability::metrics_text))
        .with_state(state)
}

async fn unknown_route(request: Request) -> Response {
    openai_error(
        StatusCode::NOT_FOUND,
        format!(
            "Invalid URL ({} {})",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> Response {
    openai_error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "Method Not Allowed ({} {})",
            request.method(),
            request.uri().path()
        ),
    )
}

fn openai_error(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": { "message": message } })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::registry_store::RegistryStore;
    use axum::body::Body;
    use tower::ServiceExt;

    async fn empty_state() -> AppState {
        let table = crate::storage::inference_store::SqlTable::in_memory("t").unwrap();
        let host_kv = Arc::new(crate::storage::kv::KvStore::open_host(None).unwrap());
        AppState {
            registry: Arc::new(
                Registry::open(
                    Vec::new(),
                    &[],
                    RegistryStore::new(host_kv.namespace("registry")),
                )
                .await
                .unwrap(),
            ),
            providers: Arc::new(Vec::new()),
            prompts: Arc::new(PromptStore::new(host_kv.namespace("prompts"))),
            inference_store: Some(Arc::new(InferenceStore::start(
                Arc::new(table),
                1,
                1,
                std::time::Duration::ZERO,
            ))),
            responses: None,
            messages: None,
            security: Arc::new(crate::auth::middleware::ServerSecurity::disabled()),
            cors: None,
            quota: None,
            gateway_keys: None,
            routing: Arc::new(crate::routing::Routing::new(&[], &Default::default())),
            plugins: None,
            reloader: None,
        }
    }

    async fn call(method: &str, path: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::from("{}"))
            .unwrap();
        let response = router(empty_state().await, false)
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn every_listed_route_is_served() {
        for route in ROUTES {
            let path = route
                .path
                .replace("{model_id:path}", "vllm/some:model")
                .replace("{provider_id}", "p")
                .replace("{prompt_id}", "pmpt_x")
                .replace("{completion_id}", "c")
                .replace("{response_id}", "resp_x")
                .replace("{key_id}", "gk_x");
            let (status, body) = call(route.method, &path).await;
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(
                !message.starts_with("Invalid URL") && status != StatusCode::METHOD_NOT_ALLOWED,
                "{} {path}: {status} {body}",
                route.method
            );
        }
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_get_openai_errors() {
        let (status, body) = call("GET", "/v1/nothing").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["message"], "Invalid URL (GET /v1/nothing)");
        let (status, body) = call("DELETE", "/v1/models").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("DELETE /v1/models")
        );
    }

    #[tokio::test]
    async fn unknown_models_are_404_with_ogx_message() {
        let (status, body) = call("GET", "/v1/models/vllm/none").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            body["error"]["message"],
            "Model 'vllm/none' not found. Use 'client.models.list()' to list available Models."
        );
        let request = Request::builder()
            .method("POST")
            .uri("/v1/chat/completions")
            .body(Body::from(
                r#"{"model":"x/y","messages":[{"role":"user","content":"hi"}]}"#,
            ))
            .unwrap();
        let response = router(empty_state().await, false)
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.headers().contains_key(REQUEST_ID_HEADER));
    }

    #[tokio::test]
    async fn messages_routes_answer_anthropic_errors_with_the_version_header() {
        let mut state = empty_state().await;
        for (enabled, uri, status, error_type) in [
            (false, "/v1/messages?beta=true", 404, "not_found_error"),
            (true, "/v1/messages?beta=true", 400, "invalid_request_error"),
            (
                true,
                "/v1/messages/count_tokens",
                400,
                "invalid_request_error",
            ),
            (true, "/v1/messages/batches", 501, "api_error"),
        ] {
            state.messages = enabled.then(|| crate::config::messages::MessagesConfig {
                provider_id: "builtin".into(),
                batches_backend: None,
            });
            let request = Request::builder()
                .method("POST")
                .uri(uri)
                .body(Body::from("{not json"))
                .unwrap();
            let response = router(state.clone(), false).oneshot(request).await.unwrap();
            assert_eq!(response.status().as_u16(), status, "{uri}");
            assert_eq!(response.headers()["anthropic-version"], "2023-06-01");
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], error_type, "{uri}: {body}");
        }
    }
}
