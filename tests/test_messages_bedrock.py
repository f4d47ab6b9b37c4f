"""Claude on `remote::bedrock` through ogx's `/v1/messages`, natively: the Anthropic Python SDK
against ogx, ogx's Bedrock plugin sending Bedrock's Anthropic body to InvokeModel,
InvokeModelWithResponseStream and CountTokens, so thinking signatures, cache_control and
tool_use ids survive both ways; a Nova model (and a Claude model whose `model_overrides` say
`messages: translate`) still translated to Converse; Bedrock's throttling as Anthropic's 429;
SigV4 and the bearer key.

Upstream is tests/mock_bedrock.py + mock_bedrock_anthropic.py: it verifies every SigV4 signature
with botocore, checks every Anthropic body against Bedrock's rules and streams event-stream
frames that botocore's EventStreamBuffer reads back (checked below)."""

from __future__ import annotations

import base64
import json

import anthropic
import pytest
import requests
from botocore.eventstream import EventStreamBuffer

from aws_fixtures import REGION, STATIC_KEYS, endpoint_env, started_mock, static_keys_env
from bedrock_session import config_with
from mock_bedrock_anthropic import (BEDROCK_VERSION, SIGNATURE, THINKING, THROTTLED,
                                    TOOL_USE_ID, input_tokens)
from ogx_harness import MESSAGES_PROVIDER

CLAUDE = "us.anthropic.claude-sonnet-4-20250514-v1:0"
TRANSLATED_CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"
NOVA = "amazon.nova-pro-v1:0"
TOKEN = "messages-bearer-token"
BETA = "interleaved-thinking-2025-05-14"
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


def config() -> str:
    models = "".join(f"""\
  - metadata: {{}}
    model_id: {json.dumps(model)}
    provider_id: bedrock-inference
    provider_model_id: {json.dumps(model)}
    model_type: llm
""" for model in (CLAUDE, TRANSLATED_CLAUDE, NOVA))
    text = config_with({"region_name": REGION,
                        "model_overrides": {TRANSLATED_CLAUDE: {"messages": "translate"}}},
                       models)
    text = text.replace("apis: [inference, models]", "apis: [inference, models, messages]")
    return text.replace("registered_resources:", MESSAGES_PROVIDER.lstrip("\n") +
                        "registered_resources:", 1)


@pytest.fixture(scope="module")
def module_mock():
    with started_mock() as mock:
        mock.add_bearer(TOKEN)
        yield mock


@pytest.fixture
def mock(module_mock):
    module_mock.clear()
    return module_mock


@pytest.fixture(scope="module")
def server(module_mock, module_ogx_server):
    return module_ogx_server(config(), env={**endpoint_env(module_mock), **static_keys_env()})


@pytest.fixture
def client(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="client-key", max_retries=0,
                               timeout=30)


def model(name: str) -> str:
    return f"bedrock-inference/{name}"


def invoked(mock, operation: str) -> list:
    return [r for r in mock.requests if r.path.endswith("/" + operation)]


def test_thinking_signatures_and_cache_control_survive_both_ways(client, mock):
    history = [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Simple sum.", "signature": "sig-from-earlier"},
            {"type": "text", "text": "4"}]},
        {"role": "user", "content": [{"type": "text", "text": "And 3+3?",
                                      "cache_control": {"type": "ephemeral"}}]},
    ]
    system = [{"type": "text", "text": "You are a careful calculator.",
               "cache_control": {"type": "ephemeral"}}]
    answer = client.messages.create(
        model=model(CLAUDE), max_tokens=2048, system=system, messages=history,
        thinking={"type": "enabled", "budget_tokens": 1024}, metadata={"user_id": "u-1"},
        extra_headers={"anthropic-beta": BETA})
    assert [b.type for b in answer.content] == ["thinking", "text"]
    assert (answer.content[0].thinking, answer.content[0].signature) == (THINKING, SIGNATURE)
    assert answer.content[1].text == "You said: And 3+3?"
    assert answer.usage.cache_creation_input_tokens == 7  # both marked texts, counted upstream
    assert answer.id == "msg_bdrk_01MockMessage" and answer.stop_reason == "end_turn"
    # The answer's model is the upstream's, as on every native path.
    assert answer.model == "claude-sonnet-4-20250514-v1:0"
    (sent,) = invoked(mock, "invoke")
    assert sent.path == "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke"
    assert (sent.model_id, sent.status, sent.auth, sent.access_key_id) == \
        (CLAUDE, 200, "sigv4", STATIC_KEYS.access_key_id)
    body = sent.json
    assert "model" not in body and "stream" not in body
    assert body["anthropic_version"] == BEDROCK_VERSION
    assert body["anthropic_beta"] == [BETA]
    assert body["messages"] == history and body["system"] == system
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["metadata"] == {"user_id": "u-1"} and body["max_tokens"] == 2048
    assert not mock.converse_requests()


