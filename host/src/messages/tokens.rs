//! The answer of `POST /v1/messages/count_tokens` while no provider counts natively: an
//! estimate from the translated request, which the route marks as one with the
//! [`ESTIMATE_HEADER`] response header.
//!
//! The estimate is one token per [`CHARS_PER_TOKEN`] characters of the chat messages' text,
//! tool call arguments and tool definitions (names, descriptions, schemas as JSON), plus
//! [`TOKENS_PER_MESSAGE`] per message for its role and framing, plus [`TOKENS_PER_IMAGE`] per
//! image or file (whose base64 data says nothing about its token cost; Anthropic's cap for one
//! image is about 1,600). It is meant for budgeting (Claude Code uses it to decide when to
//! compact a conversation), not billing: real tokenizers differ by model by tens of percent.

use serde_json::Value;

/// The response header that says how the count was made.
pub const ESTIMATE_HEADER: &str = "x-ogx-token-count";
/// Its value for an estimate.
pub const ESTIMATE_VALUE: &str = "estimate";
/// Characters per token of English text and code for the common BPE tokenizers.
pub const CHARS_PER_TOKEN: usize = 4;
/// Tokens counted for each message's role and framing.
pub const TOKENS_PER_MESSAGE: usize = 4;
/// Tokens counted for each image or file.
pub const TOKENS_PER_IMAGE: usize = 1600;

/// The estimated input tokens of a chat request (its `messages` and `tools`).
pub fn estimate(chat: &Value) -> u64 {
    let mut chars = 0;
    let mut fixed = 0;
    let empty = Vec::new();
    let messages = chat["messages"].as_array().unwrap_or(&empty);
    for message in messages {
        fixed += TOKENS_PER_MESSAGE;
        match &message["content"] {
            Value::String(text) => chars += text.chars().count(),
            Value::Array(parts) => {
                for part in parts {
                    match part["text"].as_str() {
                        Some(text) => chars += text.chars().count(),
                        None => fixed += TOKENS_PER_IMAGE,
                    }
                }
            }
            _ => {}
        }
        for call in message["tool_calls"].as_array().unwrap_or(&empty) {
            chars += call["function"]["name"].as_str().map_or(0, str::len);
            chars += call["function"]["arguments"].as_str().map_or(0, str::len);
        }
    }
    for tool in chat["tools"].as_array().unwrap_or(&empty) {
        chars += tool["function"].to_string().chars().count();
    }
    (chars.div_ceil(CHARS_PER_TOKEN) + fixed) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_tools_and_images_are_counted() {
        let chat = json!({
            "messages": [
                {"role": "system", "content": "12345678"},
                {"role": "user", "content": [{"type": "text", "text": "abcd"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "ab", "arguments": "{}"}}]},
            ],
            "tools": [{"type": "function", "function": {"name": "f"}}],
        });
        // 8 + 4 + 4 + 12 characters → 7 tokens; 3 messages; one image.
        assert_eq!(
            estimate(&chat),
            7 + 3 * TOKENS_PER_MESSAGE as u64 + TOKENS_PER_IMAGE as u64
        );
        assert_eq!(estimate(&json!({"messages": []})), 0);
    }
}
