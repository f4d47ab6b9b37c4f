//! The Response object as OpenAI defines it (`openai.types.responses.Response`): the request's
//! settings echoed (`instructions`, `tools`, `tool_choice`, `text`, `metadata`,
//! `previous_response_id`, …) around what the model produced (`status`, `output`, `usage`,
//! `error`, `incomplete_details`).

use super::request::CreateResponse;
use serde_json::{Map, Value, json};

/// A Response object in `status: in_progress` with no output yet, for `request`.
pub fn in_progress(id: &str, created_at: i64, request: &CreateResponse) -> Value {
    let body = &request.body;
    let echo = |field: &str, default: Value| {
        body.get(field)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    json!({
        "id": id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": false,
        "completed_at": null,
        "error": null,
        "incomplete_details": null,
        "instructions": request.instructions,
        "max_output_tokens": echo("max_output_tokens", Value::Null),
        "max_tool_calls": null,
        "model": request.model,
        "output": [],
        "parallel_tool_calls": echo("parallel_tool_calls", json!(true)),
        "previous_response_id": request.previous_response_id,
        "reasoning": echo("reasoning", json!({"effort": null, "summary": null})),
        "service_tier": "default",
        "store": request.store,
        "temperature": echo("temperature", json!(1.0)),
        "text": echo("text", json!({"format": {"type": "text"}})),
        "tool_choice": echo("tool_choice", json!("auto")),
        "tools": echo("tools", json!([])),
        "top_logprobs": echo("top_logprobs", json!(0)),
        "top_p": echo("top_p", json!(1.0)),
        "truncation": "disabled",
        "usage": null,
        "user": echo("user", Value::Null),
        "metadata": echo("metadata", json!({})),
    })
}

/// A chat-completions `usage` as the Responses API's usage.
pub fn usage(chat: &Map<String, Value>) -> Value {
    let count = |value: Option<&Value>| value.and_then(Value::as_u64).unwrap_or(0);
    let input = count(chat.get("prompt_tokens"));
    let output = count(chat.get("completion_tokens"));
    let cached = count(
        chat.get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens")),
    );
    let reasoning = count(
        chat.get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens")),
    );
    let total = chat
        .get("total_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(input + output);
    json!({
        "input_tokens": input,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_echoes_the_request_with_openai_defaults() {
        let request = CreateResponse::from_json(
            br#"{"model":"vllm/m","input":"hi","metadata":{"k":"v"},"previous_response_id":"resp_1","temperature":0.3}"#,
        )
        .unwrap();
        let object = in_progress("resp_2", 7, &request);
        assert_eq!(object["object"], "response");
        assert_eq!(object["previous_response_id"], "resp_1");
        assert_eq!(object["metadata"], json!({"k": "v"}));
        assert_eq!(object["temperature"], 0.3);
        assert_eq!(object["top_p"], 1.0);
        assert_eq!(object["tool_choice"], "auto");
        assert_eq!(object["text"], json!({"format": {"type": "text"}}));
        assert_eq!(object["store"], true);
    }

    #[test]
    fn chat_usage_becomes_response_usage() {
        let chat = json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
            "completion_tokens_details": {"reasoning_tokens": 2}});
        let got = usage(chat.as_object().unwrap());
        assert_eq!(got["input_tokens"], 5);
        assert_eq!(got["output_tokens"], 3);
        assert_eq!(got["total_tokens"], 8);
        assert_eq!(got["output_tokens_details"]["reasoning_tokens"], 2);
    }
}
