//! `kv`: the plugins' key-value store. The store itself is [`crate::storage::kv`], shared with
//! the host's own stores; plugins reach it only through a [`KvNamespace`] named after their
//! provider id, in the plugin table ([`KvStore::open`]), so they never see the registry or
//! the prompts.

pub use crate::storage::kv::{
    BUSY_TIMEOUT, KvError, KvNamespace, KvStore, MAX_KEY_BYTES, MAX_LISTED_KEYS,
    MAX_NAMESPACE_BYTES, MAX_VALUE_BYTES,
};