def test_a_streamed_tool_use_keeps_its_id(client, mock):
    raw_types = []
    with client.messages.stream(
            model=model(CLAUDE), max_tokens=256, tools=[WEATHER],
            messages=[{"role": "user", "content": "[mock:tool] Weather in Paris?"}]) as stream:
        for event in stream:
            raw_types.append(event.type)
        final = stream.get_final_message()
    (tool,) = final.content
    assert (tool.type, tool.id, tool.name, tool.input) == \
        ("tool_use", TOOL_USE_ID, "get_weather", {"city": "Paris"})
    assert final.stop_reason == "tool_use"
    assert "input_json" in raw_types and raw_types[-1] == "message_stop"
    (sent,) = invoked(mock, "invoke-with-response-stream")
    assert sent.status == 200 and sent.auth == "sigv4"
    assert "stream" not in sent.json and sent.json["tools"] == [WEATHER]
    assert sent.headers["accept"] == "application/vnd.amazon.eventstream"


def test_the_mocks_stream_frames_read_back_with_botocore(mock, server):
    body = {"anthropic_version": BEDROCK_VERSION, "max_tokens": 50,
            "messages": [{"role": "user", "content": "frames please"}]}
    response = requests.post(
        f"{mock.url}/model/{CLAUDE}/invoke-with-response-stream", json=body, timeout=30,
        headers={"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    buffer = EventStreamBuffer()
    buffer.add_data(response.content)
    events = []
    for message in buffer:
        assert message.headers[":event-type"] == "chunk"
        payload = json.loads(message.payload)
        events.append(json.loads(base64.b64decode(payload["bytes"])))
    assert [e["type"] for e in events][0] == "message_start"
    assert events[-1]["type"] == "message_stop"
    assert any(e.get("delta", {}).get("text") == "You said: frames please" for e in events)


def test_count_tokens_is_bedrocks_count(client, mock, server):
    messages = [{"role": "user", "content": "count these five words"}]
    response = requests.post(
        server.url + "/v1/messages/count_tokens", timeout=30,
        headers={"anthropic-beta": BETA},
        json={"model": model(CLAUDE), "messages": messages, "system": "be brief"})
    assert response.status_code == 200, response.text
    assert "x-ogx-token-count" not in response.headers  # not an estimate
    assert response.json() == {"input_tokens": 6}
    (sent,) = invoked(mock, "count-tokens")
    # CountTokens takes the foundation model, and the InvokeModel body as a base64 blob.
    assert sent.model_id == "anthropic.claude-sonnet-4-20250514-v1:0" and sent.status == 200
    assert sent.invoke_body == {"messages": messages, "system": "be brief",
                                "anthropic_version": BEDROCK_VERSION, "anthropic_beta": [BETA],
                                "max_tokens": 1}
    assert client.messages.count_tokens(model=model(CLAUDE), messages=messages).input_tokens == \
        input_tokens({"messages": messages})


def test_nova_and_an_overridden_claude_are_translated_while_claude_stays_native(client, mock,
                                                                                server):
    for name in (NOVA, TRANSLATED_CLAUDE):
        answer = client.messages.create(model=model(name), max_tokens=64,
                                        messages=[{"role": "user", "content": "hello there"}])
        assert answer.content[0].text == "You said: hello there"
    assert [r.model_id for r in mock.converse_requests()] == [NOVA, TRANSLATED_CLAUDE]
    assert not invoked(mock, "invoke")
    # Declining Nova did not make the provider decline Claude.
    answer = client.messages.create(model=model(CLAUDE), max_tokens=64,
                                    messages=[{"role": "user", "content": "still native?"}])
    assert answer.content[0].text == "You said: still native?"
    assert len(invoked(mock, "invoke")) == 1
    estimate = requests.post(server.url + "/v1/messages/count_tokens", timeout=30, json={
        "model": model(NOVA), "messages": [{"role": "user", "content": "estimate me"}]})
    assert estimate.status_code == 200
    assert estimate.headers["x-ogx-token-count"] == "estimate"
    assert not invoked(mock, "count-tokens")


def test_bedrock_throttling_is_anthropics_429(client, mock):
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(model=model(CLAUDE), max_tokens=64,
                               messages=[{"role": "user", "content": "[mock:throttle] now"}])
    error = raised.value
    assert error.status_code == 429
    assert error.body["type"] == "error" and error.body["error"]["type"] == "rate_limit_error"
    assert THROTTLED in error.body["error"]["message"]
    assert error.response.headers["retry-after"] == "3"
    # Mid-stream, the exception frame ends the stream with an error event.
    with pytest.raises(anthropic.APIStatusError) as raised:
        with client.messages.stream(
                model=model(CLAUDE), max_tokens=64,
                messages=[{"role": "user", "content": "[mock:throttle-mid] go"}]) as stream:
            for _ in stream:
                pass
    assert THROTTLED in str(raised.value)


def test_a_bearer_key_from_provider_data_authenticates(client, mock):
    answer = client.messages.create(
        model=model(CLAUDE), max_tokens=64,
        messages=[{"role": "user", "content": "with a key"}],
        extra_headers={"x-ogx-provider-data": json.dumps({"aws_bedrock_bearer_token": TOKEN})})
    assert answer.content[0].text == "You said: with a key"
    (sent,) = invoked(mock, "invoke")
    assert (sent.auth, sent.bearer_token, sent.status) == ("bearer", TOKEN, 200)
    assert "authorization" in sent.headers and TOKEN in sent.headers["authorization"]
