//! Rate limits and budgets of one key, on the shared counters of the [`GatewayStore`].
//!
//! **How exact.** Counters are fixed UTC windows (minute, day, calendar month) named after the
//! key and the window's start, so every replica counts into the same counter. A request limit
//! is exact across replicas: [`admit`] adds 1 atomically and refuses when the new total is over
//! the limit, so no more than the limit ever pass per window, however many replicas race.
//! Token limits and budgets are counted from the answer, after it: [`admit`] refuses once the
//! window's total has reached the limit, so requests already running when it is reached may
//! overshoot it by their own usage (at most the tokens of the requests in flight).
//!
//! **Failures.** A store that cannot be reached refuses the request (503): limits fail closed.

use super::key::{KeyRecord, Period};
use super::usage::Usage;
use super::{GatewayKeyError, now_seconds};
use crate::calendar::{civil_from_days, days_from_civil};
use crate::config::gateway_keys::Price;
use crate::storage::gateway_store::GatewayStore;

/// Spend is counted in billionths of the price table's currency unit.
pub const NANOS_PER_UNIT: f64 = 1e9;

/// The start and the end (exclusive) of the window of `period` that holds `now`; `Total` is
/// one window from 0 that never ends.
pub fn window(period: Period, now: u64) -> (u64, Option<u64>) {
    match period {
        Period::Minute => {
            let start = now - now % 60;
            (start, Some(start + 60))
        }
        Period::Day => {
            let start = now - now % 86_400;
            (start, Some(start + 86_400))
        }
        Period::Month => {
            let (year, month, _) = civil_from_days((now / 86_400) as i64);
            let start = days_from_civil(year, month, 1) as u64 * 86_400;
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            (
                start,
                Some(days_from_civil(next_year, next_month, 1) as u64 * 86_400),
            )
        }
        Period::Total => (0, None),
    }
}

/// The name of `key_id`'s `what` counter (`req`, `tok`, `spend`) for the window of `period`
/// holding `now`, and when it may be forgotten (its window's end plus a minute).
pub fn counter(key_id: &str, what: &str, period: Period, now: u64) -> (String, Option<u64>) {
    let (start, end) = window(period, now);
    let name = format!("{key_id}:{what}:{period:?}:{start}").to_lowercase();
    (name, end.map(|end| end + 60))
}

/// The name of one of `key_id`'s all-time totals.
pub fn total(key_id: &str, what: &str) -> String {
    format!("{key_id}:total:{what}")
}

/// The totals every key keeps, in the order the usage report reads them.
pub const TOTALS: [&str; 5] = [
    "requests",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "spend",
];

/// Lets a request of `record` through, or says which limit it is over. Reads the token and
/// budget windows, then counts the request in its request windows.
pub async fn admit(
    store: &GatewayStore,
    record: &KeyRecord,
    over_budget_status: u16,
) -> Result<(), GatewayKeyError> {
    let now = now_seconds();
    let limits = &record.settings.limits;
    let mut reads = Vec::new();
    for (limit, period, label) in [
        (
            limits.tokens_per_minute,
            Period::Minute,
            "tokens per minute",
        ),
        (limits.tokens_per_day, Period::Day, "tokens per day"),
    ] {
        if let Some(limit) = limit {
            reads.push((
                counter(&record.id, "tok", period, now).0,
                limit as i64,
                period,
                label,
            ));
        }
    }
    let budget = record.settings.budget;
    if let Some(budget) = budget {
        let nanos = (budget.amount * NANOS_PER_UNIT).round() as i64;
        reads.push((
            counter(&record.id, "spend", budget.period, now).0,
            nanos,
            budget.period,
            "budget",
        ));
    }
    let names: Vec<String> = reads.iter().map(|(name, ..)| name.clone()).collect();
    let values = store.counters(&names).await?;
    for ((_, limit, period, label), used) in reads.iter().zip(values) {
        if used < *limit {
            continue;
        }
        let retry_after = window(*period, now)
            .1
            .map(|end| end.saturating_sub(now).max(1));
        return Err(if *label == "budget" {
            let budget = budget.expect("a budget was read");
            GatewayKeyError::OverBudget {
                period: budget.period,
                amount: budget.amount,
                status: over_budget_status,
                retry_after,
            }
        } else {
            GatewayKeyError::RateLimited {
                limit: label,
                value: *limit as u64,
                retry_after: retry_after.unwrap_or(1),
            }
        });
    }
    let mut additions = Vec::new();
    let mut checks = Vec::new();
    for (limit, period, label) in [
        (
            limits.requests_per_minute,
            Period::Minute,
            "requests per minute",
        ),
        (limits.requests_per_day, Period::Day, "requests per day"),
    ] {
        if let Some(limit) = limit {
            let (name, forget) = counter(&record.id, "req", period, now);
            additions.push((name, 1, forget));
            checks.push((limit, period, label));
        }
    }
    let counts = store.add(additions).await?;
    for ((limit, period, label), count) in checks.into_iter().zip(counts) {
        if count > limit as i64 {
            let end = window(period, now).1.unwrap_or(now + 1);
            return Err(GatewayKeyError::RateLimited {
                limit: label,
                value: limit,
                retry_after: end.saturating_sub(now).max(1),
            });
        }
    }
    Ok(())
}

