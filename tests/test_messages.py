"""The Anthropic Messages API as a user of the Anthropic Python SDK sees it, on the `remote::vllm`
plugin (its native Messages path switched off with `native_messages: false`) against the mock
OpenAI-compatible upstream playing scripted turns: ogx translates each
request to one chat completion, and what the upstream received is checked. Plain and streamed
answers, a tool round trip, images, thinking, stop sequences, cached-token usage, count_tokens,
and the failures a client must be told about in Anthropic's error shape."""

from __future__ import annotations

import json

import anthropic
import pytest
import requests

from mock_openai import answer_for
from ogx_harness import MESSAGES_PROVIDER, vllm_config
from scripted_turns import Turn

MODEL = "vllm/my-model"
UPSTREAM_MODEL = "upstream-model"


WEATHER_TOOL = {
    "name": "get_weather", "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                     "required": ["city"]},
}

TEXT_EVENTS = ["message_start", "ping", "content_block_start", "content_block_delta",
               "content_block_stop", "message_delta", "message_stop"]


def messages_config(upstream_url: str, apis=("inference", "models", "messages"),
                    providers: str = MESSAGES_PROVIDER) -> str:
    # The mock speaks only chat completions: vLLM's native Messages path is switched off, so
    # these tests exercise the translation (tests/test_messages_native.py has the native path).
    return vllm_config(upstream_url, distro_name="messages-e2e", apis=apis,
                       extra_provider_config={"native_messages": False},
                       more_providers=providers)


@pytest.fixture
def server(ogx_server, mock_upstream):
    return ogx_server(messages_config(mock_upstream.base_url))


def client_for(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test-key", max_retries=0,
                               timeout=30)


def sent(mock) -> dict:
    """The last chat request the upstream received."""
    return mock.last_request("/v1/chat/completions").json


def collapse(kinds: list[str]) -> list[str]:
    out: list[str] = []
    for kind in kinds:
        if not (out and out[-1] == kind == "content_block_delta"):
            out.append(kind)
    return out


def raw_events(server, body: dict, **headers) -> list[tuple[str, dict]]:
    """(event, data) of a streamed answer, read without the SDK."""
    with requests.post(server.url + "/v1/messages", json={**body, "stream": True}, timeout=30,
                       headers={"anthropic-version": "2023-06-01", **headers}, stream=True) as raw:
        assert raw.status_code == 200, raw.text
        assert raw.headers["content-type"].startswith("text/event-stream")
        assert raw.headers["anthropic-version"] == "2023-06-01"
        blocks = raw.text.strip().split("\n\n")
    events = []
    for block in blocks:
        event_line, data_line = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == event_line.removeprefix("event: ")
        events.append((data["type"], data))
    return events


