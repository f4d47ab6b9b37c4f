//! Resilient routing: which provider call answers a request, and what happens when one fails.
//!
//! Between the server (which resolved the model) and the runtime (which runs one plugin
//! call), [`Routing`] holds everything that outlives a request: each provider's policy
//! ([`config::ProviderPolicy`]: retries, retry budget, concurrency limit, timeouts) and each
//! routed model's targets with their circuit breakers and load. It is built from the config
//! and the served providers in one go ([`Routing::new`]), so a config reload builds a new one
//! and requests in flight finish on the one they started with.
//!
//! A request runs a [`Plan`]: one target (a model of the registry, or `<provider>/<model>`),
//! or a routed model's targets (`routing.models`). The plan's first attempt goes to the target
//! its strategy picks ([`balance`]); a retriable failure ([`failure`]) goes at once to the next
//! target not yet tried; once every target was tried, the request is retried from the top
//! after a backoff ([`retry`]), up to `retries` times and within the retry budget. Nothing is
//! retried once the client got a byte of the answer: a stream counts as answered at its first
//! event, which is awaited here (and a stream without a first event within
//! `first_event_timeout` goes to the next target). A refusal by a provider's concurrency limit
//! ([`limit`]) goes to the next target but is not retried.
//!
//! Cost on the one-target path when nothing fails: one relaxed atomic add (the budget's
//! request count) and a scan of the providers by pointer; no lock, no allocation. Every answer
//! says who answered ([`AnsweredBy`]: `x-ogx-provider`, `x-ogx-target`).

pub mod balance;
pub mod breaker;
pub mod config;
mod error;
pub mod failure;
pub mod limit;
pub mod retry;
mod status;

pub use error::RoutingError;

use crate::runtime::{CallError, Provider};
use balance::{Candidate, Load};
use breaker::Breaker;
use config::{ModelRoute, ProviderPolicy, RoutingConfig};
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue};
use limit::Limit;
use retry::RetryBudget;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// The response header naming the provider that answered.
pub const PROVIDER_HEADER: &str = "x-ogx-provider";
/// The response header naming the target that answered: `<provider_id>/<provider_model_id>`.
pub const TARGET_HEADER: &str = "x-ogx-target";

/// One served provider's routing state.
pub struct ProviderRoute {
    provider: Arc<Provider>,
    policy: ProviderPolicy,
    header: HeaderValue,
    budget: RetryBudget,
    limit: Option<Limit>,
    retried: AtomicU64,
}

/// One target of a routed model.
struct Target {
    /// Index into [`Routing::providers`].
    provider: usize,
    provider_model_id: String,
    weight: u32,
    header: HeaderValue,
    breaker: Breaker,
    load: Load,
    answered: AtomicU64,
    failed: AtomicU64,
}

impl Candidate for Target {
    fn available(&self) -> bool {
        self.breaker.is_available()
    }
    fn weight(&self) -> u32 {
        self.weight
    }
    fn load(&self) -> &Load {
        &self.load
    }
}

/// A model of `routing.models`, with its targets' state.
pub struct RoutedModel {
    route: ModelRoute,
    targets: Vec<Target>,
    /// The retry policy: the first target's provider's, `retries` overridden by the model's.
    policy: ProviderPolicy,
    budget: RetryBudget,
    /// Sent to plugins as the model's metadata (a routed model has none).
    metadata: Map<String, Value>,
}

impl RoutedModel {
    /// `llm` or `embedding`.
    pub fn model_type(&self) -> &str {
        &self.route.model_type
    }
}

/// The routing state of every served provider and routed model.
pub struct Routing {
    providers: Vec<ProviderRoute>,
    models: HashMap<String, Arc<RoutedModel>>,
}

/// Who answered a request, as response headers.
#[derive(Debug, Clone)]
pub struct AnsweredBy {
    pub provider: HeaderValue,
    pub target: HeaderValue,
}

impl AnsweredBy {
    /// Sets `x-ogx-provider` and `x-ogx-target`.
    pub fn apply(&self, headers: &mut HeaderMap) {
        headers.insert(PROVIDER_HEADER, self.provider.clone());
        headers.insert(TARGET_HEADER, self.target.clone());
    }

    /// `<provider_id>/<provider_model_id>`, as recorded in the history.
    pub fn target(&self) -> &str {
        self.target.to_str().unwrap_or_default()
    }
}

/// Holds what an answer occupies (its provider's slot, its target's outstanding count) until
/// the answer is complete; for a stream, until the stream is dropped.
pub struct CallGuard {
    _permit: Option<OwnedSemaphorePermit>,
    load: Option<(Arc<RoutedModel>, usize)>,
}

