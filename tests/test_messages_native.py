"""The native Messages path: for the provider types whose upstream speaks Anthropic's Messages API
(`remote::anthropic`, `remote::vllm`, `remote::fireworks`, ...; OGX 1.5.0's `AnthropicMixin`
adapters), ogx passes the client's body to the upstream's `/v1/messages` and its answer back
untouched, so thinking blocks keep their signatures. A user of the Anthropic Python SDK against
ogx, with `tests/mock_anthropic.py` (answers built with the SDK's own types) as the upstream;
a type without a native path (`remote::openai`) is translated through the same route.
"""
from __future__ import annotations

import json

import anthropic
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mock_anthropic import INPUT_TOKENS, SIGNATURE, THINKING, MockAnthropic
from mock_openai import MockOpenAI
from ogx_harness import MESSAGES_PROVIDER

ANTHROPIC_KEY = "sk-ant-upstream-secret-0001"
VLLM_TOKEN = "vllm-token-secret-0002"
FIREWORKS_KEY = "fw-key-secret-0003"


def config(anthropic_root: str, openai_base: str) -> str:
    return f"""
version: 2
distro_name: messages-native-e2e
apis: [inference, models, messages]
providers:
  inference:
  - provider_id: anthropic
    provider_type: remote::anthropic
    config:
      api_key: {ANTHROPIC_KEY}
  - provider_id: vllm
    provider_type: remote::vllm
    config:
      base_url: {anthropic_root}/v1
      api_token: {VLLM_TOKEN}
  - provider_id: fireworks
    provider_type: remote::fireworks
    config:
      base_url: {anthropic_root}/v1
      api_key: {FIREWORKS_KEY}
  - provider_id: openai
    provider_type: remote::openai
    config:
      base_url: {openai_base}
      api_key: sk-openai-test
{MESSAGES_PROVIDER}
registered_resources:
  models:
  - {{model_id: claude, provider_id: anthropic, provider_model_id: claude-upstream-1}}
  - {{model_id: qwen, provider_id: vllm, provider_model_id: qwen-upstream}}
  - {{model_id: kimi, provider_id: fireworks, provider_model_id: accounts/fireworks/kimi}}
  - {{model_id: gpt, provider_id: openai, provider_model_id: gpt-upstream}}
"""


@pytest.fixture(scope="module")
def upstreams():
    with MockAnthropic() as native, MockOpenAI() as openai_mock:
        yield native, openai_mock


@pytest.fixture(scope="module")
def server(module_ogx_server, upstreams):
    native, openai_mock = upstreams
    return module_ogx_server(config(native.url, openai_mock.base_url),
                             env={"ANTHROPIC_BASE_URL": native.url, "OGX_METRICS": "1"})


@pytest.fixture
def client(server) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key="client-key", max_retries=0,
                               timeout=30)


def last(native: MockAnthropic, path: str = "/v1/messages"):
    return native.requests_to(path)[-1]


THINKING_REQUEST = {
    "max_tokens": 2048,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "metadata": {"user_id": "u-1"},
}


