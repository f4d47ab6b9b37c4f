//! Reading the model lists the family's upstreams answer, and the URLs they are asked at.
//!
//! Most types answer OpenAI's `GET {base_url}/models` (`{"data": [{"id": ...}]}`); the rest
//! have their own listing, which OGX 1.5.0 reads with their SDKs (see [`Listing`]):
//! Together's bare array, Anthropic's paged `GET /v1/models`, Databricks' serving endpoints
//! and TEI's `GET /info`. A listing that does not have the expected shape is a 502 naming the
//! URL; an entry without a string id is skipped.

use ogx_provider_sdk::{ProviderError, Value};

use crate::family::Listing;

/// Most pages of Anthropic's model list followed before stopping (1000 per page: far more
/// models than Anthropic serves; a bound against a `has_more` that never ends).
pub const ANTHROPIC_MAX_PAGES: usize = 20;

/// Models per page asked of Anthropic's `GET /v1/models` (its maximum).
pub const ANTHROPIC_PAGE_SIZE: u32 = 1000;

fn malformed(url: &str, what: &str) -> ProviderError {
    ProviderError::BadGateway(format!("{url} answered a model list without {what}"))
}

fn ids_of(entries: &[Value], field: &str) -> Vec<String> {
    entries
        .iter()
        .filter_map(|entry| entry.get(field)?.as_str().map(str::to_string))
        .collect()
}

/// The server root of an OpenAI-compatible base URL: `/v1` and trailing slashes removed
/// (OGX's `_root_url`, used for TEI's `/info`).
pub fn server_root(base_url: &str) -> &str {
    let trimmed = base_url.trim_end_matches('/');
    trimmed
        .strip_suffix("/v1")
        .unwrap_or(trimmed)
        .trim_end_matches('/')
}

/// The URL of the first request of a listing, for a base URL without a trailing slash.
pub fn first_url(listing: Listing, base_url: &str) -> String {
    match listing {
        Listing::OpenAi | Listing::BareList => format!("{base_url}/models"),
        Listing::Anthropic => format!("{base_url}/models?limit={ANTHROPIC_PAGE_SIZE}"),
        // OGX strips `/serving-endpoints` to get the workspace host.
        Listing::DatabricksEndpoints => format!(
            "{}/api/2.0/serving-endpoints",
            base_url
                .strip_suffix("/serving-endpoints")
                .unwrap_or(base_url)
        ),
        Listing::TeiInfo => format!("{}/info", server_root(base_url)),
        Listing::Oci => oci_models_url(base_url),
    }
}

/// OCI's `ListModels` URL for an inference base URL: `/actions/v1` becomes `/models`, and the
/// inference host `inference.generativeai.<region>...` the management host
/// `generativeai.<region>...` (a moved endpoint keeps its host). The compartment and filters
/// are added by [`oci_models_query`].
pub fn oci_models_url(base_url: &str) -> String {
    let root = base_url
        .strip_suffix("/actions/v1")
        .unwrap_or(base_url)
        .replacen("://inference.generativeai.", "://generativeai.", 1);
    format!("{root}/models")
}

/// The query OGX's `list_models` call sends: the compartment, active text-generation and
/// text-embedding models.
pub fn oci_models_query(compartment_id: &str) -> String {
    let mut encoded = String::new();
    for byte in compartment_id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!(
        "compartmentId={encoded}&capability=TEXT_GENERATION&capability=TEXT_EMBEDDINGS&lifecycleState=ACTIVE"
    )
}

/// One page of a listing, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The model ids on this page.
    pub ids: Vec<String>,
    /// The upstream's entries, in the same order, where it has any (passthrough reads their
    /// `custom_metadata`); empty for listings without entry objects.
    pub entries: Vec<Value>,
    /// Anthropic: the `after_id` of the next page, when `has_more`.
    pub next_after: Option<String>,
}

