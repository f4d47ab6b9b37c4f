//! The swap itself (a request goes to the router live when it arrives and finishes there) and
//! which config sections wait for a restart. Reloads of real configs and plugins are tested
//! end to end (tests/test_live_reload.py).

use super::*;
use crate::config::RunConfig;
use axum::body::Body;
use axum::extract::Request;
use axum::routing::get;
use tower::ServiceExt;

fn answering(text: &'static str) -> Router {
    Router::new().route("/which", get(move || async move { text }))
}

async fn body_of(response: axum::response::Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn which() -> Request {
    Request::builder()
        .uri("/which")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_request_runs_on_the_router_live_when_it_arrived() {
    let release = Arc::new(tokio::sync::Notify::new());
    let waiting = Arc::clone(&release);
    let old = Router::new().route(
        "/which",
        get(move || {
            let waiting = Arc::clone(&waiting);
            async move {
                waiting.notified().await;
                "old"
            }
        }),
    );
    let live = Arc::new(ArcSwap::from_pointee(old));
    let served = service::router(Arc::clone(&live));

    let in_flight = tokio::spawn(served.clone().oneshot(which()));
    tokio::task::yield_now().await;
    live.store(Arc::new(answering("new")));
    assert_eq!(
        body_of(served.clone().oneshot(which()).await.unwrap()).await,
        "new"
    );
    release.notify_one();
    assert_eq!(body_of(in_flight.await.unwrap().unwrap()).await, "old");
}

#[test]
fn sections_read_at_start_up_keep_their_running_value() {
    let loaded = |config: RunConfig| LoadedConfig {
        path: "config.yaml".into(),
        config,
        document: serde_json::Value::Null,
        warnings: Vec::new(),
    };
    let running = loaded(RunConfig::default());

    let mut same = loaded(RunConfig::default());
    assert!(keep_restart_only(&running, &mut same).is_empty());

    let mut changed = RunConfig::default();
    changed.server.port += 1;
    changed.plugins.dirs.push("/elsewhere".into());
    changed.distro_name = "renamed".into();
    let mut next = loaded(changed);
    assert_eq!(
        keep_restart_only(&running, &mut next),
        vec!["server", "plugins"]
    );
    assert_eq!(next.config.server, running.config.server);
    assert_eq!(next.config.plugins, running.config.plugins);
    // Everything else is the new config's.
    assert_eq!(next.config.distro_name, "renamed");
}