def test_a_message_passes_through_with_its_thinking_signature(client, upstreams, server):
    native, _ = upstreams
    message = client.messages.create(
        model="anthropic/claude", messages=[{"role": "user", "content": "hello native"}],
        **THINKING_REQUEST)

    assert [block.type for block in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == THINKING
    assert message.content[0].signature == SIGNATURE
    assert message.content[1].text == "echo: hello native"
    assert message.usage.cache_read_input_tokens == 5
    sent = last(native)
    assert sent.json["model"] == "claude-upstream-1"
    assert sent.json["thinking"] == THINKING_REQUEST["thinking"]
    assert sent.json["system"] == THINKING_REQUEST["system"]  # cache_control kept
    assert sent.json["metadata"] == {"user_id": "u-1"}
    assert "stream" not in sent.json
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent.headers
    # The client's own key never goes upstream.
    assert "client-key" not in json.dumps(sent.headers)


def test_a_streamed_message_relays_every_upstream_event(client, upstreams, server):
    native, _ = upstreams
    body = {"model": "anthropic/claude", "messages": [{"role": "user", "content": "stream me please"}],
            **THINKING_REQUEST}
    with requests.post(server.url + "/v1/messages", json={**body, "stream": True}, timeout=30,
                       headers={"anthropic-version": "2023-06-01"}, stream=True) as raw:
        assert raw.status_code == 200, raw.text
        assert raw.headers["content-type"].startswith("text/event-stream")
        blocks = raw.text.strip().split("\n\n")
    received = []
    for block in blocks:
        event_line, data_line = block.split("\n")
        received.append((event_line.removeprefix("event: "),
                         json.loads(data_line.removeprefix("data: "))))
    upstream_body = {**body, "model": "claude-upstream-1"}
    assert received == native.expected_events(upstream_body, "stream me please")
    assert last(native).json["stream"] is True

    with client.messages.stream(model="anthropic/claude", messages=[{"role": "user", "content": "sdk"}],
                                **THINKING_REQUEST) as stream:
        final = stream.get_final_message()
    assert final.content[0].signature == SIGNATURE
    assert final.content[1].text == "echo: sdk"
    assert final.stop_reason == "end_turn"


def test_vllm_gets_a_bearer_token_and_fireworks_an_api_key(client, upstreams, server):
    native, _ = upstreams
    client.messages.create(model="vllm/qwen", max_tokens=16,
                           messages=[{"role": "user", "content": "to vllm"}])
    sent = last(native)
    assert sent.json["model"] == "qwen-upstream"
    assert sent.headers["authorization"] == f"Bearer {VLLM_TOKEN}"
    assert "x-api-key" not in sent.headers

    client.messages.create(model="fireworks/kimi", max_tokens=16,
                           messages=[{"role": "user", "content": "to fireworks"}])
    sent = last(native)
    assert sent.json["model"] == "accounts/fireworks/kimi"
    assert sent.headers["x-api-key"] == FIREWORKS_KEY


def test_count_tokens_asks_the_upstream_or_counts_with_a_one_token_message(client, upstreams,
                                                                          server):
    native, _ = upstreams
    response = requests.post(server.url + "/v1/messages/count_tokens", timeout=30, json={
        "model": "anthropic/claude", "messages": [{"role": "user", "content": "count me"}]})
    assert response.status_code == 200, response.text
    assert response.json() == {"input_tokens": INPUT_TOKENS}
    assert "x-ogx-token-count" not in response.headers  # not an estimate
    sent = last(native, "/v1/messages/count_tokens")
    assert sent.json["model"] == "claude-upstream-1"
    assert sent.headers["x-api-key"] == ANTHROPIC_KEY

    # Fireworks has no count_tokens endpoint: a max_tokens=1 message is counted, as OGX does.
    before = len(native.requests_to("/v1/messages"))
    counted = client.messages.count_tokens(
        model="fireworks/kimi", messages=[{"role": "user", "content": "count me too"}])
    assert counted.input_tokens == INPUT_TOKENS
    sent = native.requests_to("/v1/messages")[before:]
    assert [r.json["max_tokens"] for r in sent] == [1]


def test_a_type_without_a_native_path_is_translated(client, upstreams, server):
    native, openai_mock = upstreams
    before = len(native.requests)
    for _ in range(2):  # the second request goes straight to the translation
        message = client.messages.create(model="openai/gpt", max_tokens=16,
                                         messages=[{"role": "user", "content": "translate me"}])
        assert message.role == "assistant"
        assert message.content[0].type == "text"
    assert len(native.requests) == before
    assert openai_mock.last_request("/v1/chat/completions").json["model"] == "gpt-upstream"
    # count_tokens for it is ogx's estimate, and says so.
    response = requests.post(server.url + "/v1/messages/count_tokens", timeout=30, json={
        "model": "openai/gpt", "messages": [{"role": "user", "content": "estimate me"}]})
    assert response.status_code == 200
    assert response.headers["x-ogx-token-count"] == "estimate"


def test_upstream_errors_keep_status_and_retry_after_and_never_echo_the_key(client, upstreams,
                                                                          server):
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="anthropic/claude", max_tokens=16,
                               messages=[{"role": "user", "content": "[mock:error=429]"}])
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert "scripted 429" in caught.value.body["error"]["message"]

    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model="anthropic/claude", max_tokens=16,
                               messages=[{"role": "user", "content": "[mock:error=529]"}])
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"
    # The server keeps serving.
    ok = client.messages.create(model="anthropic/claude", max_tokens=16,
                                messages=[{"role": "user", "content": "still there?"}])
    assert ok.content[1].text == "echo: still there?"


