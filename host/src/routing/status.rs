//! What `/v1/providers` shows of routing: per provider, its policy, its retry and limit
//! counters, and the state of every routed target it serves. Read from atomics; never blocks
//! a request.

use super::limit::Limit;
use super::{RoutedModel, Routing};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

impl Routing {
    /// What `/v1/providers` shows of provider `provider_id`'s routing: its retry policy and
    /// counts, its limit, and the state of every routed target it serves.
    pub fn provider_status(&self, provider_id: &str) -> Option<Value> {
        let (index, route) = self
            .providers
            .iter()
            .enumerate()
            .find(|(_, p)| p.provider.id() == provider_id)?;
        let mut targets: Vec<Value> = Vec::new();
        let mut models: Vec<(&String, &Arc<RoutedModel>)> = self.models.iter().collect();
        models.sort_by_key(|(id, _)| *id);
        for (model_id, model) in models {
            for target in model.targets.iter().filter(|t| t.provider == index) {
                targets.push(json!({
                    "model": model_id,
                    "provider_model_id": target.provider_model_id,
                    "strategy": model.route.strategy.as_str(),
                    "weight": target.weight,
                    "state": target.breaker.state(),
                    "consecutive_failures": target.breaker.consecutive_failures(),
                    "times_opened": target.breaker.times_opened(),
                    "outstanding": target.load.outstanding(),
                    "latency_ms": (target.load.latency_us() / 1000.0 * 10.0).round() / 10.0,
                    "answered": target.answered.load(Relaxed),
                    "failed": target.failed.load(Relaxed),
                }));
            }
        }
        let policy = &route.policy;
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
        Some(json!({
            "retries": policy.retries,
            "retried": route.retried.load(Relaxed),
            "retry_budget": policy.retry_budget,
            "retries_refused_by_budget": route.budget.exhausted(),
            "timeouts": {
                "connect": secs(policy.connect_timeout),
                "first_byte": secs(policy.first_byte_timeout),
                "idle": secs(policy.idle_timeout),
                "total": secs(policy.total_timeout),
            },
            "limit": route.limit.as_ref().map(Limit::status),
            "targets": targets,
        }))
    }
}
