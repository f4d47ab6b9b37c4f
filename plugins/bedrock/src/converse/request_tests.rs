//! Tests of the chat → Converse request mapping.

use super::*;

fn no_fetch(url: &str) -> Result<(Option<String>, Vec<u8>), ProviderError> {
    Err(ProviderError::InvalidRequest(format!("no fetch of {url}")))
}

fn plan(request: Value, model: &str) -> Plan {
    build(&request, model, &ModelSettings::default(), &no_fetch).unwrap()
}

#[test]
fn system_merging_and_tool_round_trips() {
    let request = json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "user", "content": "Quickly."},
            {"role": "assistant", "content": null,
             "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "assistant", "content": "",
             "tool_calls": [{"id": "call.2", "type": "function", "function": {"name": "weather", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "tool", "tool_call_id": "call.2", "content": [{"type": "text", "text": ""}]},
            {"role": "user", "content": "   "},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "max_tokens": 100, "max_completion_tokens": 200, "temperature": 1.7, "top_p": 0.9, "stop": "END",
        "stream_options": {"include_usage": true},
    });
    let got = plan(request, "anthropic.claude-3-haiku-20240307-v1:0");
    assert!(got.include_usage);
    assert_eq!(got.json_tool, None);
    assert_eq!(
        got.body,
        json!({
            "system": [{"text": "Be brief."}, {"text": "Use tools."}],
            "messages": [
                {"role": "user", "content": [{"text": "Weather in Paris and Rome?"}, {"text": "Quickly."}]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "call_1", "name": "weather", "input": {"city": "Paris"}}},
                    {"toolUse": {"toolUseId": "call_2", "name": "weather", "input": {}}},
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_1", "content": [{"text": "sunny"}]}},
                    {"toolResult": {"toolUseId": "call_2", "content": []}},
                ]},
            ],
            "inferenceConfig": {"maxTokens": 200, "temperature": 1.0, "topP": 0.9, "stopSequences": ["END"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "weather", "description": "Weather", "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}}],
                "toolChoice": {"any": {}},
            },
        })
    );
}

#[test]
fn tool_choice_variants() {
    let base = |choice: Value, with_history: bool| {
        let mut messages = vec![json!({"role": "user", "content": "hi"})];
        if with_history {
            messages.push(json!({"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]}));
            messages.push(json!({"role": "tool", "tool_call_id": "c", "content": "r"}));
        }
        let mut request = json!({"messages": messages, "tools": [{"type": "function", "function": {"name": "f"}}]});
        if !choice.is_null() {
            request["tool_choice"] = choice;
        }
        plan(request, "m").body.get("toolConfig").cloned()
    };
    assert_eq!(base(Value::Null, false).unwrap().get("toolChoice"), None);
    assert_eq!(
        base(json!("auto"), false).unwrap()["toolChoice"],
        json!({"auto": {}})
    );
    assert_eq!(
        base(
            json!({"type": "function", "function": {"name": "f"}}),
            false
        )
        .unwrap()["toolChoice"],
        json!({"tool": {"name": "f"}})
    );
    assert_eq!(base(json!("none"), false), None);
    let kept = base(json!("none"), true).unwrap();
    assert_eq!(kept.get("toolChoice"), None);
    assert_eq!(kept["tools"][0]["toolSpec"]["name"], "f");
}

#[test]
fn tool_history_without_tools_gets_synthesised_specs() {
    let request = json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "function": {"name": "f", "arguments": "{}"}},
            {"id": "b", "function": {"name": "f", "arguments": "{}"}},
            {"id": "c", "function": {"name": "g", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "a", "content": "1"},
    ]});
    let config = &plan(request, "m").body["toolConfig"];
    assert_eq!(
        config["tools"],
        json!([
            {"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}},
            {"toolSpec": {"name": "g", "inputSchema": {"json": {"type": "object"}}}},
        ])
    );
}

#[test]
fn json_schema_output_is_a_forced_tool() {
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]});
    let request = json!({"messages": [{"role": "user", "content": "q"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer_shape", "schema": schema, "strict": true}}});
    let got = plan(request, "amazon.nova-pro-v1:0");
    assert_eq!(got.json_tool.as_deref(), Some("answer_shape"));
    assert_eq!(
        got.body["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "answer_shape"}})
    );
    assert_eq!(
        got.body["toolConfig"]["tools"][0]["toolSpec"]["inputSchema"]["json"],
        schema
    );
    let request = json!({"messages": [{"role": "user", "content": "q"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "bad name!"}},
        "tools": [{"type": "function", "function": {"name": "f"}}]});
    let got = plan(request, "m");
    assert_eq!(got.json_tool.as_deref(), Some(JSON_TOOL));
    assert_eq!(got.body["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(got.body["toolConfig"]["tools"].as_array().unwrap().len(), 2);
    let request = json!({"messages": [{"role": "user", "content": "q"}], "response_format": {"type": "text"}});
    assert_eq!(plan(request, "m").json_tool, None);
}

#[test]
fn reasoning_signatures_and_caching() {
    let request = json!({
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "long system", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": "a", "reasoning_content": "unsigned, dropped",
             "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "sig=="},
                                 {"type": "redacted_thinking", "data": "cmVk"},
                                 {"type": "thinking", "thinking": "no signature"}]},
            {"role": "user", "content": "more", "cache_control": {"type": "ephemeral"}},
        ],
        "reasoning_effort": "medium",
    });
    let got = plan(request, "us.anthropic.claude-sonnet-4-20250514-v1:0").body;
    assert_eq!(
        got["system"],
        json!([{"text": "long system"}, {"cachePoint": {"type": "default"}}])
    );
    assert_eq!(
        got["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "t", "signature": "sig=="}}},
            {"reasoningContent": {"redactedContent": "cmVk"}},
            {"text": "a"},
        ])
    );
    assert_eq!(
        got["messages"][2]["content"][1],
        json!({"cachePoint": {"type": "default"}})
    );
    assert_eq!(
        got["additionalModelRequestFields"],
        json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})
    );
}

