//! The chat request made for Anthropic requests: every mapped field, the message shapes, and
//! the refusals.

use super::*;
use crate::messages::request::Purpose;

fn request(body: Value) -> MessagesRequest {
    MessagesRequest::parse(body.to_string().as_bytes(), Purpose::Create).unwrap()
}

fn chat(body: Value) -> Result<Value, String> {
    chat_request(&request(body), "upstream", "remote::vllm", false).map_err(|e| e.to_string())
}

const WEATHER: &str = "get_weather";

#[test]
fn the_chat_request_carries_every_mapped_field() {
    let body = json!({
        "model": "vllm/m", "max_tokens": 300, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
        "stop_sequences": ["END"], "metadata": {"user_id": "user-7"}, "service_tier": "standard_only",
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Be kind."}],
        "tools": [
            {"name": WEATHER, "description": "Weather.", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search"},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        "context_management": {"edits": []},
        "messages": [{"role": "user", "content": "hi"}],
    });
    let sent = chat_request(&request(body.clone()), "upstream", "remote::vllm", true).unwrap();
    assert_eq!(
        sent,
        json!({
            "model": "upstream",
            "messages": [{"role": "system", "content": "Be brief.\nBe kind."},
                         {"role": "user", "content": "hi"}],
            "max_tokens": 300, "temperature": 0.5, "top_p": 0.9, "top_k": 40,
            "stop": ["END"], "user": "user-7", "service_tier": "default",
            "reasoning_effort": "medium",
            "tools": [{"type": "function", "function": {"name": WEATHER,
                "parameters": {"type": "object"}, "description": "Weather."}}],
            "tool_choice": "required", "parallel_tool_calls": false,
            "stream": true, "stream_options": {"include_usage": true},
        })
    );
    let openai = chat_request(&request(body), "gpt", "remote::openai", false).unwrap();
    assert_eq!(openai["max_completion_tokens"], 300);
    assert!(openai.get("max_tokens").is_none() && openai.get("stream_options").is_none());
}

#[test]
fn thinking_budgets_and_output_effort_map_to_efforts() {
    let effort =
        |thinking: Value| reasoning_effort(json!({"thinking": thinking}).as_object().unwrap());
    assert_eq!(
        effort(json!({"type": "enabled", "budget_tokens": 1024})),
        Some("low")
    );
    assert_eq!(
        effort(json!({"type": "enabled", "budget_tokens": 2048})),
        Some("low")
    );
    assert_eq!(
        effort(json!({"type": "enabled", "budget_tokens": 8192})),
        Some("medium")
    );
    assert_eq!(
        effort(json!({"type": "enabled", "budget_tokens": 31999})),
        Some("high")
    );
    assert_eq!(effort(json!({"type": "enabled"})), Some("medium"));
    assert_eq!(effort(json!({"type": "adaptive"})), None);
    assert_eq!(effort(json!({"type": "disabled"})), None);
    let claude_code = json!({"thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "max"}});
    assert_eq!(
        reasoning_effort(claude_code.as_object().unwrap()),
        Some("high")
    );
    let low = json!({"thinking": {"type": "enabled", "budget_tokens": 30000},
        "output_config": {"effort": "low"}});
    assert_eq!(reasoning_effort(low.as_object().unwrap()), Some("low"));
}

#[test]
fn tool_choices_map_to_chat_choices() {
    let choice = |tool_choice: Value| {
        chat(
            json!({"model": "m", "max_tokens": 5, "tool_choice": tool_choice,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap()["tool_choice"]
            .clone()
    };
    assert_eq!(choice(json!({"type": "auto"})), json!("auto"));
    assert_eq!(choice(json!("any")), json!("required"));
    assert_eq!(choice(json!({"type": "none"})), json!("none"));
    assert_eq!(
        choice(json!({"type": "tool", "name": "f"})),
        json!({"type": "function", "function": {"name": "f"}})
    );
}

#[test]
fn a_tool_round_trip_becomes_calls_then_tool_messages_before_the_user_text() {
    let sent = chat(json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hm", "signature": "s"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": WEATHER, "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": WEATHER, "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Here."},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "content": [
                {"type": "text", "text": "no data"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/b.png"}}]}]},
    ]}))
    .unwrap();
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": WEATHER, "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "toolu_2", "type": "function", "function": {"name": WEATHER, "arguments": "{\"city\":\"Rome\"}"}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no data"},
            {"role": "user", "content": [
                {"type": "text", "text": "Here."},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}}]},
        ])
    );
}

#[test]
fn documents_become_files_or_text() {
    let sent = chat(json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [
        {"type": "document", "title": "r.pdf", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
        {"type": "document", "source": {"type": "content", "content": [{"type": "text", "text": "inner"}]}},
    ]}]}))
    .unwrap();
    assert_eq!(
        sent["messages"][0]["content"],
        json!([
            {"type": "file", "file": {"filename": "r.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
            {"type": "text", "text": "plain"},
            {"type": "text", "text": "inner"},
        ])
    );
}

#[test]
fn what_cannot_be_translated_is_refused_by_its_path() {
    let user = |content: Value| {
        json!({"model": "m", "max_tokens": 5,
        "messages": [{"role": "user", "content": content}]})
    };
    let cases = [
        (
            user(json!([{"type": "audio", "data": "x"}])),
            "messages.0.content.0.type: 'audio' is not a content block ogx can translate",
        ),
        (
            user(json!([{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}])),
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_9",
        ),
        (
            user(json!([{"type": "image", "source": {"type": "file", "file_id": "f"}}])),
            "messages.0.content.0.source.type: must be base64 or url",
        ),
        (
            user(
                json!([{"type": "document", "source": {"type": "url", "url": "https://x/y.pdf"}}]),
            ),
            "messages.0.content.0.source.type: must be base64, text or content",
        ),
        (
            user(json!([{"type": "text"}])),
            "messages.0.content.0.text: Field required",
        ),
    ];
    for (body, expected) in cases {
        let got = chat(body).unwrap_err();
        assert!(got.starts_with(expected), "{got}");
    }
}
