"""OpenTelemetry traces: ogx exports OTLP/HTTP protobuf to a collector on 127.0.0.1
(otlp_collector.py, decoding with `opentelemetry-proto`) and propagates W3C `traceparent`.

A chat, a streamed chat and a Responses call each arrive as a SERVER span with the GenAI
attributes, a plugin-call span under it and a CLIENT span per upstream exchange under that; a
client's `traceparent` is honoured and the upstream (mock_openai.py, which records headers)
receives the CLIENT span's context. Retries show as one span per attempt. No prompt text is in
any span, the collector's header secret never reaches ogx's log, a sampler that is off exports
nothing, an unsupported protocol stops start-up, and a collector that fails or hangs does not
touch answers. With tracing off, a client's `traceparent` goes upstream unchanged."""

from __future__ import annotations

import json
import re

import pytest
import requests

from mock_openai import MockOpenAI
from ogx_harness import default_storage_yaml, sse_events, vllm_config, wait_until
from otlp_collector import OtlpCollector

PROMPT = "PROMPT-SENTINEL-trace-91c2"
MODEL = "vllm/my-model"
UPSTREAM_MODEL = "upstream-model"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
COLLECTOR_SECRET = "collector-secret-5d1e"
SERVER, INTERNAL, CLIENT = 2, 1, 3
STATUS_ERROR = 2

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


def config(upstream: MockOpenAI, distro: str, more_sections: str = "") -> str:
    return vllm_config(upstream.base_url, distro_name=distro,
                       apis=("inference", "models", "responses"),
                       more_providers=RESPONSES_PROVIDER, more_sections=more_sections)


def otel_env(collector: OtlpCollector, **more: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_EXPORTER_OTLP_HEADERS": f"authorization=Bearer%20{COLLECTOR_SECRET}",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_SERVICE_NAME": "ogx-under-test",
            "OGX_LOG_FORMAT": "json", **more}


def chat(server, text: str, request_id: str, headers: dict | None = None, **extra):
    body = {"model": MODEL, "messages": [{"role": "user", "content": f"{PROMPT} {text}"}],
            **extra}
    return server.post("/v1/chat/completions", json=body,
                       headers={"x-request-id": request_id, **(headers or {})},
                       stream=bool(extra.get("stream")))


def server_span(collector: OtlpCollector, request_id: str):
    """The SERVER span of the request `request_id`, once it has been exported."""
    def find():
        return next((s for s in collector.spans()
                     if s.kind == SERVER and s.attributes.get("ogx.request_id") == request_id),
                    None)
    return wait_until(find, 30, f"the server span of {request_id}")


def children(collector: OtlpCollector, parent) -> list:
    return sorted((s for s in collector.spans()
                   if s.trace_id == parent.trace_id and s.parent_span_id == parent.span_id),
                  key=lambda s: s.start)


def tree(collector: OtlpCollector, request_id: str):
    """(server span, its plugin-call spans, each plugin call's CLIENT spans)."""
    root = server_span(collector, request_id)
    calls = children(collector, root)
    assert calls and all(c.kind == INTERNAL and c.name == "ogx.plugin.call" for c in calls), calls
    return root, calls, [children(collector, c) for c in calls]


@pytest.fixture(scope="module")
def collector():
    with OtlpCollector() as c:
        yield c


@pytest.fixture(scope="module")
def upstream():
    with MockOpenAI() as mock:
        yield mock


@pytest.fixture(scope="module")
def traced(collector, upstream, module_ogx_server):
    return module_ogx_server(config(upstream, "tracing"), env=otel_env(collector))


def check_exchange(span, upstream: MockOpenAI, path: str, status: int = 200) -> None:
    assert span.kind == CLIENT and span.name == "POST", span
    attributes = span.attributes
    assert attributes["http.request.method"] == "POST"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == upstream.port
    assert attributes["url.full"] == f"{upstream.url}{path}"
    assert attributes["http.response.status_code"] == status