def anthropic_error(response: requests.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["anthropic-version"] == "2023-06-01"
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type, body
    assert body["error"]["message"]
    return body["error"]["message"]


def test_a_plain_answer_plain_and_streamed(server, mock_upstream):
    client = client_for(server)
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=100,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert raw.headers["anthropic-version"] == "2023-06-01"
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    [block] = message.content
    assert block.type == "text" and block.text == answer_for("What is the capital of France?")
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert sent(mock_upstream) == {
        "model": UPSTREAM_MODEL, "max_tokens": 100, "stream": False,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "What is the capital of France?"}]}

    with client.messages.stream(model=MODEL, max_tokens=50,
                                messages=[{"role": "user", "content": "Name a prime."}]) as stream:
        events = list(stream)
        final = stream.get_final_message()
    text = "".join(e.delta.text for e in events
                   if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text == answer_for("Name a prime.") == final.content[0].text
    assert final.usage.output_tokens > 0 and final.stop_reason == "end_turn"
    upstream = sent(mock_upstream)
    assert upstream["stream"] is True and upstream["stream_options"] == {"include_usage": True}

    kinds = [kind for kind, _ in raw_events(server, {
        "model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]})]
    assert collapse(kinds) == TEXT_EVENTS
    # Messages are not chat completions: the history stays empty.
    assert server.get("/v1/chat/completions").json()["data"] == []


def test_a_tool_round_trip_streamed_then_plain(server, mock_upstream):
    mock_upstream.script(Turn(content="Let me check.", tool_calls=[("get_weather", {"city": "Paris"})]),
                         Turn(content="It is sunny in Paris."))
    client = client_for(server)
    question = {"role": "user", "content": "What is the weather in Paris?"}
    with client.messages.stream(model=MODEL, max_tokens=200, messages=[question],
                                tools=[WEATHER_TOOL],
                                tool_choice={"type": "tool", "name": "get_weather",
                                             "disable_parallel_tool_use": True}) as stream:
        events = list(stream)
        first = stream.get_final_message()
    assert [b.type for b in first.content] == ["text", "tool_use"]
    call = first.content[1]
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    assert call.id.startswith("call")
    assert first.stop_reason == "tool_use"
    partial = "".join(e.delta.partial_json for e in events
                      if e.type == "content_block_delta" and e.delta.type == "input_json_delta")
    assert json.loads(partial) == {"city": "Paris"}
    upstream = sent(mock_upstream)
    assert upstream["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "parameters": WEATHER_TOOL["input_schema"],
        "description": "The weather in a city."}}]
    assert upstream["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert upstream["parallel_tool_calls"] is False

    second = client.messages.create(
        model=MODEL, max_tokens=200, tools=[WEATHER_TOOL],
        messages=[question, {"role": "assistant", "content": first.content},
                  {"role": "user", "content": [
                      {"type": "tool_result", "tool_use_id": call.id, "content": [
                          {"type": "text", "text": "sunny, 24 C"}]},
                      {"type": "text", "text": "Answer in one sentence."}]}])
    assert second.content[0].text == "It is sunny in Paris."
    assert second.stop_reason == "end_turn"
    assert sent(mock_upstream)["messages"] == [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": call.id, "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 24 C"},
        {"role": "user", "content": "Answer in one sentence."},
    ]


def test_images_by_base64_and_url(server, mock_upstream):
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    client_for(server).messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is in these images?"}]}])
    assert sent(mock_upstream)["messages"] == [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What is in these images?"}]}]


def test_reasoning_upstream_becomes_thinking_blocks(server, mock_upstream):
    mock_upstream.script(Turn(reasoning="Six times seven is forty-two.", content="42"),
                         Turn(reasoning="Easy.", content="42"))
    client = client_for(server)
    ask = dict(model=MODEL, max_tokens=16000, thinking={"type": "enabled", "budget_tokens": 4000},
               messages=[{"role": "user", "content": "What is 6 times 7?"}])
    with client.messages.stream(**ask) as stream:
        events = list(stream)
        streamed = stream.get_final_message()
    assert [b.type for b in streamed.content] == ["thinking", "text"]
    assert streamed.content[0].thinking == "Six times seven is forty-two."
    assert streamed.content[0].signature == ""
    assert streamed.content[1].text == "42"
    deltas = {e.delta.type for e in events if e.type == "content_block_delta"}
    assert deltas == {"thinking_delta", "text_delta"}
    assert sent(mock_upstream)["reasoning_effort"] == "medium"

    plain = client.messages.create(**{**ask, "thinking": {"type": "enabled", "budget_tokens": 1024}})
    assert [(b.type, getattr(b, "thinking", None)) for b in plain.content] == \
        [("thinking", "Easy."), ("text", None)]
    assert sent(mock_upstream)["reasoning_effort"] == "low"


def test_an_upstream_refusing_reasoning_effort_is_asked_again_without_it(server, mock_upstream):
    client = client_for(server)
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model=MODEL, max_tokens=100,
                               thinking={"type": "enabled", "budget_tokens": 20000},
                               messages=[{"role": "user", "content": "[mock:error=400] hi"}])
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    first, second = [r.json for r in mock_upstream.requests_to("/v1/chat/completions")]
    assert first["reasoning_effort"] == "high"
    assert "reasoning_effort" not in second
    assert {k: v for k, v in first.items() if k != "reasoning_effort"} == second


def test_stop_sequences_and_cached_tokens(server, mock_upstream):
    mock_upstream.script(Turn(content="1", matched_stop=",", cached_tokens=20),
                         Turn(content="1", matched_stop=",", cached_tokens=20))
    client = client_for(server)
    ask = dict(model=MODEL, max_tokens=50, stop_sequences=[",", ";"],
               messages=[{"role": "user", "content": "Count: 1, 2, 3"}])
    message = client.messages.create(**ask)
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == ","
    # The upstream counted 4 prompt words plus 20 cached tokens.
    assert message.usage.input_tokens == 4
    assert message.usage.cache_read_input_tokens == 20
    assert message.usage.cache_creation_input_tokens == 0
    assert sent(mock_upstream)["stop"] == [",", ";"]
    with client.messages.stream(**ask) as stream:
        streamed = stream.get_final_message()
    assert (streamed.stop_reason, streamed.stop_sequence) == ("stop_sequence", ",")
    assert (streamed.usage.input_tokens, streamed.usage.cache_read_input_tokens) == (4, 20)


def test_count_tokens_is_an_estimate_that_says_so(server, mock_upstream):
    client = client_for(server)
    short = client.messages.with_raw_response.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "Hello there"}])
    assert short.headers["x-ogx-token-count"] == "estimate"
    assert short.headers["anthropic-version"] == "2023-06-01"
    small = short.parse().input_tokens
    large = client.messages.count_tokens(
        model=MODEL, system="You are a careful assistant. " * 20, tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Hello there"}]).input_tokens
    assert 0 < small < large
    assert mock_upstream.requests_to("/v1/chat/completions") == []
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="vllm-nope/x", messages=[{"role": "user", "content": "x"}])