impl CallGuard {
    /// A guard that holds nothing.
    pub fn none() -> Self {
        CallGuard {
            _permit: None,
            load: None,
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some((model, index)) = &self.load {
            model.targets[*index].load.finish();
        }
    }
}

/// An answer and who gave it.
pub struct Served<T> {
    pub value: T,
    pub answered_by: AnsweredBy,
    pub guard: CallGuard,
}

/// The items of a provider's stream (a chunk stream, a Messages event stream).
pub type ItemStream<I> = Pin<Box<dyn Stream<Item = Result<I, CallError>> + Send + 'static>>;

/// A stream whose first item has arrived.
pub struct Opened<I> {
    pub first: Option<I>,
    pub rest: ItemStream<I>,
}

/// What one attempt calls.
pub struct Attempt<'a> {
    pub provider: &'a Arc<Provider>,
    /// The id to send upstream.
    pub provider_model_id: &'a str,
    /// The registered model's metadata (empty for a routed or prefix-routed model).
    pub metadata: &'a Map<String, Value>,
    policy: Option<&'a ProviderPolicy>,
}

/// Where a request goes.
pub enum Plan<'a> {
    /// One target: a registry model or `<provider>/<model>`.
    Single {
        provider: &'a Arc<Provider>,
        route: Option<&'a ProviderRoute>,
        provider_model_id: &'a str,
        metadata: &'a Map<String, Value>,
    },
    /// A model of `routing.models`.
    Routed(&'a Arc<RoutedModel>),
}

/// Whether a call answers at once or streams (the first-event timeout applies to streams).
#[derive(Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Answer,
    Stream,
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

impl Routing {
    /// The routing state for `providers` (the served ones, in config order) under `config`.
    /// Targets of providers that are not served are dropped with a warning; a routed model
    /// left without targets is not served.
    pub fn new(providers: &[Arc<Provider>], config: &RoutingConfig) -> Self {
        let providers: Vec<ProviderRoute> = providers
            .iter()
            .map(|provider| {
                let policy = config.policy(provider.id());
                ProviderRoute {
                    provider: provider.clone(),
                    header: header_value(provider.id()),
                    budget: RetryBudget::new(policy.retry_budget),
                    limit: policy
                        .max_concurrent
                        .map(|max| Limit::new(max, policy.max_queued, policy.queue_timeout)),
                    retried: AtomicU64::new(0),
                    policy,
                }
            })
            .collect();
        let mut models = HashMap::new();
        for route in &config.models {
            let targets: Vec<Target> = route
                .targets
                .iter()
                .filter_map(|t| {
                    let Some(index) = providers
                        .iter()
                        .position(|p| p.provider.id() == t.provider_id)
                    else {
                        tracing::warn!(
                            "routing.models.{}: target {}/{} dropped: provider {} is not served",
                            route.model_id,
                            t.provider_id,
                            t.provider_model_id,
                            t.provider_id
                        );
                        return None;
                    };
                    Some(Target {
                        provider: index,
                        header: header_value(&format!("{}/{}", t.provider_id, t.provider_model_id)),
                        provider_model_id: t.provider_model_id.clone(),
                        weight: t.weight,
                        breaker: Breaker::new(route.breaker_failures, route.breaker_cooldown),
                        load: Load::default(),
                        answered: AtomicU64::new(0),
                        failed: AtomicU64::new(0),
                    })
                })
                .collect();
            let Some(first) = targets.first() else {
                continue;
            };
            let mut policy = providers[first.provider].policy.clone();
            if let Some(retries) = route.retries {
                policy.retries = retries;
            }
            let routed = RoutedModel {
                budget: RetryBudget::new(policy.retry_budget),
                policy,
                route: route.clone(),
                targets,
                metadata: Map::new(),
            };
            models.insert(route.model_id.clone(), Arc::new(routed));
        }
        Routing { providers, models }
    }

    /// The routed model with this id.
    pub fn model(&self, model_id: &str) -> Option<&Arc<RoutedModel>> {
        if self.models.is_empty() {
            return None;
        }
        self.models.get(model_id)
    }

    /// The routed models, as `(id, first target's provider, its model id, model type)`, for
    /// the model listing.
    pub fn listed_models(&self) -> Vec<(String, String, String, String)> {
        self.models
            .iter()
            .map(|(id, model)| {
                let first = &model.targets[0];
                (
                    id.clone(),
                    self.providers[first.provider].provider.id().to_string(),
                    first.provider_model_id.clone(),
                    model.route.model_type.clone(),
                )
            })
            .collect()
    }