def check_genai(span, answer_usage: dict, streamed: bool = False) -> None:
    attributes = span.attributes
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] in (MODEL, UPSTREAM_MODEL), attributes
    assert attributes["gen_ai.provider.name"] == "vllm"
    assert attributes["ogx.provider.id"] == "vllm"
    assert attributes["gen_ai.usage.input_tokens"] == answer_usage["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == answer_usage["completion_tokens"]


def test_a_chat_under_a_client_traceparent(traced, collector, upstream):
    answer = chat(traced, "plain", "trace-chat-1", headers={"traceparent": TRACEPARENT})
    assert answer.status_code == 200, answer.text
    root, [call], [[exchange]] = tree(collector, "trace-chat-1")

    # The client's trace continues: same trace id, the server span a child of the client's.
    assert root.trace_id == TRACE_ID and root.parent_span_id == CLIENT_SPAN
    assert root.name == "POST /v1/chat/completions"
    assert root.resource["service.name"] == "ogx-under-test"
    assert root.scope == "ogx"
    attributes = root.attributes
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/v1/chat/completions"
    assert attributes["url.path"] == "/v1/chat/completions"
    assert attributes["http.response.status_code"] == 200
    check_genai(root, answer.json()["usage"])
    assert root.start <= call.start <= exchange.start <= exchange.end <= call.end <= root.end

    assert call.attributes["ogx.provider.id"] == "vllm"
    assert call.attributes["ogx.attempt"] == 1
    check_exchange(exchange, upstream, "/v1/chat/completions")
    assert "http.request.resend_count" not in exchange.attributes
    # The upstream saw the trace, its parent being the CLIENT span.
    sent = upstream.last_request("/v1/chat/completions").headers["traceparent"]
    assert sent == f"00-{TRACE_ID}-{exchange.span_id}-01"


def test_a_streamed_chat_starts_its_own_trace(traced, collector, upstream):
    with chat(traced, "streamed", "trace-stream-1", stream=True,
              stream_options={"include_usage": True}) as streamed:
        assert streamed.status_code == 200, streamed.text
        events = [json.loads(e) for e in sse_events(streamed) if e != "[DONE]"]
    [usage] = [e["usage"] for e in events if e.get("usage")]
    root, [call], [[exchange]] = tree(collector, "trace-stream-1")
    assert root.parent_span_id == "" and re.fullmatch("[0-9a-f]{32}", root.trace_id)
    assert root.trace_id != TRACE_ID
    check_genai(root, usage, streamed=True)
    check_exchange(exchange, upstream, "/v1/chat/completions")
    # The stream's spans last until its end.
    assert exchange.end <= call.end <= root.end
    sent = upstream.last_request("/v1/chat/completions").headers["traceparent"]
    assert sent == f"00-{root.trace_id}-{exchange.span_id}-01"


def test_a_responses_call_is_one_trace(traced, collector, upstream):
    response = traced.post("/v1/responses", json={"model": MODEL, "input": f"{PROMPT} respond"},
                           headers={"x-request-id": "trace-responses-1",
                                    "traceparent": TRACEPARENT})
    assert response.status_code == 200, response.text
    root, calls, exchanges = tree(collector, "trace-responses-1")
    assert root.trace_id == TRACE_ID and root.parent_span_id == CLIENT_SPAN
    assert root.attributes["http.route"] == "/v1/responses"
    assert root.attributes["gen_ai.operation.name"] == "chat"
    assert root.attributes["gen_ai.request.model"] == MODEL
    usage = response.json()["usage"]
    assert root.attributes["gen_ai.usage.input_tokens"] == usage["input_tokens"]
    assert root.attributes["gen_ai.usage.output_tokens"] == usage["output_tokens"]
    for exchange in (e for group in exchanges for e in group):
        check_exchange(exchange, upstream, "/v1/chat/completions")
    sent = upstream.last_request("/v1/chat/completions").headers["traceparent"]
    assert sent == f"00-{TRACE_ID}-{exchanges[-1][-1].span_id}-01"


def test_a_retry_is_a_span_of_its_own(traced, collector, upstream):
    upstream.queue("[mock:error=503]")
    answer = chat(traced, "retried", "trace-retry-1")
    assert answer.status_code == 200, answer.text
    root, calls, exchanges = tree(collector, "trace-retry-1")
    assert [c.attributes["ogx.attempt"] for c in calls] == [1, 2]
    assert calls[0].status_code == STATUS_ERROR and calls[1].status_code != STATUS_ERROR
    [[failed], [retried]] = exchanges
    check_exchange(failed, upstream, "/v1/chat/completions", status=503)
    assert failed.status_code == STATUS_ERROR and failed.attributes["error.type"] == "503"
    check_exchange(retried, upstream, "/v1/chat/completions")
    assert retried.attributes["http.request.resend_count"] == 1
    assert root.attributes["http.response.status_code"] == 200
    assert root.attributes["ogx.upstream_requests"] == 2
    sent = [r.headers["traceparent"] for r in upstream.requests_to("/v1/chat/completions")[-2:]]
    assert sent == [f"00-{root.trace_id}-{failed.span_id}-01",
                    f"00-{root.trace_id}-{retried.span_id}-01"]


def test_no_prompt_in_spans_and_no_collector_secret_in_the_log(traced, collector):
    # After the other tests' traffic (and at least this request).
    answer = chat(traced, "last", "trace-last-1")
    assert answer.status_code == 200, answer.text
    server_span(collector, "trace-last-1")
    exports = collector.requests
    assert exports and all(e.path == "/v1/traces" for e in exports)
    assert all(e.headers["content-type"] == "application/x-protobuf" for e in exports)
    # The collector got the secret (percent-decoded), so it was really sent...
    assert exports[0].headers["authorization"] == f"Bearer {COLLECTOR_SECRET}"
    # ...and no span holds any prompt text, and the log never shows the secret.
    for export in exports:
        assert PROMPT.encode() not in export.request.SerializeToString()
    assert COLLECTOR_SECRET not in traced.output()
    # The request's log line carries the trace id of its server span.
    lines = [json.loads(line) for line in traced.output().splitlines() if line.startswith("{")]
    [line] = [line for line in lines if line["target"] == "ogx::server::request"
              and line["request_id"] == "trace-last-1"]
    assert line["trace_id"] == server_span(collector, "trace-last-1").trace_id


def test_a_sampler_that_is_off_exports_nothing_but_still_propagates(
        collector, upstream, ogx_server):
    with OtlpCollector() as quiet:
        server = ogx_server(config(upstream, "tracing-off"),
                            env=otel_env(quiet, OTEL_TRACES_SAMPLER="always_off"))
        answer = chat(server, "unsampled", "trace-off-1", headers={"traceparent": TRACEPARENT})
        assert answer.status_code == 200, answer.text
        sent = upstream.last_request("/v1/chat/completions").headers["traceparent"]
        assert re.fullmatch(f"00-{TRACE_ID}-[0-9a-f]{{16}}-00", sent), sent
        # Stopping ogx flushes its exporter: anything recorded would have been sent by now.
        server.stop()
        assert quiet.requests == []


def test_spans_queued_at_shutdown_are_flushed(upstream, ogx_server):
    with OtlpCollector() as late:
        server = ogx_server(config(upstream, "tracing-flush"),
                            env=otel_env(late, OTEL_BSP_SCHEDULE_DELAY="600000"))
        answer = chat(server, "flushed", "trace-flush-1")
        assert answer.status_code == 200, answer.text
        server.stop()
        # The readiness checks' GET /v1/health has a span too; the chat's trace is whole.
        [root] = [s for s in late.spans() if s.attributes.get("ogx.request_id") == "trace-flush-1"]
        kinds = sorted(s.kind for s in late.spans() if s.trace_id == root.trace_id)
        assert kinds == [INTERNAL, SERVER, CLIENT], kinds


@pytest.mark.parametrize("broken", ["status-500", "hangs"])
def test_a_broken_collector_does_not_touch_answers(broken, upstream, ogx_server):
    collector = OtlpCollector(status=500) if broken == "status-500" else OtlpCollector(hang=True)
    with collector:
        server = ogx_server(config(upstream, f"tracing-{broken}"),
                            env=otel_env(collector, OTEL_EXPORTER_OTLP_TIMEOUT="300"))
        for i in range(3):
            answer = chat(server, f"broken {i}", f"trace-broken-{i}")
            assert answer.status_code == 200, answer.text
            if i == 0:
                wait_until(lambda: collector.requests, 30, "an export to the broken collector")
        wait_until(lambda: "trace export failed" in server.output(), 30, "the export warning")
        assert COLLECTOR_SECRET not in server.output()
        server.stop()


def test_an_unsupported_protocol_stops_start_up(upstream, run_ogx, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(config(upstream, "tracing-grpc") + default_storage_yaml(tmp_path))
    result = run_ogx(["run", str(path)], env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    assert result.returncode != 0
    assert "OTEL_EXPORTER_OTLP_PROTOCOL" in result.output and "http/protobuf" in result.output


def test_capture_content_is_refused_naming_the_key(upstream, run_ogx, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(config(upstream, "tracing-content",
                           more_sections="server:\n  tracing:\n    capture_content: true\n")
                    + default_storage_yaml(tmp_path))
    result = run_ogx(["run", str(path)])
    assert result.returncode != 0
    assert "server.tracing.capture_content" in result.output


def test_with_tracing_off_a_client_traceparent_is_forwarded_unchanged(upstream, ogx_server):
    server = ogx_server(config(upstream, "tracing-none"))
    answer = chat(server, "forwarded", "trace-none-1", headers={"traceparent": TRACEPARENT})
    assert answer.status_code == 200, answer.text
    assert upstream.last_request("/v1/chat/completions").headers["traceparent"] == TRACEPARENT
    answer = chat(server, "no header", "trace-none-2")
    assert answer.status_code == 200, answer.text
    assert "traceparent" not in upstream.last_request("/v1/chat/completions").headers
    assert requests.get(server.url + "/metrics", timeout=30).status_code == 404


def test_the_config_block_alone_turns_tracing_on_without_a_warning(upstream, collector,
                                                                     ogx_server):
    """`server.tracing` in the run config, no OTEL_* variable: spans reach its endpoint, and the
    key is known (no `unknown key` warning at start-up)."""
    block = (f"server:\n  tracing:\n    endpoint: {collector.traces_url}\n"
             f"    sample_ratio: 1.0\n")
    server = ogx_server(config(upstream, "tracing-config", more_sections=block))
    answer = chat(server, "from the config block", "trace-config-1")
    assert answer.status_code == 200, answer.text
    server.stop()  # flushes the batch
    assert server_span(collector, "trace-config-1").name == "POST /v1/chat/completions"
    assert "unknown key 'server.tracing'" not in server.output()
