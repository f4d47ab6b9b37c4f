//! The stores of the stack core (`storage.stores`), on the backends of `storage.backends`.
//!
//! **Why.** OGX keeps state of its own next to the providers'; ogx keeps the part its clients
//! read back: the chat-completion history ([`inference_store`]), served by
//! `GET /v1/chat/completions[/{id}[/messages]]`.
//!
//! **Limits.** Only `sql_sqlite` backends are supported ([`sqlite`]); a `sql_postgres`
//! backend for the inference store stops start-up with a message saying so. The other stores
//! (conversations, responses, prompts, connectors) are not served yet.
//!
//! **Failures.** A database that cannot be opened or created stops start-up (the caller names
//! the config key); a write that fails later is logged and the server keeps serving; reads
//! fail with a typed error the server maps to HTTP.

pub mod inference_store;
pub mod sqlite;