def test_a_stream_that_fails_after_it_started_ends_with_an_error_event(server, upstreams):
    with requests.post(server.url + "/v1/messages", timeout=30, stream=True, json={
            "model": "anthropic/claude", "max_tokens": 16, "stream": True,
            "messages": [{"role": "user", "content": "[mock:stream-error]"}]}) as raw:
        assert raw.status_code == 200
        blocks = raw.text.strip().split("\n\n")
    kinds = [block.split("\n")[0].removeprefix("event: ") for block in blocks]
    assert kinds == ["message_start", "content_block_start", "content_block_delta", "error"]
    error = json.loads(blocks[-1].split("\n")[1].removeprefix("data: "))
    assert error["type"] == "error"
    assert error["error"]["message"] == "Overloaded"


def test_native_messages_false_switches_a_type_to_translation(module_ogx_server, upstreams):
    native, openai_mock = upstreams
    server = module_ogx_server(f"""
version: 2
distro_name: messages-translated-e2e
apis: [inference, models, messages]
providers:
  inference:
  - provider_id: vllm
    provider_type: remote::vllm
    config:
      base_url: {openai_mock.base_url}
      native_messages: false
{MESSAGES_PROVIDER}
registered_resources:
  models:
  - {{model_id: m, provider_id: vllm, provider_model_id: translated-upstream}}
""")
    before = len(native.requests)
    client = anthropic.Anthropic(base_url=server.url, api_key="k", max_retries=0, timeout=30)
    message = client.messages.create(model="vllm/m", max_tokens=16,
                                     messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].type == "text"
    assert openai_mock.last_request("/v1/chat/completions").json["model"] == "translated-upstream"
    assert len(native.requests) == before


def token_sums(server) -> dict[tuple[str, str], float]:
    """`gen_ai_client_token_usage_sum` by (model, token type), read with prometheus_client."""
    text = requests.get(server.url + "/metrics", timeout=30).text
    sums: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "gen_ai_client_token_usage_sum":
                key = (s.labels.get("gen_ai_request_model", ""), s.labels.get("gen_ai_token_type", ""))
                sums[key] = sums.get(key, 0) + s.value
    return sums


def test_native_answers_count_their_tokens_in_the_metrics(client, server):
    before = token_sums(server)
    client.messages.create(model="anthropic/claude", max_tokens=16,
                           messages=[{"role": "user", "content": "one two three"}])
    with client.messages.stream(model="anthropic/claude", max_tokens=16,
                                messages=[{"role": "user", "content": "four five"}]) as stream:
        final = stream.get_final_message()
    after = token_sums(server)
    delta = {key: after.get(key, 0) - before.get(key, 0) for key in after}
    # The mock answers `echo: <text>` with INPUT_TOKENS in and one token per word out.
    assert delta[("anthropic/claude", "input")] == 2 * INPUT_TOKENS
    assert delta[("anthropic/claude", "output")] == len("echo: one two three".split()) + \
        final.usage.output_tokens