    /// The plan for one target: `provider` serving `provider_model_id`.
    pub fn single<'a>(
        &'a self,
        provider: &'a Arc<Provider>,
        provider_model_id: &'a str,
        metadata: &'a Map<String, Value>,
    ) -> Plan<'a> {
        Plan::Single {
            provider,
            route: self
                .providers
                .iter()
                .find(|p| Arc::ptr_eq(&p.provider, provider)),
            provider_model_id,
            metadata,
        }
    }

    /// Runs `op` under `plan` until an answer, a failure that is not retriable, or the end of
    /// retries and targets.
    pub async fn call<'a, T, F>(
        &'a self,
        plan: &Plan<'a>,
        op: impl FnMut(Attempt<'a>) -> F,
    ) -> Result<Served<T>, RoutingError>
    where
        F: Future<Output = Result<T, CallError>>,
    {
        self.run(plan, CallKind::Answer, op).await
    }

    /// Opens a stream with `op` under `plan` and awaits its first item: a failure before it
    /// (or no item within the first-event timeout) is retried or goes to the next target like
    /// any other. The rest of the stream is bounded by the provider's idle and total timeouts.
    pub async fn open_stream<'a, I: Send + 'static, F>(
        &'a self,
        plan: &Plan<'a>,
        mut op: impl FnMut(Attempt<'a>) -> F,
    ) -> Result<Served<Opened<I>>, RoutingError>
    where
        F: Future<Output = Result<ItemStream<I>, CallError>>,
    {
        self.run(plan, CallKind::Stream, |attempt: Attempt<'a>| {
            let policy = attempt.policy;
            let started = Instant::now();
            let opening = op(attempt);
            async move {
                let mut stream = opening.await?;
                let first = match stream.next().await {
                    Some(Err(error)) => return Err(error),
                    Some(Ok(item)) => Some(item),
                    None => None,
                };
                let rest = match policy {
                    Some(p) if p.idle_timeout.is_some() || p.total_timeout.is_some() => {
                        let deadline = p.total_timeout.map(|t| started + t);
                        bounded(stream, p.idle_timeout, deadline)
                    }
                    _ => stream,
                };
                Ok(Opened { first, rest })
            }
        })
        .await
    }

    async fn run<'a, T, F>(
        &'a self,
        plan: &Plan<'a>,
        kind: CallKind,
        mut op: impl FnMut(Attempt<'a>) -> F,
    ) -> Result<Served<T>, RoutingError>
    where
        F: Future<Output = Result<T, CallError>>,
    {
        let (policy, budget) = match plan {
            Plan::Single { route: Some(r), .. } => (Some(&r.policy), Some(&r.budget)),
            Plan::Single { route: None, .. } => (None, None),
            Plan::Routed(model) => (Some(&model.policy), Some(&model.budget)),
        };
        if let Some(budget) = budget {
            budget.record_request();
        }
        let retries = policy.map_or(0, |p| p.retries);
        let mut tried: u32 = 0;
        let mut retry: u32 = 0;
        let mut last: Option<RoutingError> = None;
        loop {
            let Some(index) = self.choose(plan, tried, tried == 0 && retry == 0) else {
                let error = match last.take() {
                    Some(error) => error,
                    None => return Err(self.no_target(plan)),
                };
                // Every target was tried (or none is available): retry from the top.
                let (Some(policy), Some(budget)) = (policy, budget) else {
                    return Err(error);
                };
                if tried == 0 || error.is_refusal() || retry >= retries {
                    return Err(error);
                }
                let Some(wait) = retry::wait_before(policy, retry, error.retry_after()) else {
                    return Err(error);
                };
                if !budget.try_retry() {
                    return Err(error);
                }
                if let Plan::Single { route: Some(r), .. } = plan {
                    r.retried.fetch_add(1, Relaxed);
                }
                tracing::info!("retrying in {wait:?} after: {error}");
                tokio::time::sleep(wait).await;
                retry += 1;
                tried = 0;
                last = Some(error);
                continue;
            };
            tried |= 1 << index;
            let (attempt, route, target) = self.attempt(plan, index);
            if let Some(target) = target
                && !target.breaker.admit()
            {
                continue;
            }
            let permit = match route.and_then(|r| r.limit.as_ref()) {
                Some(limit) => match limit.acquire(attempt.provider.id()).await {
                    Ok(permit) => Some(permit),
                    Err(refused) => {
                        last = Some(refused);
                        continue;
                    }
                },
                None => None,
            };
            let limit = attempt_timeout(kind, attempt.policy, plan);
            let started = target.map(|_| Instant::now());
            if let Some(target) = target {
                target.load.start();
            }
            let answered_by = || AnsweredBy {
                provider: route
                    .map_or_else(|| header_value(attempt.provider.id()), |r| r.header.clone()),
                target: match target {
                    Some(t) => t.header.clone(),
                    None => target_header(attempt.provider.id(), attempt.provider_model_id),
                },
            };
            let answered_by = answered_by();
            // Each attempt's spans tell how many came before it (`http.request.resend_count`).
            crate::telemetry::record::with_current(|record| record.count_attempt());
            let result = match limit {
                Some(limit) => tokio::time::timeout(limit, op(attempt))
                    .await
                    .unwrap_or(Err(CallError::Timeout(limit))),
                None => op(attempt).await,
            };
            match result {
                Ok(value) => {
                    let load = match (plan, target, started) {
                        (Plan::Routed(model), Some(target), Some(started)) => {
                            target.breaker.success();
                            target.load.observe(started.elapsed());
                            target.answered.fetch_add(1, Relaxed);
                            Some((Arc::clone(model), index))
                        }
                        _ => None,
                    };
                    return Ok(Served {
                        value,
                        answered_by,
                        guard: CallGuard {
                            _permit: permit,
                            load,
                        },
                    });
                }
                Err(error) => {
                    drop(permit);
                    let retriable = failure::is_retriable(&error);
                    if let Some(target) = target {
                        target.load.finish();
                        if retriable {
                            target.failed.fetch_add(1, Relaxed);
                            target.breaker.failure();
                        } else {
                            target.breaker.success();
                        }
                    }
                    if !retriable {
                        return Err(error.into());
                    }
                    tracing::warn!(
                        target = %answered_by.target(),
                        "provider call failed (retriable): {error}"
                    );
                    last = Some(error.into());
                }
            }
        }
    }

    /// The next target's index, or `None` when none is left for this pass.
    fn choose(&self, plan: &Plan<'_>, tried: u32, first: bool) -> Option<usize> {
        match plan {
            Plan::Single { .. } => (tried == 0).then_some(0),
            Plan::Routed(model) => {
                balance::choose(model.route.strategy, &model.targets, tried, first)
            }
        }
    }

    fn attempt<'a>(
        &'a self,
        plan: &Plan<'a>,
        index: usize,
    ) -> (Attempt<'a>, Option<&'a ProviderRoute>, Option<&'a Target>) {
        match *plan {
            Plan::Single {
                provider,
                route,
                provider_model_id,
                metadata,
            } => (
                Attempt {
                    provider,
                    provider_model_id,
                    metadata,
                    policy: route.map(|r| &r.policy),
                },
                route,
                None,
            ),
            Plan::Routed(model) => {
                let target = &model.targets[index];
                let route = &self.providers[target.provider];
                (
                    Attempt {
                        provider: &route.provider,
                        provider_model_id: &target.provider_model_id,
                        metadata: &model.metadata,
                        policy: Some(&route.policy),
                    },
                    Some(route),
                    Some(target),
                )
            }
        }
    }

    fn no_target(&self, plan: &Plan<'_>) -> RoutingError {
        match plan {
            Plan::Routed(model) => RoutingError::NoTarget {
                model: model.route.model_id.clone(),
                probe_in: model
                    .targets
                    .iter()
                    .map(|t| t.breaker.probe_in())
                    .min()
                    .unwrap_or_default(),
            },
            // A single target is always tried: unreachable, answered as a busy provider.
            Plan::Single { provider, .. } => RoutingError::Call(CallError::Unavailable(format!(
                "provider {} could not be tried",
                provider.id()
            ))),
        }
    }
}