def test_bad_input_gets_anthropic_errors_and_the_server_keeps_serving(server, mock_upstream):
    url = server.url + "/v1/messages"
    hi = [{"role": "user", "content": "hi"}]
    message = anthropic_error(requests.post(url, data="{not json", timeout=30,
                                            headers={"content-type": "application/json"}),
                              400, "invalid_request_error")
    assert "not valid JSON" in message
    message = anthropic_error(requests.post(url, json={"model": MODEL, "messages": hi}, timeout=30),
                              400, "invalid_request_error")
    assert message == "max_tokens: Field required"
    message = anthropic_error(requests.post(url, timeout=30, json={
        "model": MODEL, "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "hologram", "data": "x"}]}]}),
        400, "invalid_request_error")
    assert message.startswith("messages.0.content.0.type: 'hologram' is not a content block")
    message = anthropic_error(requests.post(url, timeout=30, json={
        "model": MODEL, "max_tokens": 10, "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x",
                                          "content": "42"}]}]}),
        400, "invalid_request_error")
    assert "unexpected `tool_use_id` found in `tool_result` blocks: toolu_x" in message
    message = anthropic_error(requests.post(url, timeout=30, json={
        "model": "vllm-nope/x", "max_tokens": 10, "messages": hi}), 404, "not_found_error")
    assert message == ("Model 'vllm-nope/x' not found. Use 'client.models.list()' to list "
                       "available Models.")
    assert mock_upstream.requests_to("/v1/chat/completions") == []

    client = client_for(server)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model=MODEL, max_tokens=10,
                               messages=[{"role": "user", "content": "[mock:error=429] hi"}])
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    anthropic_error(requests.post(server.url + "/v1/messages/batches", json={"requests": []},
                                  timeout=30), 501, "api_error")
    assert client.messages.create(model=MODEL, max_tokens=10, messages=hi).content[0].text == \
        answer_for("hi")


def test_claude_code_headers_and_unknown_fields_are_accepted_and_secrets_not_logged(
        server, mock_upstream):
    secret_key, secret_token = "sk-ant-api03-SECRET-KEY", "SECRET-BEARER-TOKEN"
    body = {"model": MODEL, "max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}],
            "context_management": {"edits": [{"type": "clear_thinking_20251015"}]},
            "metadata": {"user_id": "user_abc_account__session_1"}, "some_future_field": [1]}
    response = requests.post(server.url + "/v1/messages?beta=true", json=body, timeout=30, headers={
        "x-api-key": secret_key, "authorization": f"Bearer {secret_token}",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,made-up-2099-01-01"})
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"] == answer_for("hi")
    upstream = mock_upstream.last_request("/v1/chat/completions")
    assert upstream.json["user"] == "user_abc_account__session_1"
    assert "context_management" not in upstream.json and "some_future_field" not in upstream.json
    assert secret_key not in json.dumps(upstream.headers)
    assert secret_token not in json.dumps(upstream.headers)
    events = raw_events(server, body, **{"x-api-key": secret_key})
    assert events[-1][0] == "message_stop"
    output = server.output()
    assert secret_key not in output and secret_token not in output


def test_a_stream_that_breaks_ends_with_an_error_event(server, mock_upstream):
    mock_upstream.script(Turn(content="one two three four five", fail_mid_stream=True))
    events = raw_events(server, {"model": MODEL, "max_tokens": 50,
                                 "messages": [{"role": "user", "content": "count"}]})
    kinds = [kind for kind, _ in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-1] == "error" and "message_stop" not in kinds
    assert events[-1][1]["error"]["type"] in ("api_error", "overloaded_error")
    assert server.post("/v1/chat/completions", json={
        "model": MODEL, "messages": [{"role": "user", "content": "still there?"}]}).status_code == 200


@pytest.mark.parametrize("apis, providers", [
    (("inference", "models", "messages"), ""),
    (("inference", "models"), MESSAGES_PROVIDER),
])
def test_without_the_api_enabled_messages_are_404(ogx_server, mock_upstream, apis, providers):
    server = ogx_server(messages_config(mock_upstream.base_url, apis=apis, providers=providers))
    message = anthropic_error(requests.post(server.url + "/v1/messages", timeout=30, json={
        "model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}),
        404, "not_found_error")
    assert "The Messages API is not enabled" in message
