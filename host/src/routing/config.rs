//! The `routing:` block of the run config (ogx's own; OGX 1.5.0 has no such key):
//!
//! ```yaml
//! routing:
//!   defaults: {retries: 2, backoff: 0.1}      # every provider (these are the built-in defaults)
//!   providers:
//!     bedrock-east: {max_concurrent: 20, max_queued: 100, timeouts: {first_byte: 20}}
//!   models:
//!     claude:
//!       strategy: fallback                    # fallback | weighted | least_latency
//!       targets:
//!       - {provider_id: bedrock-east, provider_model_id: us.anthropic.claude-sonnet-4-5-v1:0}
//!       - {provider_id: anthropic, provider_model_id: claude-sonnet-4-5}
//! ```
//!
//! `defaults` and each `providers.<id>` take the same [`ProviderPolicy`] keys; a provider's
//! keys win over `defaults`, which win over the built-in values. `models.<id>` names the id
//! clients send and its targets ([`ModelRoute`]). Every failure names the key and the fix; an
//! unknown key is a warning, as everywhere in the config.

use crate::config::fields::{Invalid, Section, type_name};
use crate::config::network::seconds;
use serde_json::Value;
use std::time::Duration;

/// Retries of a failed provider call when the config says nothing.
pub const DEFAULT_RETRIES: u32 = 2;
/// The first retry's backoff (doubled each retry, with full jitter).
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
/// The longest backoff between two retries.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The longest upstream `Retry-After` ogx waits out; a longer one is answered to the client.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// The share of a provider's recent requests that may be retries.
pub const DEFAULT_RETRY_BUDGET: f64 = 0.2;
/// How long a request waits for a slot when a provider's `max_concurrent` is reached.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(10);
/// Consecutive failures that take a target out (circuit breaker).
pub const DEFAULT_BREAKER_FAILURES: u32 = 5;
/// How long a target stays out before one request probes it.
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(30);
/// The most targets one model may name.
pub const MAX_TARGETS: usize = 16;

const ROUTING_KEYS: &[&str] = &["defaults", "providers", "models"];
const POLICY_KEYS: &[&str] = &[
    "retries",
    "backoff",
    "max_backoff",
    "max_retry_after",
    "retry_budget",
    "max_concurrent",
    "max_queued",
    "queue_timeout",
    "timeouts",
];
const TIMEOUT_KEYS: &[&str] = &["connect", "first_byte", "idle", "total"];
const MODEL_KEYS: &[&str] = &[
    "model_type",
    "strategy",
    "retries",
    "first_event_timeout",
    "breaker",
    "targets",
];
const TARGET_KEYS: &[&str] = &["provider_id", "provider_model_id", "weight"];
const BREAKER_KEYS: &[&str] = &["failures", "cooldown"];

/// The whole block; empty when the config has none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingConfig {
    pub defaults: PolicyKeys,
    /// `providers.<id>`, in config order.
    pub providers: Vec<(String, PolicyKeys)>,
    /// `models.<id>`, in config order.
    pub models: Vec<ModelRoute>,
}

/// The keys one `defaults` or `providers.<id>` mapping sets (`None`: not set there).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyKeys {
    pub retries: Option<u32>,
    pub backoff: Option<Duration>,
    pub max_backoff: Option<Duration>,
    pub max_retry_after: Option<Duration>,
    pub retry_budget: Option<f64>,
    pub max_concurrent: Option<u32>,
    pub max_queued: Option<u32>,
    pub queue_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub first_byte_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub total_timeout: Option<Duration>,
}