/// Reads one answer of `listing` fetched from `url`.
pub fn read_page(listing: Listing, url: &str, answer: &Value) -> Result<Page, ProviderError> {
    let mut page = Page {
        ids: Vec::new(),
        entries: Vec::new(),
        next_after: None,
    };
    match listing {
        Listing::OpenAi => {
            let data = answer
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(url, "a `data` array"))?;
            page.entries = data
                .iter()
                .filter(|e| e.get("id").is_some_and(Value::is_string))
                .cloned()
                .collect();
            page.ids = ids_of(data, "id");
        }
        Listing::BareList => {
            // Together answers a bare array; accept an OpenAI list too.
            let data = answer
                .as_array()
                .or_else(|| answer.get("data").and_then(Value::as_array))
                .ok_or_else(|| malformed(url, "a JSON array"))?;
            page.ids = ids_of(data, "id");
        }
        Listing::Anthropic => {
            let data = answer
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(url, "a `data` array"))?;
            page.ids = ids_of(data, "id");
            if answer.get("has_more").and_then(Value::as_bool) == Some(true) {
                page.next_after = answer
                    .get("last_id")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
        }
        Listing::DatabricksEndpoints => {
            // Databricks leaves `endpoints` out when there are none.
            match answer.get("endpoints") {
                None | Some(Value::Null) if answer.is_object() => {}
                Some(Value::Array(endpoints)) => page.ids = ids_of(endpoints, "name"),
                _ => return Err(malformed(url, "an `endpoints` array")),
            }
        }
        Listing::TeiInfo => {
            let id = answer
                .get("model_id")
                .and_then(Value::as_str)
                .ok_or_else(|| malformed(url, "a `model_id`"))?;
            page.ids.push(id.to_string());
        }
        Listing::Oci => {
            let items = answer
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| malformed(url, "an `items` array"))?;
            for item in items {
                let set = |key: &str| item.get(key).is_some_and(|v| !v.is_null());
                let capable = |name: &str| {
                    item.get("capabilities")
                        .and_then(Value::as_array)
                        .is_some_and(|caps| caps.iter().any(|c| c == name))
                };
                if set("timeDeprecated")
                    || set("timeOnDemandRetired")
                    || !capable("CHAT")
                    || capable("FINE_TUNE")
                {
                    continue;
                }
                let Some(name) = item.get("displayName").and_then(Value::as_str) else {
                    continue;
                };
                if !page.ids.iter().any(|id| id == name) {
                    page.ids.push(name.to_string());
                }
            }
        }
    }
    Ok(page)
}

/// The URL of Anthropic's next page after `after_id`.
pub fn anthropic_next_url(base_url: &str, after_id: &str) -> String {
    let mut encoded = String::new();
    for byte in after_id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!(
        "{}&after_id={encoded}",
        first_url(Listing::Anthropic, base_url)
    )
}

