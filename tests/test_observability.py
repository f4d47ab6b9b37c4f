"""What an operator watches ogx by: `GET /metrics` (read with the Prometheus client library's own
parser) after scripted traffic over two providers, streamed and not, with errors; the
per-request headers (`x-request-id`, `Server-Timing`, `x-ogx-overhead-ms`); and the JSON log,
read line by line, in which neither a configured secret nor a prompt appears."""

from __future__ import annotations

import json
import re

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mock_openai import MockOpenAI
from ogx_harness import free_port, sse_events, vllm_config, wait_until

SECRET_A = "sk-observability-first-0001"
SECRET_B = "sk-observability-second-0002"
# Every prompt carries it: it must reach the upstream and never the log.
PROMPT = "PROMPT-SENTINEL-7f3c"
MODEL = "vllm/my-model"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"

RESPONSES_PROVIDER = """
  responses:
  - provider_id: builtin
    provider_type: inline::builtin
    config:
      persistence:
        responses:
          table_name: responses
          backend: sql_default
"""


def second_provider(url: str) -> str:
    return f"""
  - provider_id: second
    provider_type: remote::vllm
    config:
      base_url: {url}
      api_token: {SECRET_B}
"""


@pytest.fixture(scope="module")
def first():
    with MockOpenAI(require_key=SECRET_A) as mock:
        yield mock


@pytest.fixture(scope="module")
def second():
    with MockOpenAI(require_key=SECRET_B) as mock:
        yield mock


@pytest.fixture(scope="module")
def server(first, second, module_ogx_server):
    config = vllm_config(first.base_url, distro_name="observability", api_token=SECRET_A,
                         apis=("inference", "models", "responses"),
                         more_providers=second_provider(second.base_url) + RESPONSES_PROVIDER)
    return module_ogx_server(config, env={"OGX_METRICS": "1", "OGX_LOG_FORMAT": "json"})


def chat(server, model: str, text: str, headers: dict | None = None, **extra) -> requests.Response:
    body = {"model": model, "messages": [{"role": "user", "content": f"{PROMPT} {text}"}], **extra}
    return server.post("/v1/chat/completions", json=body, headers=headers or {})