/// What one provider's calls run under, every key resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderPolicy {
    /// Retries after the first attempt; 0 turns retrying off.
    pub retries: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
    pub max_retry_after: Duration,
    pub retry_budget: f64,
    /// `None`: no limit.
    pub max_concurrent: Option<u32>,
    /// Requests that may wait for a slot; more are refused at once (429).
    pub max_queued: u32,
    pub queue_timeout: Duration,
    /// Applied to the provider's outbound HTTP client (wins over `network.timeout`).
    pub connect_timeout: Option<Duration>,
    /// Until a non-streamed answer, or a stream's first event.
    pub first_byte_timeout: Option<Duration>,
    /// Between two events of a stream.
    pub idle_timeout: Option<Duration>,
    /// The whole call, a stream included.
    pub total_timeout: Option<Duration>,
}

impl PolicyKeys {
    /// These keys over `base`.
    fn over(&self, base: &PolicyKeys) -> PolicyKeys {
        PolicyKeys {
            retries: self.retries.or(base.retries),
            backoff: self.backoff.or(base.backoff),
            max_backoff: self.max_backoff.or(base.max_backoff),
            max_retry_after: self.max_retry_after.or(base.max_retry_after),
            retry_budget: self.retry_budget.or(base.retry_budget),
            max_concurrent: self.max_concurrent.or(base.max_concurrent),
            max_queued: self.max_queued.or(base.max_queued),
            queue_timeout: self.queue_timeout.or(base.queue_timeout),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            first_byte_timeout: self.first_byte_timeout.or(base.first_byte_timeout),
            idle_timeout: self.idle_timeout.or(base.idle_timeout),
            total_timeout: self.total_timeout.or(base.total_timeout),
        }
    }

    /// The keys with the built-in defaults filled in.
    fn resolve(&self) -> ProviderPolicy {
        ProviderPolicy {
            retries: self.retries.unwrap_or(DEFAULT_RETRIES),
            backoff: self.backoff.unwrap_or(DEFAULT_BACKOFF),
            max_backoff: self.max_backoff.unwrap_or(DEFAULT_MAX_BACKOFF),
            max_retry_after: self.max_retry_after.unwrap_or(DEFAULT_MAX_RETRY_AFTER),
            retry_budget: self.retry_budget.unwrap_or(DEFAULT_RETRY_BUDGET),
            max_concurrent: self.max_concurrent,
            // With a limit and no queue bound, as many may wait as may run.
            max_queued: self.max_queued.or(self.max_concurrent).unwrap_or(u32::MAX),
            queue_timeout: self.queue_timeout.unwrap_or(DEFAULT_QUEUE_TIMEOUT),
            connect_timeout: self.connect_timeout,
            first_byte_timeout: self.first_byte_timeout,
            idle_timeout: self.idle_timeout,
            total_timeout: self.total_timeout,
        }
    }
}

impl RoutingConfig {
    /// The policy of provider `provider_id`: its keys over `defaults` over the built-ins.
    pub fn policy(&self, provider_id: &str) -> ProviderPolicy {
        match self.providers.iter().find(|(id, _)| id == provider_id) {
            Some((_, keys)) => keys.over(&self.defaults).resolve(),
            None => self.defaults.resolve(),
        }
    }
}

/// How a model spreads its requests over its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The first healthy target in order; the next on failure.
    Fallback,
    /// A target drawn by weight; the others in order on failure.
    Weighted,
    /// The target with the lowest peak-EWMA latency times (outstanding requests + 1).
    LeastLatency,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Fallback => "fallback",
            Strategy::Weighted => "weighted",
            Strategy::LeastLatency => "least_latency",
        }
    }
}

/// `routing.models.<id>`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRoute {
    /// The id clients send.
    pub model_id: String,
    pub model_type: String,
    pub strategy: Strategy,
    /// Overrides the providers' `retries` for this model.
    pub retries: Option<u32>,
    /// A stream whose first event takes longer goes to the next target.
    pub first_event_timeout: Option<Duration>,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub targets: Vec<TargetEntry>,
}

/// One target of a routed model.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetEntry {
    pub provider_id: String,
    pub provider_model_id: String,
    /// For `weighted`; 1 when not given.
    pub weight: u32,
}

