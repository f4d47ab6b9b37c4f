//! One file per API: inference (`/v1/chat/completions`, `/v1/completions`,
//! `/v1/embeddings`), the chat-completion history (`GET /v1/chat/completions...`), models (`/v1/models`), prompts (`/v1/prompts`), responses (`/v1/responses`), Anthropic's messages (`/v1/messages`) and the operational routes (health, version,
//! providers, inspect).

pub mod history;
pub mod inference;
pub mod messages;
pub mod messages_native;
pub mod meta;
pub mod models;
pub mod prompts;
pub mod responses;
