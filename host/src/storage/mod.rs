//! What the host persists, on the backends of `storage.backends`: the SQLite key-value store
//! ([`kv`]) behind the model registry ([`registry_store`]), the Prompts API's prompts
//! ([`prompts`]) and the plugins' data; and the chat-completion history ([`inference_store`],
//! on [`sqlite`]), served by `GET /v1/chat/completions[/{id}[/messages]]`; and the Responses
//! API's stored responses ([`responses_store`]).
//!
//! **Limits.** Only SQLite backends (`kv_sqlite`, `sql_sqlite`) are supported so far; another
//! backend type for a store ogx uses stops start-up with a message saying so. Conversations
//! and connectors are not served yet.
//!
//! **Failures.** A database that cannot be opened or created stops start-up (the caller names
//! the config key); a write that fails later is logged and the server keeps serving; reads fail
//! with a typed error the server maps to HTTP.

pub mod inference_store;
pub mod kv;
pub mod prompts;
pub mod registry_store;
pub mod responses_store;
pub mod sqlite;
