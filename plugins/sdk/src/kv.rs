//! A small persistent key-value store, kept by the host in the server's `metadata` store.
//!
//! Every provider id has its own namespace: two providers served by the same plugin never see
//! each other's keys. Keys and values have host-defined size limits ([`KvError::TooLarge`]).
//! In native tests the store is the [`crate::testing`] fake host's map.

use std::fmt;

use crate::__bindings::ogx::provider::kv as wit;
use crate::ProviderError;

/// Why a kv operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// The key or the value is larger than the host allows; the text gives the limit.
    TooLarge(String),
    /// The store could not be read or written; the text says why.
    Backend(String),
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::TooLarge(m) => write!(f, "kv entry too large: {m}"),
            KvError::Backend(m) => write!(f, "kv store failed: {m}"),
        }
    }
}

impl std::error::Error for KvError {}

/// A kv failure is the server's problem, not the client's: 500.
impl From<KvError> for ProviderError {
    fn from(err: KvError) -> Self {
        ProviderError::Internal(err.to_string())
    }
}

impl From<wit::KvError> for KvError {
    fn from(err: wit::KvError) -> Self {
        match err {
            wit::KvError::TooLarge(m) => KvError::TooLarge(m),
            wit::KvError::Backend(m) => KvError::Backend(m),
        }
    }
}

/// The value stored under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, KvError> {
    #[cfg(target_arch = "wasm32")]
    return Ok(wit::get(key)?);
    #[cfg(not(target_arch = "wasm32"))]
    Ok(crate::testing::kv_get(key))
}

/// Stores `value` under `key`, replacing what was there.
pub fn set(key: &str, value: &[u8]) -> Result<(), KvError> {
    #[cfg(target_arch = "wasm32")]
    return Ok(wit::set(key, value)?);
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::kv_set(key, value);
        Ok(())
    }
}

/// Removes `key`; removing a missing key is not an error.
pub fn delete(key: &str) -> Result<(), KvError> {
    #[cfg(target_arch = "wasm32")]
    return Ok(wit::delete(key)?);
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::kv_delete(key);
        Ok(())
    }
}

/// The keys that start with `prefix`, in ascending order.
pub fn list_keys(prefix: &str) -> Result<Vec<String>, KvError> {
    #[cfg(target_arch = "wasm32")]
    return Ok(wit::list_keys(prefix)?);
    #[cfg(not(target_arch = "wasm32"))]
    Ok(crate::testing::kv_list(prefix))
}
