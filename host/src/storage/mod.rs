//! What the host persists: the SQLite key-value store ([`kv`]), the model registry
//! ([`registry_store`]) and the Prompts API's prompts ([`prompts`]).

pub mod kv;
pub mod prompts;
pub mod registry_store;
