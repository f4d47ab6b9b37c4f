//! What the host persists, on the backends of `storage.backends`: the key-value store
//! ([`kv`]) behind the model registry ([`registry_store`]), the Prompts API's prompts
//! ([`prompts`]) and the plugins' data; the chat-completion history ([`inference_store`]),
//! served by `GET /v1/chat/completions[/{id}[/messages]]`; and the Responses API's stored
//! responses ([`responses_store`]).
//!
//! **Backends.** [`backends::StorageBackends`] opens each backend a store names, once:
//! `kv_sqlite`/`sql_sqlite` ([`sqlite`]) and `kv_postgres`/`sql_postgres` ([`postgres`]), both
//! as a [`sql::SqlDatabase`]. A store asks for "the SQL backend by name" and writes its SQL
//! once, against [`sql::SqlSession`], with `$n` placeholders and [`sql::SqlValue`]s; the
//! differences between the engines (column types, schema introspection) are
//! [`sql::Dialect`]'s methods. Each table ([`completion_table::SqlTable`],
//! [`responses_store::SqlResponseTable`]) runs its `create_table` in
//! [`sql::SqlDatabase::write`] (with [`paging`]'s `seq` column and page reader, as both are
//! listed by creation time), then reads and writes on a blocking thread. Several `ogx`
//! processes on one PostgreSQL database share the registry, the prompts, the plugins' data,
//! the history and the stored responses (scale-out).
//!
//! Gateway keys and their counters ([`gateway_store`]) live on any of these backends or on a
//! `kv_redis` server ([`redis`]), shared by every replica that names it.
//!
//! **Limits.** `kv_redis` serves only `gateway_keys.store`; for the other stores `kv_redis` and
//! `kv_mongodb` backends are refused at start-up. Conversations
//! and connectors are not served yet.
//!
//! **Failures.** A database that cannot be opened, created or reached stops start-up (the
//! message names the config key; never a password); a history write that fails later is
//! retried; reads fail with a typed error the server maps to HTTP.

pub mod backends;
pub mod completion_table;
pub mod gateway_store;
pub mod inference_store;
pub mod kv;
pub mod owner;
pub mod paging;
pub mod postgres;
pub mod prompts;
pub mod prompts_table;
pub mod redis;
pub mod registry_store;
pub mod responses_store;
pub mod sql;
pub mod sqlite;

#[cfg(test)]
mod postgres_tests;