/// `<provider_id>/<provider_model_id>` as a header value, built with one allocation.
fn target_header(provider_id: &str, provider_model_id: &str) -> HeaderValue {
    let mut text = String::with_capacity(provider_id.len() + 1 + provider_model_id.len());
    text.push_str(provider_id);
    text.push('/');
    text.push_str(provider_model_id);
    HeaderValue::from_maybe_shared(bytes::Bytes::from(text))
        .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// The time one attempt may take before it counts as failed: until the answer (an answer
/// call) or the first event (a stream), and within the total timeout.
fn attempt_timeout(
    kind: CallKind,
    policy: Option<&ProviderPolicy>,
    plan: &Plan<'_>,
) -> Option<Duration> {
    let policy = policy?;
    let first = match (kind, plan) {
        (CallKind::Stream, Plan::Routed(model)) => model
            .route
            .first_event_timeout
            .or(policy.first_byte_timeout),
        _ => policy.first_byte_timeout,
    };
    match (first, policy.total_timeout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `stream` ended with a timeout error when an item takes longer than `idle` or the stream
/// outlives `deadline`.
fn bounded<I: Send + 'static>(
    stream: ItemStream<I>,
    idle: Option<Duration>,
    deadline: Option<Instant>,
) -> ItemStream<I> {
    Box::pin(futures::stream::unfold(
        Some(stream),
        move |state| async move {
            let mut stream = state?;
            let now = Instant::now();
            let left = deadline.map(|d| d.saturating_duration_since(now));
            let wait = match (idle, left) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).unwrap_or(Duration::MAX),
            };
            match tokio::time::timeout(wait, stream.next()).await {
                Ok(Some(item)) => Some((item, Some(stream))),
                Ok(None) => None,
                Err(_) => Some((Err(CallError::Timeout(wait)), None)),
            }
        },
    ))
}
