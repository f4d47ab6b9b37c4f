"""The benchmark's paths (bench/paths.py) through the real ogx: every path's config, written as
bench/run.py writes it, starts ogx, the path's request gets the answer a client expects, and
what ogx sends upstream is the path's floor request (the request the floor proxy and the
upstream are measured with), so the benchmark compares like with like. The OpenAI-compatible
paths run against mock_openai.py, the Bedrock ones against mock_bedrock.py, which verifies the
SigV4 signature made with the keys the benchmark configures."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import requests

from aws_fixtures import bedrock_mock, endpoint_env  # noqa: F401
from mock_anthropic import MockAnthropic
from ogx_harness import sse_events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import paths as bench_paths  # noqa: E402

PATHS = {p.name: p for p in bench_paths.PATHS}


def is_bedrock(path: bench_paths.BenchPath) -> bool:
    return bench_paths.BEDROCK in path.fragments


def is_messages(path: bench_paths.BenchPath) -> bool:
    return path.request.route == "/v1/messages"


def start(ogx_server, path: bench_paths.BenchPath, upstream: str, tmp_path: Path, env=None):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    config = bench_paths.fill(bench_paths.ogx_config(path.fragments), upstream=upstream,
                              state=str(state))
    return ogx_server(json.dumps(config, indent=2), env=env, add_storage=False)


def send(server, path: bench_paths.BenchPath) -> requests.Response:
    return server.post(path.request.route, data=path.request.json(path.model),
                       headers={"Content-Type": "application/json", **dict(path.request.headers)},
                       stream=path.request.stream, timeout=30)


def check_answer(path: bench_paths.BenchPath, response: requests.Response) -> None:
    assert response.status_code == 200, response.text
    if path.request.stream:
        events = list(sse_events(response))
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    elif path.request.route == "/v1/responses":
        body = response.json()
        assert body["object"] == "response" and body["status"] == "completed", body
        assert body["model"] == path.model
        assert body["output"][0]["content"][0]["text"]
    else:
        body = response.json()
        assert body["object"] == "chat.completion"
        assert body["model"] == path.model
        assert body["choices"][0]["message"]["content"]


def check_upstream_request(path: bench_paths.BenchPath, sent: dict) -> None:
    """ogx sent upstream what the floor proxy is measured with: a chat completion for the
    upstream's model with the same prompt (the Responses API sends it as a text part), streamed
    exactly when the floor request is."""
    assert sent["model"] == bench_paths.UPSTREAM_MODEL
    assert bool(sent.get("stream")) == path.floor_request.stream
    content = sent["messages"][-1]["content"]
    if isinstance(content, list):
        content = "".join(part["text"] for part in content if part["type"] == "text")
    assert content == bench_paths.MESSAGES[-1]["content"]


@pytest.mark.parametrize("name", [n for n, p in PATHS.items()
                                  if not is_bedrock(p) and not is_messages(p)])
def test_openai_compatible_path(name, ogx_server, mock_upstream, tmp_path):
    path = PATHS[name]
    server = start(ogx_server, path, mock_upstream.url, tmp_path)
    check_answer(path, send(server, path))
    check_upstream_request(path, mock_upstream.last_request("/v1/chat/completions").json)
    metrics = server.get("/metrics")
    if bench_paths.METRICS_ON in path.fragments:
        assert 'ogx_requests_total{api="inference",route="/v1/chat/completions"' in metrics.text
    else:
        assert metrics.status_code == 404
    sent = mock_upstream.last_request("/v1/chat/completions").headers.get("traceparent")
    if bench_paths.TRACING_100PCT in path.fragments:
        # Traced (its exports fail: nothing listens on the bench's collector port).
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", sent or ""), sent
    elif bench_paths.TRACING_1PCT in path.fragments:
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", sent or ""), sent
    else:
        assert sent is None
    if bench_paths.GATEWAY_KEYS in path.fragments:
        # The declared key is what lets the request through: another gateway key is refused.
        wrong = server.post(path.request.route, data=path.request.json(path.model), timeout=30,
                            headers={"Content-Type": "application/json",
                                     "Authorization": "Bearer sk-ogx-" + "0" * 64})
        assert wrong.status_code == 401, wrong.text


@pytest.mark.parametrize("name", [n for n, p in PATHS.items() if is_bedrock(p)])
def test_bedrock_path(name, ogx_server, bedrock_mock, tmp_path):  # noqa: F811
    path = PATHS[name]
    keys = bench_paths.BEDROCK["providers"]["inference"][0]["config"]
    bedrock_mock.add_credentials(keys["aws_access_key_id"], keys["aws_secret_access_key"])
    server = start(ogx_server, path, bedrock_mock.url, tmp_path, env=endpoint_env(bedrock_mock))
    check_answer(path, send(server, path))
    if bench_paths.CONVERSE in path.fragments:
        # Translated: a Converse request for the path's model, the prompt as a text block.
        sent = bedrock_mock.last_converse_request()
        assert sent.auth == "sigv4" and sent.access_key_id == keys["aws_access_key_id"]
        assert sent.path.endswith("/converse-stream" if path.request.stream else "/converse")
        assert sent.json["messages"] == [
            {"role": "user", "content": [{"text": bench_paths.MESSAGES[-1]["content"]}]}]
        return
    sent = bedrock_mock.last_chat_request()
    assert sent.auth == "sigv4" and sent.access_key_id == keys["aws_access_key_id"]
    check_upstream_request(path, sent.json)


def check_message(path: bench_paths.BenchPath, response: requests.Response) -> None:
    """An answer in Anthropic's shape: a message with text, or its stream of events."""
    assert response.status_code == 200, response.text
    if path.request.stream:
        events = [json.loads(e) for e in sse_events(response)]
        assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
        assert "".join(e["delta"].get("text", "") for e in events
                       if e["type"] == "content_block_delta")
    else:
        body = response.json()
        assert body["type"] == "message" and body["role"] == "assistant", body
        assert [b["text"] for b in body["content"] if b["type"] == "text"] != [""]


