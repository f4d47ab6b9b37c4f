//! The event sequences of [`MessageBuilder`] for text, thinking, parallel tool calls, stop
//! reasons and usage.

use super::*;

fn chunk(delta: Value, finish: Option<&str>) -> String {
    json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string()
}

fn run(builder: &mut MessageBuilder, chunks: &[String]) -> (Vec<Event>, Value) {
    let mut events = builder.start();
    for c in chunks {
        events.extend(builder.chunk(c));
    }
    let (end, message) = builder.finish();
    events.extend(end);
    (events, message)
}

fn builder(thinking: bool) -> MessageBuilder {
    MessageBuilder::new("msg_1", "vllm/m", thinking, vec![",".into()])
}

fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.data["delta"]["type"].as_str() {
            Some(delta) if e.kind == "content_block_delta" => delta.to_string(),
            _ => e.kind.clone(),
        })
        .collect()
}

#[test]
fn text_follows_anthropics_event_order_and_usage_excludes_cached_tokens() {
    let usage = json!({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 2,
        "prompt_tokens_details": {"cached_tokens": 20}}});
    let (events, message) = run(
        &mut builder(false),
        &[
            chunk(json!({"role": "assistant", "content": "Hel"}), None),
            chunk(json!({"content": "lo"}), None),
            chunk(json!({}), Some("stop")),
            usage.to_string(),
        ],
    );
    assert_eq!(
        kinds(&events),
        [
            "message_start",
            "ping",
            "content_block_start",
            "text_delta",
            "text_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    for event in &events {
        assert_eq!(event.data["type"], event.kind);
    }
    assert_eq!(events[0].data["message"]["model"], "vllm/m");
    assert_eq!(events[0].data["message"]["content"], json!([]));
    assert_eq!(
        message["content"],
        json!([{"type": "text", "text": "Hello"}])
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 10, "output_tokens": 2,
               "cache_creation_input_tokens": 0, "cache_read_input_tokens": 20})
    );
    assert_eq!(events[6].data["usage"], message["usage"]);
}

#[test]
fn reasoning_is_a_signed_thinking_block_only_when_thinking_was_asked() {
    let chunks = [
        chunk(json!({"reasoning_content": "Let me "}), None),
        chunk(
            json!({"reasoning": "think.",
            "reasoning_details": [{"type": "reasoning.text", "signature": "sig-1"}]}),
            None,
        ),
        chunk(json!({"content": "42"}), Some("stop")),
    ];
    let (events, message) = run(&mut builder(true), &chunks);
    assert_eq!(
        kinds(&events)[2..8],
        [
            "content_block_start",
            "thinking_delta",
            "thinking_delta",
            "signature_delta",
            "content_block_stop",
            "content_block_start"
        ]
    );
    assert_eq!(
        events[2].data["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        message["content"],
        json!([{"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"},
               {"type": "text", "text": "42"}])
    );
    let (_, message) = run(&mut builder(false), &chunks);
    assert_eq!(message["content"], json!([{"type": "text", "text": "42"}]));
}

#[test]
fn interleaved_parallel_calls_become_blocks_one_after_another() {
    let call = |index: u64, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut function = json!({"arguments": args});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut call = json!({"index": index, "type": "function", "function": function});
        if let Some(id) = id {
            call["id"] = json!(id);
        }
        chunk(json!({"tool_calls": [call]}), None)
    };
    let (events, message) = run(
        &mut builder(false),
        &[
            chunk(json!({"content": "Checking."}), None),
            call(0, Some("call_a"), Some("weather"), ""),
            call(1, Some("call_b"), Some("time"), "{\"tz\":"),
            call(0, None, None, "{\"city\":"),
            call(1, None, None, "\"UTC\"}"),
            call(0, None, None, "\"Paris\"}"),
            chunk(json!({}), Some("tool_calls")),
        ],
    );
    let blocks: Vec<(String, u64)> = events
        .iter()
        .filter(|e| e.kind.starts_with("content_block"))
        .map(|e| {
            (
                kinds(std::slice::from_ref(e))[0].clone(),
                e.data["index"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("content_block_start", 0),
        ("text_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("input_json_delta", 1),
        ("input_json_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("input_json_delta", 2),
        ("content_block_stop", 2),
    ];
    let expected: Vec<(String, u64)> = expected.iter().map(|(k, i)| (k.to_string(), *i)).collect();
    assert_eq!(blocks, expected);
    assert_eq!(
        message["content"][1],
        json!({"type": "tool_use", "id": "call_a", "name": "weather", "input": {"city": "Paris"}})
    );
    assert_eq!(
        message["content"][2],
        json!({"type": "tool_use", "id": "call_b", "name": "time", "input": {"tz": "UTC"}})
    );
    assert_eq!(message["stop_reason"], "tool_use");
}

#[test]
fn a_whole_completion_gives_the_same_message() {
    let completion = json!({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Sure.", "reasoning_content": "hmm",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}}]}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 7}});
    let mut builder = builder(true);
    builder.start();
    builder.completion(completion.as_object().unwrap());
    let (_, message) = builder.finish();
    assert_eq!(
        message["content"],
        json!([
            {"type": "thinking", "thinking": "hmm", "signature": ""},
            {"type": "text", "text": "Sure."},
            {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "c2", "name": "g", "input": {}},
        ])
    );
    assert_eq!(message["usage"]["output_tokens"], 7);
}

#[test]
fn stop_reasons_follow_the_finish_reason_and_the_matched_stop_sequence() {
    let finish = |reason: &str, extra: Value| {
        let mut choice = json!({"index": 0, "delta": {"content": "1"}, "finish_reason": reason});
        if let (Value::Object(choice), Value::Object(extra)) = (&mut choice, extra) {
            choice.extend(extra);
        }
        let (_, message) = run(
            &mut builder(false),
            &[json!({"choices": [choice]}).to_string()],
        );
        (
            message["stop_reason"].clone(),
            message["stop_sequence"].clone(),
        )
    };
    assert_eq!(
        finish("length", json!({})),
        (json!("max_tokens"), Value::Null)
    );
    assert_eq!(finish("stop", json!({})), (json!("end_turn"), Value::Null));
    assert_eq!(
        finish("content_filter", json!({})),
        (json!("end_turn"), Value::Null)
    );
    assert_eq!(
        finish("stop", json!({"stop_reason": ","})),
        (json!("stop_sequence"), json!(","))
    );
    assert_eq!(
        finish("stop", json!({"matched_stop": ","})),
        (json!("stop_sequence"), json!(","))
    );
    // A stop token id, or a string the request did not ask for, is no stop sequence.
    assert_eq!(
        finish("stop", json!({"stop_reason": 2})),
        (json!("end_turn"), Value::Null)
    );
}
