//! A gateway key as ogx stores it ([`KeyRecord`]), the settings an admin gives it
//! ([`KeySettings`]), its secret ([`new_secret`], [`secret_hash`]) and its model patterns.
//!
//! A secret is [`GATEWAY_KEY_PREFIX`] and 64 hex digits of 32 random bytes from the operating
//! system; only its SHA-256 is stored (a high-entropy secret needs no slow hash) with a hint
//! (prefix and last four digits) for people to recognise it. Settings that do not parse are a
//! [`GatewayKeyError::Invalid`] naming the field.

use super::GatewayKeyError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// How every gateway key's secret starts: ogx tells them from other credentials by it.
pub const GATEWAY_KEY_PREFIX: &str = "sk-ogx-";

/// A stored key (its secret's hash, never its secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub id: String,
    pub secret_hash: String,
    /// `sk-ogx-` and the secret's last four characters.
    pub secret_hint: String,
    pub created_at: u64,
    #[serde(flatten)]
    pub settings: KeySettings,
}

/// What an admin sets on a key (create, and every field of an update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// Who the key belongs to: the principal of the requests it authenticates.
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Model ids or `*` patterns it may call; empty or absent: every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// Access attributes its requests carry (OGX's `roles`, `teams`, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<Budget>,
    /// Unix seconds after which the key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    #[serde(default)]
    pub disabled: bool,
}

/// Rate limits; `None`: unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_day: Option<u64>,
    /// Input and output tokens together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_day: Option<u64>,
}

/// A spend budget per period, in the price table's currency.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub amount: f64,
    #[serde(default = "Period::default_budget")]
    pub period: Period,
}

/// A window counters reset on (UTC; `total` never resets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Minute,
    Day,
    Month,
    Total,
}

impl Period {
    fn default_budget() -> Period {
        Period::Month
    }

    /// The adjective used in messages ("daily budget").
    pub fn adjective(self) -> &'static str {
        match self {
            Period::Minute => "per-minute",
            Period::Day => "daily",
            Period::Month => "monthly",
            Period::Total => "total",
        }
    }
}

impl KeySettings {
    /// Settings from an admin's JSON body, checked; `owner` is required.
    pub fn from_json(body: &Value) -> Result<Self, GatewayKeyError> {
        let settings: KeySettings = serde_json::from_value(body.clone())
            .map_err(|e| GatewayKeyError::Invalid(format!("invalid key settings: {e}")))?;
        settings.check()?;
        Ok(settings)
    }

    /// These settings with the fields of `patch` (a JSON object of some fields) replaced.
    pub fn patched(&self, patch: &Value) -> Result<Self, GatewayKeyError> {
        let Value::Object(fields) = patch else {
            return Err(GatewayKeyError::Invalid(
                "the body must be a JSON object of the fields to change".into(),
            ));
        };
        let mut merged = serde_json::to_value(self).unwrap_or_else(|_| json!({}));
        if let Value::Object(current) = &mut merged {
            for (name, value) in fields {
                current.insert(name.clone(), value.clone());
            }
        }
        Self::from_json(&merged)
    }

    fn check(&self) -> Result<(), GatewayKeyError> {
        if self.owner.trim().is_empty() {
            return Err(GatewayKeyError::Invalid(
                "`owner` is required: the principal the key's requests run as".into(),
            ));
        }
        if let Some(budget) = self.budget
            && !(budget.amount.is_finite() && budget.amount >= 0.0)
        {
            return Err(GatewayKeyError::Invalid(
                "`budget.amount` must be a number ≥ 0".into(),
            ));
        }
        if self.budget.is_some_and(|b| b.period == Period::Minute) {
            return Err(GatewayKeyError::Invalid(
                "`budget.period` must be day, month or total".into(),
            ));
        }
        Ok(())
    }

    /// Whether the key may call `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty()
            || self
                .models
                .iter()
                .any(|pattern| pattern_matches(pattern, model))
    }
}

impl KeyRecord {
    /// The key as the admin API shows it: everything but the hash.
    pub fn public_view(&self) -> Value {
        let mut view = serde_json::to_value(&self.settings).unwrap_or_else(|_| json!({}));
        if let Value::Object(fields) = &mut view {
            fields.insert("id".into(), json!(self.id));
            fields.insert("object".into(), json!("gateway_key"));
            fields.insert("secret_hint".into(), json!(self.secret_hint));
            fields.insert("created_at".into(), json!(self.created_at));
        }
        view
    }
}

/// `*` matches any run of characters (slashes included); everything else matches itself.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// A new secret: the prefix and 64 hex digits of operating-system randomness.
pub fn new_secret() -> Result<String, GatewayKeyError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        GatewayKeyError::Store(format!("the operating system gave no randomness: {e}"))
    })?;
    Ok(format!("{GATEWAY_KEY_PREFIX}{}", hex::encode(bytes)))
}

/// A new key id: `gk_` and 24 hex digits.
pub fn new_key_id() -> String {
    format!("gk_{}", &uuid::Uuid::new_v4().simple().to_string()[..24])
}

/// The stored form of a secret: SHA-256, hex.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What people see of a secret: its prefix and last four characters.
pub fn secret_hint(secret: &str) -> String {
    format!(
        "{GATEWAY_KEY_PREFIX}...{}",
        &secret[secret.len().saturating_sub(4)..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_patterns() {
        for (pattern, model, allowed) in [
            ("vllm/m", "vllm/m", true),
            ("vllm/m", "vllm/m2", false),
            ("vllm/*", "vllm/org/m", true),
            ("vllm/*", "openai/m", false),
            ("*", "anything", true),
            ("*-mini", "openai/gpt-4o-mini", true),
            ("*-mini", "openai/gpt-4o", false),
            ("a*b*c", "a-x-b-y-c", true),
            ("a*b*c", "a-x-c-b", false),
            ("ab*ba", "aba", false),
        ] {
            assert_eq!(
                pattern_matches(pattern, model),
                allowed,
                "{pattern} {model}"
            );
        }
        let open = KeySettings::default();
        assert!(open.allows_model("any/model"), "no patterns: every model");
    }

    #[test]
    fn secrets_are_prefixed_random_and_stored_as_sha256() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(a.starts_with(GATEWAY_KEY_PREFIX) && a.len() == GATEWAY_KEY_PREFIX.len() + 64);
        assert_ne!(a, b);
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(secret_hint(&a), format!("sk-ogx-...{}", &a[a.len() - 4..]));
    }

    #[test]
    fn settings_are_checked_and_patched() {
        let settings = KeySettings::from_json(
            &json!({"owner": "team-a", "limits": {"requests_per_minute": 5}}),
        )
        .unwrap();
        assert_eq!(settings.limits.requests_per_minute, Some(5));
        let patched = settings.patched(&json!({"disabled": true})).unwrap();
        assert!(patched.disabled && patched.owner == "team-a");
        for (body, part) in [
            (json!({}), "owner"),
            (json!({"owner": "a", "limit": {}}), "unknown field `limit`"),
            (
                json!({"owner": "a", "budget": {"amount": -1}}),
                "budget.amount",
            ),
            (
                json!({"owner": "a", "budget": {"amount": 1, "period": "week"}}),
                "week",
            ),
        ] {
            let error = KeySettings::from_json(&body).unwrap_err().to_string();
            assert!(error.contains(part), "{body}: {error}");
        }
    }
}