/// Reads `routing:`; `provider_ids` are the enabled inference providers (targets and
/// `providers.<id>` must name one of them).
pub fn parse(
    value: Option<&Value>,
    provider_ids: &[&str],
    warnings: &mut Vec<String>,
) -> Result<RoutingConfig, Invalid> {
    let Some(root) = Section::of(value, "routing")? else {
        return Ok(RoutingConfig::default());
    };
    root.warn_unknown(ROUTING_KEYS, warnings);
    let mut config = RoutingConfig::default();
    if let Some(defaults) = Section::of(root.get("defaults"), "routing.defaults")? {
        config.defaults = policy_keys(&defaults, warnings)?;
    }
    let providers_key = root.key("providers");
    if let Some(providers) = Section::of(root.get("providers"), &providers_key)? {
        for (id, value) in providers.map {
            let key = providers.key(id);
            known_provider(&key, id, provider_ids)?;
            if let Some(section) = Section::of(Some(value), &key)? {
                config
                    .providers
                    .push((id.clone(), policy_keys(&section, warnings)?));
            }
        }
    }
    let models_key = root.key("models");
    if let Some(models) = Section::of(root.get("models"), &models_key)? {
        for (id, value) in models.map {
            let key = models.key(id);
            let section = Section::of(Some(value), &key)?.ok_or_else(|| {
                Invalid::new(
                    &key,
                    "is empty",
                    "Give the model `targets:` (a list of provider_id and provider_model_id).",
                )
            })?;
            config
                .models
                .push(model_route(id, &section, provider_ids, warnings)?);
        }
    }
    Ok(config)
}

fn known_provider(key: &str, id: &str, provider_ids: &[&str]) -> Result<(), Invalid> {
    if provider_ids.contains(&id) {
        return Ok(());
    }
    Err(Invalid::new(
        key,
        format!("'{id}' is not an enabled inference provider"),
        format!(
            "Use the provider_id of an entry under providers.inference ({}).",
            provider_ids.join(", ")
        ),
    ))
}

fn duration(s: &Section<'_>, key: &str) -> Result<Option<Duration>, Invalid> {
    seconds(s, key).map_err(|mut invalid| {
        invalid.fix = format!("Write seconds, e.g. `{key}: 0.5`.");
        invalid
    })
}

fn policy_keys(s: &Section<'_>, warnings: &mut Vec<String>) -> Result<PolicyKeys, Invalid> {
    s.warn_unknown(POLICY_KEYS, warnings);
    let mut keys = PolicyKeys {
        retries: s.u32_at_least("retries", 0)?,
        backoff: duration(s, "backoff")?,
        max_backoff: duration(s, "max_backoff")?,
        max_retry_after: duration(s, "max_retry_after")?,
        retry_budget: share(s, "retry_budget")?,
        max_concurrent: s.u32_at_least("max_concurrent", 1)?,
        max_queued: s.u32_at_least("max_queued", 0)?,
        queue_timeout: duration(s, "queue_timeout")?,
        ..PolicyKeys::default()
    };
    let timeouts_key = s.key("timeouts");
    if let Some(t) = Section::of(s.get("timeouts"), &timeouts_key)? {
        t.warn_unknown(TIMEOUT_KEYS, warnings);
        keys.connect_timeout = duration(&t, "connect")?;
        keys.first_byte_timeout = duration(&t, "first_byte")?;
        keys.idle_timeout = duration(&t, "idle")?;
        keys.total_timeout = duration(&t, "total")?;
    }
    Ok(keys)
}

/// A number from 0 to 1.
fn share(s: &Section<'_>, key: &str) -> Result<Option<f64>, Invalid> {
    match s.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) if n.as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)) => {
            Ok(n.as_f64())
        }
        Some(other) => Err(Invalid::new(
            s.key(key),
            format!("expected a share from 0 to 1, found {other}"),
            format!("Write a fraction, e.g. `{key}: 0.2` (a fifth of recent requests)."),
        )),
    }
}

