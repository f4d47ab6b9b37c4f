"""Routing and failover through the real ogx: three OpenAI-compatible upstreams (mock_openai.py,
scripted to throttle, fail, hang and break mid-stream), a provider whose port refuses
connections, and routed models (`routing.models`) over them. The OpenAI SDK runs with its own
retries off, so every retry and fallback seen here is ogx's.

One ogx serves the whole module; each scenario has a routed model of its own, so the circuit
breakers of one scenario do not leak into another, and every upstream is reset to normal
answers before each test."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from mock_openai import MockOpenAI
from ogx_harness import free_port, openai_client, sse_events

CHAT = {"messages": [{"role": "user", "content": "hello"}]}


def provider(provider_id: str, url: str) -> str:
    return (f"  - provider_id: {provider_id}\n"
            f"    provider_type: remote::vllm\n"
            f"    config: {{base_url: \"{url}\", api_token: fake}}\n")


def target(provider_id: str, model: str, weight: int | None = None) -> str:
    extra = f", weight: {weight}" if weight is not None else ""
    return f"{{provider_id: {provider_id}, provider_model_id: {model}{extra}}}"


@pytest.fixture(scope="module")
def upstreams():
    with MockOpenAI() as a, MockOpenAI() as b, MockOpenAI() as c:
        yield {"a": a, "b": b, "c": c}


@pytest.fixture(scope="module")
def server(upstreams, module_ogx_server):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    ab = f"[{target('a', 'mock-alpha')}, {target('b', 'mock-beta')}]"
    config = (
        "version: 2\ndistro_name: routing-e2e\napis: [inference, models]\n"
        "providers:\n  inference:\n"
        + provider("a", upstreams["a"].base_url)
        + provider("b", upstreams["b"].base_url)
        + provider("c", upstreams["c"].base_url)
        + provider("dead", dead)
        + f"""
routing:
  defaults: {{backoff: 0.05, max_backoff: 0.2, max_retry_after: 5}}
  providers:
    c: {{retries: 0, max_concurrent: 20, max_queued: 20, queue_timeout: 10}}
    dead: {{retries: 0, timeouts: {{connect: 1}}}}
  models:
    failover: {{targets: {ab}}}
    refused: {{targets: [{target('dead', 'mock-alpha')}, {target('a', 'mock-alpha')}]}}
    breaker:
      breaker: {{failures: 3, cooldown: 1}}
      targets: {ab}
    split:
      strategy: weighted
      targets: [{target('a', 'mock-alpha', 3)}, {target('b', 'mock-beta', 1)}]
    fastest: {{strategy: least_latency, targets: {ab}}}
    first-event: {{first_event_timeout: 0.5, targets: {ab}}}
    all-down: {{retries: 1, breaker: {{failures: 1, cooldown: 30}}, targets: {ab}}}