#[test]
fn reasoning_effort_per_model_family() {
    let fields = |model: &str, effort: &str| {
        plan(
            json!({"messages": [{"role": "user", "content": "q"}], "reasoning_effort": effort}),
            model,
        )
        .body
        .get("additionalModelRequestFields")
        .cloned()
    };
    assert_eq!(
        fields("anthropic.claude-3-7-sonnet-20250219-v1:0", "high").unwrap()["thinking"]["budget_tokens"],
        4096
    );
    assert_eq!(
        fields("anthropic.claude-3-7-sonnet-20250219-v1:0", "none"),
        None
    );
    assert_eq!(
        fields("us.amazon.nova-2-lite-v1:0", "low").unwrap(),
        json!({"reasoningConfig": {"type": "enabled", "maxReasoningEffort": "low"}})
    );
    assert_eq!(
        fields("openai.gpt-oss-20b-1:0", "high").unwrap(),
        json!({"reasoning_effort": "high"})
    );
    assert_eq!(fields("meta.llama3-1-70b-instruct-v1:0", "high"), None);
    let unsigned_tool_turn = json!({"messages": [
        {"role": "user", "content": "q"},
        {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c", "content": "r"},
    ], "reasoning_effort": "high"});
    let got = plan(
        unsigned_tool_turn,
        "anthropic.claude-3-7-sonnet-20250219-v1:0",
    )
    .body;
    assert_eq!(got.get("additionalModelRequestFields"), None);
}

#[test]
fn extra_body_and_model_settings() {
    let settings = ModelSettings {
        guardrail_config: Some(
            json!({"guardrailIdentifier": "from-config", "guardrailVersion": "1"}),
        ),
        additional_model_request_fields: Some(
            json!({"top_k": 1, "keep": true})
                .as_object()
                .unwrap()
                .clone(),
        ),
        prompt_caching: true,
        ..ModelSettings::default()
    };
    let request = json!({
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "top_k": 5,
        "additional_model_request_fields": {"top_k": 9},
        "guardrailConfig": {"guardrailIdentifier": "from-request", "guardrailVersion": "2", "trace": "enabled"},
        "requestMetadata": {"team": "ml"},
        "performance_config": {"latency": "optimized"},
    });
    let got = build(&request, "m", &settings, &no_fetch).unwrap().body;
    assert_eq!(
        got["additionalModelRequestFields"],
        json!({"top_k": 9, "keep": true})
    );
    assert_eq!(
        got["guardrailConfig"]["guardrailIdentifier"],
        "from-request"
    );
    assert_eq!(got["requestMetadata"], json!({"team": "ml"}));
    assert_eq!(got["performanceConfig"], json!({"latency": "optimized"}));
    assert_eq!(
        got["system"],
        json!([{"text": "s"}, {"cachePoint": {"type": "default"}}])
    );
    assert_eq!(
        got["toolConfig"]["tools"][1],
        json!({"cachePoint": {"type": "default"}})
    );
    let got = build(
        &json!({"messages": [{"role": "user", "content": "q"}]}),
        "m",
        &settings,
        &no_fetch,
    )
    .unwrap()
    .body;
    assert_eq!(got["guardrailConfig"]["guardrailIdentifier"], "from-config");
}

#[test]
fn refusals_name_the_field() {
    let cases = [
        (json!({"messages": "x"}), "messages must be a list"),
        (json!({"messages": [], "n": 2}), "n > 1"),
        (
            json!({"messages": [{"role": "function", "content": "x"}]}),
            "role `function`",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            "tool_call_id",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{oops"}}]}]}),
            "not JSON",
        ),
        (
            json!({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]}]}),
            "text only",
        ),
        (
            json!({"messages": [], "tool_choice": "sometimes", "tools": []}),
            "tool_choice",
        ),
        (
            json!({"messages": [], "tools": [{"type": "web_search"}]}),
            "tools[0]",
        ),
        (
            json!({"messages": [], "response_format": {"type": "xml"}}),
            "response_format",
        ),
    ];
    for (request, want) in cases {
        let err = build(&request, "m", &ModelSettings::default(), &no_fetch).unwrap_err();
        assert!(err.message().contains(want), "{request}: {err}");
    }
}