/// What `usage` of `model` costs, in nanos, by the first price whose pattern matches `model`
/// (no price: nothing).
pub fn cost_nanos(prices: &[(String, Price)], model: &str, usage: &Usage) -> i64 {
    let Some((_, price)) = prices
        .iter()
        .find(|(pattern, _)| super::key::pattern_matches(pattern, model))
    else {
        return 0;
    };
    let uncached = usage.input_tokens.saturating_sub(usage.cached_tokens) as f64;
    let per_million = uncached * price.input
        + usage.cached_tokens as f64 * price.cached_input
        + usage.output_tokens as f64 * price.output;
    (per_million * NANOS_PER_UNIT / 1e6).round() as i64
}

/// Counts a served request's usage: the totals, and the token and spend windows of its limits.
pub async fn charge(
    store: &GatewayStore,
    record: &KeyRecord,
    usage: &Usage,
    spend_nanos: i64,
) -> Result<(), GatewayKeyError> {
    let now = now_seconds();
    let id = &record.id;
    let tokens = (usage.input_tokens + usage.output_tokens) as i64;
    let mut additions: Vec<(String, i64, Option<u64>)> = TOTALS
        .iter()
        .zip([
            1,
            usage.input_tokens as i64,
            usage.output_tokens as i64,
            usage.cached_tokens as i64,
            spend_nanos,
        ])
        .map(|(what, amount)| (total(id, what), amount, None))
        .collect();
    let limits = &record.settings.limits;
    for (limit, period) in [
        (limits.tokens_per_minute, Period::Minute),
        (limits.tokens_per_day, Period::Day),
    ] {
        if limit.is_some() {
            let (name, forget) = counter(id, "tok", period, now);
            additions.push((name, tokens, forget));
        }
    }
    if let Some(budget) = record.settings.budget {
        let (name, forget) = counter(id, "spend", budget.period, now);
        additions.push((name, spend_nanos, forget));
    }
    store.add(additions).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_utc_minutes_days_and_calendar_months() {
        // 2024-02-29T13:45:30Z
        let now = 1_709_214_330;
        assert_eq!(
            window(Period::Minute, now),
            (1_709_214_300, Some(1_709_214_360))
        );
        assert_eq!(
            window(Period::Day, now),
            (1_709_164_800, Some(1_709_251_200))
        );
        // 2024-02-01 .. 2024-03-01
        assert_eq!(
            window(Period::Month, now),
            (1_706_745_600, Some(1_709_251_200))
        );
        // December rolls into the next year: 2023-12-15 -> 2023-12-01 .. 2024-01-01.
        assert_eq!(
            window(Period::Month, 1_702_598_400),
            (1_701_388_800, Some(1_704_067_200))
        );
        assert_eq!(window(Period::Total, now), (0, None));
        let (name, forget) = counter("gk_1", "req", Period::Minute, now);
        assert_eq!(name, "gk_1:req:minute:1709214300");
        assert_eq!(forget, Some(1_709_214_420));
    }

    #[test]
    fn cost_follows_the_first_matching_price() {
        let prices = vec![
            (
                "vllm/cheap".to_string(),
                Price {
                    input: 1.0,
                    output: 2.0,
                    cached_input: 0.5,
                },
            ),
            (
                "vllm/*".to_string(),
                Price {
                    input: 10.0,
                    output: 20.0,
                    cached_input: 10.0,
                },
            ),
        ];
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 500,
            cached_tokens: 200,
        };
        // 800 × 1 + 200 × 0.5 + 500 × 2 = 1900 per million → 0.0019 units.
        assert_eq!(cost_nanos(&prices, "vllm/cheap", &usage), 1_900_000);
        assert_eq!(cost_nanos(&prices, "vllm/other", &usage), 20_000_000);
        assert_eq!(cost_nanos(&prices, "openai/x", &usage), 0);
    }
}
