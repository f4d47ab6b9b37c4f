//! The resource registry persisted in the `metadata` store, in OGX's key format.
//!
//! Each resource is one JSON value under `distributions:registry:v10::{type}:{identifier}`
//! (OGX's `KEY_FORMAT`, `src/ogx/core/store/registry.py`), so the keys read like OGX's own.
//! The store knows nothing about what a resource means: the [`crate::registry`] decides what
//! to keep, and this module only reads, writes and removes. A value that is not JSON is
//! skipped with a warning at load time, as OGX skips values it cannot parse.

use super::kv::{KvError, KvNamespace};
use serde_json::Value;

/// OGX's key prefix and version.
const KEY_PREFIX: &str = "distributions:registry:v10::";

/// The registry's view of its namespace of the host kv store.
#[derive(Debug, Clone)]
pub struct RegistryStore {
    kv: KvNamespace,
}

impl RegistryStore {
    pub fn new(kv: KvNamespace) -> Self {
        RegistryStore { kv }
    }

    /// The key of one resource.
    pub fn key(kind: &str, identifier: &str) -> String {
        format!("{KEY_PREFIX}{kind}:{identifier}")
    }

    /// Every stored resource of `kind`, in key order.
    pub async fn load(&self, kind: &str) -> Result<Vec<Value>, KvError> {
        let prefix = format!("{KEY_PREFIX}{kind}:");
        let mut values = Vec::new();
        for key in self.kv.list_keys(&prefix).await? {
            let Some(bytes) = self.kv.get(&key).await? else {
                continue;
            };
            match serde_json::from_slice(&bytes) {
                Ok(value) => values.push(value),
                Err(error) => {
                    tracing::warn!("skipping the unreadable registry entry {key}: {error}")
                }
            }
        }
        Ok(values)
    }

    /// Stores `value` as the resource `kind`/`identifier`, replacing what was there.
    pub async fn put(&self, kind: &str, identifier: &str, value: &Value) -> Result<(), KvError> {
        self.kv
            .set(&Self::key(kind, identifier), value.to_string().into_bytes())
            .await
    }

    /// Removes the resource; removing a missing one is not an error.
    pub async fn delete(&self, kind: &str, identifier: &str) -> Result<(), KvError> {
        self.kv.delete(&Self::key(kind, identifier)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::kv::KvStore;
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn resources_round_trip_through_the_file_under_ogx_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let open = || {
            RegistryStore::new(
                Arc::new(KvStore::open_host(Some(&path)).unwrap()).namespace("registry"),
            )
        };
        let store = open();
        store
            .put("model", "vllm/a", &json!({"identifier": "vllm/a"}))
            .await
            .unwrap();
        store
            .put("model", "vllm/b", &json!({"identifier": "vllm/b"}))
            .await
            .unwrap();
        store
            .put("shield", "s", &json!({"identifier": "s"}))
            .await
            .unwrap();
        store.delete("model", "vllm/b").await.unwrap();
        drop(store);
        let store = open();
        assert_eq!(
            store.load("model").await.unwrap(),
            [json!({"identifier": "vllm/a"})]
        );
        assert_eq!(
            store.kv.list_keys("").await.unwrap(),
            [
                "distributions:registry:v10::model:vllm/a",
                "distributions:registry:v10::shield:s"
            ]
        );
    }

    #[tokio::test]
    async fn unreadable_values_are_skipped() {
        let kv = Arc::new(KvStore::open_host(None).unwrap()).namespace("registry");
        kv.set(&RegistryStore::key("model", "x"), b"not json".to_vec())
            .await
            .unwrap();
        let store = RegistryStore::new(kv);
        store
            .put("model", "y", &json!({"identifier": "y"}))
            .await
            .unwrap();
        assert_eq!(
            store.load("model").await.unwrap(),
            [json!({"identifier": "y"})]
        );
    }
}
