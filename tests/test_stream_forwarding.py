"""A streamed chat answer is forwarded event by event as the upstream sends it, never held back
until more arrives: the upstream here sends each chunk only after the client has received the
one before it through ogx. If ogx buffered, the upstream would wait in vain and the order of
what was sent and what was received would show it. `data: [DONE]` reaches the client last."""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loopback_server import LoopbackServer
from ogx_harness import vllm_config

PIECES = ["Chunks ", "arrive ", "one ", "by ", "one."]
# How long the upstream waits for the client to see a chunk before it sends the next anyway.
# Only reached when ogx buffers; the test then fails on the recorded order.
GATE_TIMEOUT_S = 10.0


class GatedUpstream(LoopbackServer):
    """An OpenAI-compatible streaming upstream that sends chunk i + 1 only once `received(i)`
    was called (or `GATE_TIMEOUT_S` passed), and records what happened in `events`."""

    thread_name = "gated-upstream"

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []
        self.gates = [threading.Event() for _ in PIECES]
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps({"object": "list", "data": [
                    {"id": "gated", "object": "model", "created": 0, "owned_by": "test"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for index, piece in enumerate(PIECES):
                    # Recorded before the write, so the client cannot record first.
                    upstream.record("upstream sends", index)
                    self._event(json.dumps({
                        "id": "chatcmpl-gated", "object": "chat.completion.chunk", "created": 0,
                        "model": "gated", "choices": [{"index": 0, "delta": {"content": piece},
                                                        "finish_reason": None}]}))
                    if not upstream.gates[index].wait(GATE_TIMEOUT_S):
                        upstream.record("upstream gave up waiting for the client", index)
                self._event("[DONE]")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def _event(self, payload: str) -> None:
                data = f"data: {payload}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

        super().__init__(ThreadingHTTPServer(("127.0.0.1", 0), Handler), "127.0.0.1")

    @property
    def requests(self) -> list:
        return []

    def record(self, what: str, index: int) -> None:
        with self._lock:
            self.events.append((what, index))

    def received(self, index: int) -> None:
        self.record("client received", index)
        self.gates[index].set()


@pytest.fixture
def upstream():
    server = GatedUpstream().start()
    yield server
    for gate in server.gates:
        gate.set()
    server.stop()


def test_each_chunk_reaches_the_client_before_the_upstream_sends_the_next(ogx_server, upstream):
    server = ogx_server(vllm_config(f"{upstream.url}/v1", distro_name="stream-forwarding"))
    host, port = server.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("POST", "/v1/chat/completions", headers={"Content-Type": "application/json"},
                 body=json.dumps({"model": "vllm/gated", "stream": True,
                                  "messages": [{"role": "user", "content": "stream, please"}]}))
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("content-type").startswith("text/event-stream")

    payloads = []
    while line := response.readline():
        if not line.startswith(b"data:"):
            continue
        payload = line[5:].strip().decode()
        payloads.append(payload)
        if payload != "[DONE]":
            chunk = json.loads(payload)
            upstream.received(PIECES.index(chunk["choices"][0]["delta"]["content"]))
    conn.close()

    expected = [step for index in range(len(PIECES))
                for step in (("upstream sends", index), ("client received", index))]
    assert upstream.events == expected
    assert payloads[-1] == "[DONE]"
    assert "".join(json.loads(p)["choices"][0]["delta"]["content"]
                   for p in payloads[:-1]) == "".join(PIECES)