""")
    return module_ogx_server(config)


@pytest.fixture(autouse=True)
def normal_upstreams(upstreams):
    for mock in upstreams.values():
        mock.behave()
        mock.clear()
    yield


def chat(server, model: str, **extra) -> requests.Response:
    return server.post("/v1/chat/completions", json={"model": model, **CHAT, **extra},
                       timeout=30)


def chats_to(mock: MockOpenAI) -> list:
    return mock.requests_to("/v1/chat/completions")


def routing_of(server, provider_id: str) -> dict:
    response = server.get(f"/v1/providers/{provider_id}")
    assert response.status_code == 200, response.text
    return response.json()["routing"]


def target_state(server, provider_id: str, model: str) -> dict:
    return next(t for t in routing_of(server, provider_id)["targets"] if t["model"] == model)


def test_a_429_falls_back_to_the_next_target_and_the_history_says_who_answered(
        server, upstreams):
    upstreams["a"].behave("[mock:error=429]")
    client = openai_client(server.url)
    raw = client.chat.completions.with_raw_response.create(model="failover", **CHAT)
    completion = raw.parse()
    assert completion.choices[0].message.content == "You said: hello"
    assert completion.model == "failover"
    assert raw.headers["x-ogx-provider"] == "b"
    assert raw.headers["x-ogx-target"] == "b/mock-beta"
    assert [r.json["model"] for r in chats_to(upstreams["a"])] == ["mock-alpha"]
    assert [r.json["model"] for r in chats_to(upstreams["b"])] == ["mock-beta"]
    stored = server.get(f"/v1/chat/completions/{completion.id}")
    for _ in range(50):  # the history is written in the background
        if stored.status_code == 200:
            break
        time.sleep(0.1)
        stored = server.get(f"/v1/chat/completions/{completion.id}")
    assert stored.json()["ogx_target"] == "b/mock-beta"


def test_a_refused_connection_falls_back(server, upstreams):
    response = chat(server, "refused")
    assert response.status_code == 200, response.text
    assert response.headers["x-ogx-target"] == "a/mock-alpha"
    assert len(chats_to(upstreams["a"])) == 1


def test_a_single_target_retries_and_honours_retry_after(server, upstreams):
    a = upstreams["a"]
    a.queue("[mock:error=429][mock:retry-after=1]")
    response = chat(server, "a/mock-alpha")
    assert response.status_code == 200, response.text
    assert response.headers["x-ogx-provider"] == "a"
    assert response.headers["x-ogx-target"] == "a/mock-alpha"
    first, second = chats_to(a)
    assert first.markers["retry-after"] == "1"
    assert second.at - first.at >= 1.0, "the retry waited out Retry-After"

    # A Retry-After beyond max_retry_after (5 s here) is the client's to wait out.
    a.clear()
    a.queue("[mock:error=429][mock:retry-after=60]")
    response = chat(server, "a/mock-alpha")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "60"
    assert len(chats_to(a)) == 1


def test_retries_stop_after_the_configured_count(server, upstreams):
    upstreams["a"].behave("[mock:error=503]")
    response = chat(server, "a/mock-alpha")
    assert response.status_code == 503
    assert len(chats_to(upstreams["a"])) == 3, "the first attempt and 2 retries (the default)"
    # Not retried: the client's own mistake.
    upstreams["a"].behave("[mock:error=400]")
    upstreams["a"].clear()
    assert chat(server, "a/mock-alpha").status_code == 400
    assert len(chats_to(upstreams["a"])) == 1
    # `retries: 0` turns retrying off.
    upstreams["c"].behave("[mock:error=503]")
    assert chat(server, "c/mock-alpha").status_code == 503
    assert len(chats_to(upstreams["c"])) == 1


def test_nothing_is_retried_after_the_first_streamed_byte(server, upstreams):
    upstreams["a"].behave("[mock:fail-mid-stream]")
    response = server.post("/v1/chat/completions", stream=True, timeout=30,
                           json={"model": "failover", "stream": True, **CHAT})
    assert response.status_code == 200
    assert response.headers["x-ogx-target"] == "a/mock-alpha"
    events = list(sse_events(response))
    assert json.loads(events[0])["choices"][0]["delta"]["content"] == "You"
    error = json.loads(events[-1])["error"]
    assert error["code"] == "502", events
    assert len(chats_to(upstreams["a"])) == 1
    assert chats_to(upstreams["b"]) == [], "no fallback once the client got a byte"


def test_a_stream_without_a_first_event_in_time_goes_to_the_next_target(server, upstreams):
    upstreams["a"].behave("[mock:slow=3]")
    client = openai_client(server.url)
    with client.chat.completions.with_streaming_response.create(
            model="first-event", stream=True, **CHAT) as raw:
        assert raw.headers["x-ogx-target"] == "b/mock-beta"
        text = "".join(chunk.choices[0].delta.content or ""
                       for chunk in raw.parse() if chunk.choices)
    assert text == "You said: hello"


def test_the_breaker_opens_after_repeated_failures_and_a_probe_closes_it(server, upstreams):
    a, b = upstreams["a"], upstreams["b"]
    a.behave("[mock:error=503]")
    for _ in range(3):
        response = chat(server, "breaker")
        assert response.headers["x-ogx-target"] == "b/mock-beta"
    assert len(chats_to(a)) == 3
    state = target_state(server, "a", "breaker")
    assert state["state"] == "open" and state["times_opened"] == 1, state
    assert chat(server, "breaker").headers["x-ogx-target"] == "b/mock-beta"
    assert len(chats_to(a)) == 3, "an open target is not tried"

    a.behave()
    time.sleep(1.1)  # the breaker's cooldown
    assert target_state(server, "a", "breaker")["state"] == "half_open"
    response = chat(server, "breaker")
    assert response.headers["x-ogx-target"] == "a/mock-alpha", "the probe went to a"
    state = target_state(server, "a", "breaker")
    assert state["state"] == "closed" and state["consecutive_failures"] == 0, state
    assert len(chats_to(b)) == 4


def test_when_every_target_is_out_the_answer_says_when_to_come_back(server, upstreams):
    for mock in (upstreams["a"], upstreams["b"]):
        mock.behave("[mock:error=502]")
    assert chat(server, "all-down").status_code == 502
    response = chat(server, "all-down")
    assert response.status_code == 503
    assert "every target of model all-down is taken out" in response.json()["error"]["message"]
    assert 1 <= int(response.headers["retry-after"]) <= 30


def test_weighted_targets_share_the_requests_by_weight(server, upstreams):
    counts = Counter(chat(server, "split").headers["x-ogx-provider"] for _ in range(200))
    assert set(counts) == {"a", "b"}
    # Weights 3:1: a expects 150 of 200 (binomial sd 6.1); the bounds are ±4 sd.
    assert 125 <= counts["a"] <= 175, counts


def test_least_latency_moves_traffic_away_from_a_slowed_target(server, upstreams):
    upstreams["a"].behave("[mock:slow=0.3]")
    counts = Counter(chat(server, "fastest").headers["x-ogx-provider"] for _ in range(30))
    assert counts["a"] <= 2 and counts["b"] >= 28, counts
    fastest = target_state(server, "a", "fastest")
    assert fastest["latency_ms"] >= 250, fastest


def test_a_provider_limit_queues_the_excess_then_refuses_it(server, upstreams):
    c = upstreams["c"]
    c.behave("[mock:slow=1]")

    def one(_):
        return chat(server, "c/mock-alpha")

    with ThreadPoolExecutor(max_workers=200) as pool:
        responses = list(pool.map(one, range(200)))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 429}, statuses
    # 20 run, 20 wait for their slots (queue_timeout 10 s), the rest are refused at once.
    assert statuses[200] >= 40 and statuses[429] >= 100, statuses
    assert statuses[200] + statuses[429] == 200
    refused = [r for r in responses if r.status_code == 429]
    assert all(r.headers["retry-after"] == "1" for r in refused)
    assert "provider c is busy" in refused[0].json()["error"]["message"]
    assert c.max_concurrent_requests() <= 20, "the limit held at the upstream"
    assert len(chats_to(c)) == statuses[200]
    limit = routing_of(server, "c")["limit"]
    assert limit["refused_queue_full"] == statuses[429], limit
    assert limit["in_flight"] == 0 and limit["queued"] == 0


def test_config_mistakes_name_the_key_and_the_fix(run_ogx, tmp_path, upstreams):
    config = tmp_path / "bad.yaml"
    config.write_text(
        "version: 2\ndistro_name: bad\nproviders:\n  inference:\n"
        + provider("a", upstreams["a"].base_url)
        + "storage:\n  backends:\n    kv_default: {type: kv_sqlite, db_path: "
        + f"{tmp_path}/kv.db}}\n    sql_default: {{type: sql_sqlite, db_path: {tmp_path}/sql.db}}\n"
        + "  stores:\n    metadata: {backend: kv_default, namespace: registry}\n"
        + "    inference: {backend: sql_default, table_name: inference_store}\n"
        + "routing:\n  models:\n    m:\n      strategy: random\n"
        + f"      targets: [{target('a', 'x')}]\n")
    result = run_ogx(["run", "--dry-run", str(config)])
    assert result.returncode != 0
    assert "routing.models.m.strategy" in result.output
    assert "Use fallback, weighted or least_latency." in result.output