fn model_route(
    model_id: &str,
    s: &Section<'_>,
    provider_ids: &[&str],
    warnings: &mut Vec<String>,
) -> Result<ModelRoute, Invalid> {
    s.warn_unknown(MODEL_KEYS, warnings);
    let strategy = match s.string("strategy")?.as_deref() {
        None | Some("fallback") => Strategy::Fallback,
        Some("weighted") => Strategy::Weighted,
        Some("least_latency") => Strategy::LeastLatency,
        Some(other) => {
            return Err(Invalid::new(
                s.key("strategy"),
                format!("unknown strategy '{other}'"),
                "Use fallback, weighted or least_latency.",
            ));
        }
    };
    let model_type = s.string("model_type")?.unwrap_or_else(|| "llm".into());
    if !["llm", "embedding"].contains(&model_type.as_str()) {
        return Err(Invalid::new(
            s.key("model_type"),
            format!("unknown model_type '{model_type}'"),
            "Use llm or embedding.",
        ));
    }
    let mut route = ModelRoute {
        model_id: model_id.to_string(),
        model_type,
        strategy,
        retries: s.u32_at_least("retries", 0)?,
        first_event_timeout: duration(s, "first_event_timeout")?,
        breaker_failures: DEFAULT_BREAKER_FAILURES,
        breaker_cooldown: DEFAULT_BREAKER_COOLDOWN,
        targets: Vec::new(),
    };
    let breaker_key = s.key("breaker");
    if let Some(b) = Section::of(s.get("breaker"), &breaker_key)? {
        b.warn_unknown(BREAKER_KEYS, warnings);
        if let Some(failures) = b.u32_at_least("failures", 1)? {
            route.breaker_failures = failures;
        }
        if let Some(cooldown) = duration(&b, "cooldown")? {
            route.breaker_cooldown = cooldown;
        }
    }
    let targets_key = s.key("targets");
    let items = match s.get("targets") {
        Some(Value::Array(items)) if !items.is_empty() && items.len() <= MAX_TARGETS => items,
        Some(Value::Array(items)) if !items.is_empty() => {
            return Err(Invalid::new(
                &targets_key,
                format!("has {} targets, more than {MAX_TARGETS}", items.len()),
                format!("Name at most {MAX_TARGETS} targets."),
            ));
        }
        other => {
            return Err(Invalid::new(
                &targets_key,
                match other {
                    None | Some(Value::Array(_)) => "is required and must not be empty".into(),
                    Some(v) => format!("expected a list of targets, found {}", type_name(v)),
                },
                "List the targets as `- {provider_id: ..., provider_model_id: ...}` entries.",
            ));
        }
    };
    for (i, item) in items.iter().enumerate() {
        let key = format!("{targets_key}[{i}]");
        let t = Section::of(Some(item), &key)?.ok_or_else(|| {
            Invalid::new(
                &key,
                "is null",
                "Give the target provider_id and provider_model_id.",
            )
        })?;
        t.warn_unknown(TARGET_KEYS, warnings);
        let provider_id = t.required_string(
            "provider_id",
            "Name the inference provider that serves this target.",
        )?;
        known_provider(&t.key("provider_id"), &provider_id, provider_ids)?;
        let provider_model_id = t.required_string(
            "provider_model_id",
            "Give the model's id at that provider, e.g. `provider_model_id: gpt-4o-mini`.",
        )?;
        let weight = t.u32_at_least("weight", 0)?.unwrap_or(1);
        route.targets.push(TargetEntry {
            provider_id,
            provider_model_id,
            weight,
        });
    }
    if strategy == Strategy::Weighted && route.targets.iter().all(|t| t.weight == 0) {
        return Err(Invalid::new(
            &targets_key,
            "every target has weight 0",
            "Give at least one target a weight above 0.",
        ));
    }
    Ok(route)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<(RoutingConfig, Vec<String>), String> {
        let mut warnings = Vec::new();
        parse(Some(&value), &["east", "west"], &mut warnings)
            .map(|c| (c, warnings))
            .map_err(|e| format!("{}: {} ({})", e.key, e.problem, e.fix))
    }

    #[test]
    fn provider_keys_win_over_defaults_which_win_over_built_ins() {
        let (config, warnings) = read(json!({
            "defaults": {"retries": 1, "backoff": 0.05, "max_concurrent": 4},
            "providers": {"east": {"retries": 0, "timeouts": {"first_byte": 2, "idle": 1.5}}},
        }))
        .unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        let east = config.policy("east");
        assert_eq!(east.retries, 0);
        assert_eq!(east.backoff, Duration::from_millis(50));
        assert_eq!(east.max_concurrent, Some(4));
        assert_eq!(east.max_queued, 4);
        assert_eq!(east.first_byte_timeout, Some(Duration::from_secs(2)));
        assert_eq!(east.idle_timeout, Some(Duration::from_millis(1500)));
        let west = config.policy("west");
        assert_eq!(west.retries, 1);
        assert_eq!(west.first_byte_timeout, None);
        let none = RoutingConfig::default().policy("east");
        assert_eq!(
            (none.retries, none.backoff, none.max_concurrent),
            (DEFAULT_RETRIES, DEFAULT_BACKOFF, None)
        );
    }

    #[test]
    fn models_name_their_targets() {
        let (config, _) = read(json!({"models": {"claude": {
            "strategy": "weighted",
            "breaker": {"failures": 2, "cooldown": 0.5},
            "targets": [
                {"provider_id": "east", "provider_model_id": "m1", "weight": 3},
                {"provider_id": "west", "provider_model_id": "m2"},
            ],
        }}}))
        .unwrap();
        let model = &config.models[0];
        assert_eq!(model.model_id, "claude");
        assert_eq!(model.strategy, Strategy::Weighted);
        assert_eq!(model.breaker_failures, 2);
        assert_eq!(model.targets[0].weight, 3);
        assert_eq!(model.targets[1].weight, 1);
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let target = json!({"provider_id": "east", "provider_model_id": "m"});
        let cases = [
            (
                json!({"providers": {"north": {}}}),
                "routing.providers.north: 'north' is not an enabled inference provider",
            ),
            (
                json!({"defaults": {"retries": -1}}),
                "routing.defaults.retries: -1 is out of range",
            ),
            (
                json!({"defaults": {"retry_budget": 2}}),
                "routing.defaults.retry_budget: expected a share from 0 to 1",
            ),
            (
                json!({"providers": {"east": {"timeouts": {"idle": "soon"}}}}),
                "routing.providers.east.timeouts.idle: expected a positive number of seconds",
            ),
            (
                json!({"models": {"m": {"targets": []}}}),
                "routing.models.m.targets: is required and must not be empty",
            ),
            (
                json!({"models": {"m": {"strategy": "random", "targets": [target]}}}),
                "routing.models.m.strategy: unknown strategy 'random'",
            ),
            (
                json!({"models": {"m": {"targets": [{"provider_id": "north", "provider_model_id": "x"}]}}}),
                "routing.models.m.targets[0].provider_id: 'north' is not an enabled",
            ),
            (
                json!({"models": {"m": {"targets": [{"provider_id": "east"}]}}}),
                "routing.models.m.targets[0].provider_model_id: is required but missing",
            ),
            (
                json!({"models": {"m": {"strategy": "weighted", "targets": [{"provider_id": "east", "provider_model_id": "x", "weight": 0}]}}}),
                "routing.models.m.targets: every target has weight 0",
            ),
        ];
        for (value, expected) in cases {
            let error = read(value).unwrap_err();
            assert!(error.starts_with(expected), "{error}");
        }
        let (_, warnings) = read(json!({"defaults": {"retrys": 1}})).unwrap();
        assert_eq!(
            warnings,
            ["unknown key 'routing.defaults.retrys' (ignored)"]
        );
    }
}
