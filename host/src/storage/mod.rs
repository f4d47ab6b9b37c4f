//! What the host persists: the SQLite key-value store ([`kv`]) and the model registry
//! ([`registry_store`]).

pub mod kv;
pub mod registry_store;