def metrics(url: str):
    response = requests.get(url + "/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return list(text_string_to_metric_families(response.text))


def sample(families, name: str, **labels) -> float:
    """The sum of the samples called `name` whose labels include `labels` (0 when none)."""
    return sum(s.value for family in families for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


@pytest.fixture(scope="module")
def traffic(server, first, second):
    """The scripted traffic, once per module; what the client saw of it."""
    wait_until(lambda: "second/mock-alpha" in server.get("/v1/models").text, 30,
               "the second provider's models listed")
    first.clear()
    second.clear()
    seen = {"usage": [], "streams": 0, "request_ids": []}

    answer = chat(server, MODEL, "plain one", headers={"x-request-id": "client-id-1",
                                                      "traceparent": TRACEPARENT})
    assert answer.status_code == 200, answer.text
    seen["first"] = answer
    seen["usage"].append(answer.json()["usage"])
    for i in range(2):
        with chat(server, MODEL, f"streamed {i}", stream=True,
                  stream_options={"include_usage": True}) as streamed:
            assert streamed.status_code == 200, streamed.text
            seen["stream_headers"] = streamed.headers
            events = [json.loads(e) for e in sse_events(streamed) if e != "[DONE]"]
        [usage] = [e["usage"] for e in events if e.get("usage")]
        seen["usage"].append(usage)
        seen["streams"] += 1

    response = server.post("/v1/responses", json={"model": MODEL, "input": f"{PROMPT} respond"})
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    seen["usage"].append({"prompt_tokens": usage["input_tokens"],
                          "completion_tokens": usage["output_tokens"]})

    listed = chat(server, "second/mock-alpha", "on the second provider")
    assert listed.status_code == 200, listed.text
    seen["second_listed"] = listed.json()["usage"]
    unlisted = chat(server, "second/not-a-listed-model", "unlisted")
    assert unlisted.status_code == 200, unlisted.text
    seen["second_unlisted"] = unlisted.json()["usage"]

    limited = chat(server, MODEL, "[mock:error=429]")
    assert limited.status_code == 429
    unknown = chat(server, "nowhere/model", "lost")
    assert unknown.status_code == 404
    return seen


def test_every_answer_carries_its_request_id_and_the_time_ogx_added(server, traffic):
    first = traffic["first"]
    assert first.headers["x-request-id"] == "client-id-1"
    added = float(first.headers["x-ogx-overhead-ms"])
    timing = first.headers["server-timing"]
    match = re.fullmatch(r'ogx;desc="gateway";dur=([\d.]+), upstream;dur=([\d.]+)', timing)
    assert match, timing
    assert float(match.group(1)) == added
    assert added >= 0 and float(match.group(2)) > 0
    assert float(traffic["stream_headers"]["x-ogx-overhead-ms"]) >= 0

    made = server.get("/v1/models")
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    not_found = server.get("/v1/nothing", headers={"x-request-id": "x" * 200})
    assert not_found.status_code == 404
    assert re.fullmatch(r"[0-9a-f]{32}", not_found.headers["x-request-id"])
    assert "x-ogx-overhead-ms" in not_found.headers


def test_metrics_count_the_traffic_by_route_status_and_provider(server, traffic, first, second):
    families = metrics(server.url)
    chat_route = {"api": "inference", "route": "/v1/chat/completions", "method": "POST"}
    # One plain chat, two streams, then the 429 — all on `vllm`.
    assert sample(families, "ogx_requests_total", **chat_route, status="success",
                  status_code="200", provider="vllm") == 3
    assert sample(families, "ogx_requests_total", **chat_route, status="error",
                  status_code="429", provider="vllm") == 1
    assert sample(families, "ogx_requests_total", **chat_route, status_code="200",
                  provider="second") == 2
    assert sample(families, "ogx_requests_total", **chat_route, status_code="404",
                  provider="") == 1
    assert sample(families, "ogx_requests_total", api="responses", route="/v1/responses",
                  status_code="200", provider="vllm") == 1
    assert sample(families, "ogx_request_duration_seconds_count", **chat_route) == 7
    # Only the scrape itself is in flight.
    assert sample(families, "ogx_concurrent_requests", api="inference") == 0
    assert sample(families, "ogx_concurrent_requests", api="telemetry") == 1

    # Each upstream exchange of a request, as the mocks saw them (listings are not requests).
    # On `vllm`: the plain chat, two streams, the Responses call, and the 429 tried three
    # times (two retries by default, README "Routing and failover").
    chats = lambda mock: len(mock.requests_to("/v1/chat/completions"))  # noqa: E731
    assert sample(families, "ogx_upstream_requests_total", provider="vllm") == chats(first) == 7
    assert sample(families, "ogx_upstream_requests_total", provider="second") == chats(second)


def test_metrics_hold_tokens_first_token_times_and_the_time_ogx_added(server, traffic):
    families = metrics(server.url)
    on_vllm = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "vllm",
               "gen_ai_request_model": MODEL}
    usage = traffic["usage"]
    assert sample(families, "gen_ai_client_token_usage_sum", **on_vllm,
                  gen_ai_token_type="input") == sum(u["prompt_tokens"] for u in usage)
    assert sample(families, "gen_ai_client_token_usage_sum", **on_vllm,
                  gen_ai_token_type="output") == sum(u["completion_tokens"] for u in usage)
    assert sample(families, "gen_ai_client_token_usage_count", **on_vllm,
                  gen_ai_token_type="input") == len(usage)
    # The two streams and the Responses call (streamed from the provider) had a first token.
    assert sample(families, "gen_ai_server_time_to_first_token_seconds_count", **on_vllm) == 3
    # The 429 is an operation with an error type.
    assert sample(families, "gen_ai_client_operation_duration_seconds_count", **on_vllm,
                  error_type="429") == 1

    # A listed model is its own label value; a model no registry lists is `other`.
    second = {"gen_ai_provider_name": "second", "gen_ai_token_type": "input"}
    assert sample(families, "gen_ai_client_token_usage_sum", **second,
                  gen_ai_request_model="second/mock-alpha") == \
        traffic["second_listed"]["prompt_tokens"]
    assert sample(families, "gen_ai_client_token_usage_sum", **second,
                  gen_ai_request_model="other") == traffic["second_unlisted"]["prompt_tokens"]
    assert not any("not-a-listed-model" in s.labels.get("gen_ai_request_model", "")
                   for f in families for s in f.samples)

    route = {"api": "inference", "route": "/v1/chat/completions"}
    added = sample(families, "ogx_gateway_added_seconds_sum", **route)
    total = sample(families, "ogx_request_duration_seconds_sum", **route)
    assert sample(families, "ogx_gateway_added_seconds_count", **route) == 7
    assert 0 < added < total
    assert sample(families, "ogx_plugin_instantiation_seconds_count", provider="vllm") >= 5
    assert sample(families, "ogx_plugin_call_seconds_count", provider="vllm",
                  outcome="error") >= 1


def test_the_history_queue_is_a_metric(server, traffic):
    # Successful chat completions are recorded: the plain one, two streams, two on `second`.
    wait_until(lambda: sample(metrics(server.url), "ogx_inference_store_writes_total") == 5,
               30, "five chat completions written")
    families = metrics(server.url)
    assert sample(families, "ogx_inference_store_write_queue_depth") == 0
    assert sample(families, "ogx_inference_store_writes_lost_total") == 0


def test_json_logs_parse_line_by_line_and_hold_no_secret_or_prompt(server, traffic):
    log = server.output()
    assert SECRET_A not in log and SECRET_B not in log
    assert PROMPT not in log
    # Log lines are JSON objects; stdout's start-up banner is the only other text.
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert not [line for line in log.splitlines()
                if re.match(r"^\S+\s+(TRACE|DEBUG|INFO|WARN|ERROR)\s", line)]
    requests_logged = [line for line in lines if line["target"] == "ogx::server::request"]
    [first] = [line for line in requests_logged if line["request_id"] == "client-id-1"]
    usage = traffic["first"].json()["usage"]
    assert first["trace_id"] == TRACE_ID
    assert first["route"] == "/v1/chat/completions" and first["status"] == 200
    assert first["provider"] == "vllm" and first["model"] == MODEL
    assert first["input_tokens"] == usage["prompt_tokens"]
    assert first["output_tokens"] == usage["completion_tokens"]
    assert first["duration_ms"] >= first["added_ms"] >= 0
    assert first["level"] == "info" and first["timestamp"]
    assert any(line["status"] == 429 for line in requests_logged)


def test_metrics_on_their_own_port_from_the_config_and_off_the_api_port(first, ogx_server):
    port = free_port()
    config = vllm_config(first.base_url, distro_name="metrics-port", api_token=SECRET_A,
                         more_sections=f"server:\n  metrics:\n    enabled: true\n    port: {port}\n")
    server = ogx_server(config)
    assert server.get("/metrics").status_code == 404
    assert chat(server, MODEL, "counted").status_code == 200
    families = metrics(f"http://127.0.0.1:{port}")
    assert sample(families, "ogx_requests_total", route="/v1/chat/completions",
                  provider="vllm") == 1


def test_bad_metrics_settings_stop_start_up_naming_them(first, run_ogx, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(vllm_config(first.base_url, distro_name="bad-metrics"))
    result = run_ogx(["run", str(config)], env={"OGX_METRICS": "maybe"})
    assert result.returncode != 0
    assert "OGX_METRICS" in result.output
    result = run_ogx(["run", str(config)], env={"OGX_LOG_FORMAT": "xml"})
    assert result.returncode != 0
    assert "OGX_LOG_FORMAT" in result.output
