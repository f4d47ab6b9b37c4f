//! What the host persists: the SQLite key-value store ([`kv`]).

pub mod kv;