/// `ids` followed by the `extra` ids not already in it (NVIDIA's rerank models; OGX keeps
/// the first occurrence).
pub fn merged(mut ids: Vec<String>, extra: &[String]) -> Vec<String> {
    for id in extra {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    ids
}

#[cfg(test)]
mod tests {

    #[test]
    fn oci_lists_active_chat_models_by_display_name_on_the_management_host() {
        assert_eq!(
            first_url(
                Listing::Oci,
                "https://inference.generativeai.us-chicago-1.oci.oraclecloud.com/20231130/actions/v1"
            ),
            "https://generativeai.us-chicago-1.oci.oraclecloud.com/20231130/models"
        );
        assert_eq!(
            oci_models_query("ocid1.compartment.oc1..a b"),
            "compartmentId=ocid1.compartment.oc1..a%20b&capability=TEXT_GENERATION&capability=TEXT_EMBEDDINGS&lifecycleState=ACTIVE"
        );
        let answer = serde_json::json!({"items": [
            {"displayName": "meta.llama-3.3-70b-instruct", "capabilities": ["CHAT"]},
            {"displayName": "meta.llama-3.3-70b-instruct", "capabilities": ["CHAT"]},
            {"displayName": "cohere.embed-v4.0", "capabilities": ["TEXT_EMBEDDINGS"]},
            {"displayName": "old", "capabilities": ["CHAT"], "timeDeprecated": "2025-01-01T00:00:00Z"},
            {"displayName": "ft", "capabilities": ["CHAT", "FINE_TUNE"]},
            {"displayName": "xai.grok-4", "capabilities": ["CHAT"], "timeOnDemandRetired": null}
        ]});
        let page = read_page(Listing::Oci, "u", &answer).unwrap();
        assert_eq!(page.ids, vec!["meta.llama-3.3-70b-instruct", "xai.grok-4"]);
        assert!(read_page(Listing::Oci, "u", &serde_json::json!({})).is_err());
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn urls_per_listing() {
        let cases = [
            (Listing::OpenAi, "http://h/v1", "http://h/v1/models"),
            (
                Listing::BareList,
                "https://api.together.xyz/v1",
                "https://api.together.xyz/v1/models",
            ),
            (
                Listing::Anthropic,
                "https://api.anthropic.com/v1",
                "https://api.anthropic.com/v1/models?limit=1000",
            ),
            (
                Listing::DatabricksEndpoints,
                "https://w.cloud.databricks.com/serving-endpoints",
                "https://w.cloud.databricks.com/api/2.0/serving-endpoints",
            ),
            (
                Listing::DatabricksEndpoints,
                "https://w.cloud.databricks.com",
                "https://w.cloud.databricks.com/api/2.0/serving-endpoints",
            ),
            (
                Listing::TeiInfo,
                "http://tei:8080/v1",
                "http://tei:8080/info",
            ),
            (Listing::TeiInfo, "http://tei:8080", "http://tei:8080/info"),
        ];
        for (listing, base, want) in cases {
            assert_eq!(first_url(listing, base), want, "{listing:?}");
        }
        assert_eq!(
            anthropic_next_url("http://a/v1", "claude 3/x"),
            "http://a/v1/models?limit=1000&after_id=claude%203%2Fx"
        );
        assert_eq!(server_root("http://tei:8080/v1/"), "http://tei:8080");
    }

    #[test]
    fn pages_are_read_per_listing() {
        let page = read_page(
            Listing::OpenAi,
            "u",
            &json!({"data": [{"id": "a"}, {"x": 1}, {"id": "b"}]}),
        )
        .unwrap();
        assert_eq!(page.ids, ["a", "b"]);
        assert_eq!(page.entries.len(), 2);
        let page = read_page(
            Listing::BareList,
            "u",
            &json!([{"id": "t1", "type": "chat"}, {"id": "t2"}]),
        )
        .unwrap();
        assert_eq!(page.ids, ["t1", "t2"]);
        let page = read_page(
            Listing::Anthropic,
            "u",
            &json!({"data": [{"id": "c1", "type": "model"}], "has_more": true, "last_id": "c1"}),
        )
        .unwrap();
        assert_eq!(
            (page.ids, page.next_after),
            (vec!["c1".to_string()], Some("c1".to_string()))
        );
        let page = read_page(
            Listing::Anthropic,
            "u",
            &json!({"data": [], "has_more": false, "last_id": null}),
        )
        .unwrap();
        assert_eq!(page.next_after, None);
        let page = read_page(Listing::DatabricksEndpoints, "u", &json!({"endpoints": [{"name": "databricks-meta-llama"}, {"name": "databricks-gte-large-en"}]})).unwrap();
        assert_eq!(
            page.ids,
            ["databricks-meta-llama", "databricks-gte-large-en"]
        );
        let page = read_page(Listing::DatabricksEndpoints, "u", &json!({})).unwrap();
        assert!(page.ids.is_empty());
        let page = read_page(
            Listing::TeiInfo,
            "u",
            &json!({"model_id": "BAAI/bge-small-en-v1.5", "max_input_length": 512}),
        )
        .unwrap();
        assert_eq!(page.ids, ["BAAI/bge-small-en-v1.5"]);
    }

    #[test]
    fn malformed_listings_name_the_url() {
        let cases = [
            (Listing::OpenAi, json!([])),
            (Listing::BareList, json!({"models": []})),
            (Listing::Anthropic, json!({"models": []})),
            (Listing::DatabricksEndpoints, json!({"endpoints": "x"})),
            (Listing::TeiInfo, json!({"status": "ok"})),
        ];
        for (listing, answer) in cases {
            let err = read_page(listing, "http://up/x", &answer).unwrap_err();
            assert!(matches!(err, ProviderError::BadGateway(_)), "{listing:?}");
            assert!(
                err.message()
                    .starts_with("http://up/x answered a model list without"),
                "{}",
                err.message()
            );
        }
    }

    #[test]
    fn rerank_ids_are_appended_once() {
        let ids = merged(vec!["a".into(), "r1".into()], &["r1".into(), "r2".into()]);
        assert_eq!(ids, ["a", "r1", "r2"]);
    }
}