@pytest.mark.parametrize("name", [n for n, p in PATHS.items()
                                  if is_messages(p) and p.floor_request == p.request])
def test_native_messages_path(name, ogx_server, tmp_path):
    """The native paths: what reaches the upstream's /v1/messages is the floor request itself
    (the same body, the upstream's model id), and the answer comes back in Anthropic's shape."""
    path = PATHS[name]
    with MockAnthropic() as upstream:
        server = start(ogx_server, path, upstream.url, tmp_path)
        check_message(path, send(server, path))
        sent = upstream.requests_to("/v1/messages")[-1].json
    assert sent == {**path.floor_request.body, "model": bench_paths.UPSTREAM_MODEL}


@pytest.mark.parametrize("name", [n for n, p in PATHS.items()
                                  if is_messages(p) and p.floor_request != p.request])
def test_translated_messages_path(name, ogx_server, mock_upstream, tmp_path):
    """The translated path: one chat completion upstream, which is the path's floor request."""
    path = PATHS[name]
    server = start(ogx_server, path, mock_upstream.url, tmp_path)
    check_message(path, send(server, path))
    check_upstream_request(path, mock_upstream.last_request("/v1/chat/completions").json)


def test_floor_requests_are_shared():
    """Paths with equal floor requests share one floor measurement; the Responses path is
    compared with the streamed chat completion it makes upstream."""
    assert PATHS["responses"].floor_request.key == PATHS["vllm-stream"].request.key
    assert PATHS["vllm"].floor_request.key == PATHS["bedrock"].floor_request.key
    assert PATHS["vllm"].floor_request.key != PATHS["vllm-stream"].floor_request.key


def test_fragments_merge_into_the_base():
    """Mappings merge key by key, lists are appended without repeats; the base is untouched."""
    config = bench_paths.ogx_config((bench_paths.VLLM, bench_paths.RESPONSES,
                                     bench_paths.HISTORY_OFF))
    assert config["apis"] == ["inference", "models", "responses"]
    assert config["storage"]["stores"]["inference"] == {
        "table_name": "inference_store", "backend": "sql_default", "enabled": False}
    assert [p["provider_id"] for p in config["providers"]["inference"]] == ["vllm"]
    assert "enabled" not in bench_paths.BASE_CONFIG["storage"]["stores"]["inference"]
    both = bench_paths.ogx_config(bench_paths.STARTUP_FRAGMENTS)
    assert [m["provider_id"] for m in both["registered_resources"]["models"]] == ["vllm", "bedrock"]


def test_select_names_unknown_paths():
    assert [p.name for p in bench_paths.select("bedrock,vllm")] == ["vllm", "bedrock"]
    with pytest.raises(ValueError, match="unknown path"):
        bench_paths.select("vllm,converse")
