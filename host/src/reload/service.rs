//! The router the listener serves: it hands each request to the router live when the request
//! arrives. The cost per request is one atomic load and one reference count increment
//! ([`ArcSwap::load`] and a [`Router`] clone); the request then runs entirely on that router
//! and its state, whatever is swapped in meanwhile.

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Service;

/// A router whose every request goes to the router in `live` at that moment.
pub(super) fn router(live: Arc<ArcSwap<Router>>) -> Router {
    Router::new().fallback_service(LiveRouter(live))
}

#[derive(Clone)]
struct LiveRouter(Arc<ArcSwap<Router>>);

impl Service<Request> for LiveRouter {
    type Response = Response;
    type Error = Infallible;
    type Future = RouteFuture<Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // A router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mut router = Router::clone(&self.0.load());
        router.call(request)
    }
}
