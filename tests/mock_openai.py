#!/usr/bin/env python3
"""An OpenAI-compatible upstream for the end-to-end tests: a small, deterministic stand-in for
vLLM / OpenAI / Bedrock's OpenAI endpoint, on 127.0.0.1 only.

Run it by hand:    python3 tests/mock_openai.py --port 8000 [--host 127.0.0.1] [--require-key KEY]
Use it in a test:  with MockOpenAI() as mock: ... mock.base_url ... mock.last_request(...)

Routes (all under /v1; anything else is a 404 with an OpenAI error body):
  GET  /v1/models            the models given to the constructor (default: DEFAULT_MODELS)
  POST /v1/chat/completions  answer_for(<last user message>), streamed word by word when
                             "stream": true (SSE chunks, then `data: [DONE]`)
  POST /v1/completions       answer_for(<prompt>), streamed the same way
  POST /v1/embeddings        embedding_for(<each input>, dimensions or 8)

Every answer echoes the request's `model`, carries an `id` and `usage`, and (non-stream) an
extra field EXTRA_FIELD that no OpenAI schema knows, to check that ogx passes it through.

`prefix` moves the OpenAI routes (default "/v1"; Databricks serves them under
"/serving-endpoints", Gemini under "/v1beta/openai"). `flavor` adds what one upstream does
differently, as its public API documents it:
  "together"    GET {prefix}/models answers a bare JSON array
  "anthropic"   GET /v1/models is Anthropic's native, paged listing (`limit`, `after_id`,
                `has_more`, `last_id`; at most `page_size` models a page, default 1000 as
                Anthropic's); it needs `anthropic-version` and checks `x-api-key` (not
                `Authorization`) against require_key
  "databricks"  GET /api/2.0/serving-endpoints: {"endpoints": [{"name": ...}]}
  "tei"         GET /info: {"model_id": <first model>, ...}; no GET /v1/models
  "gemini"      every stream chunk carries `usage` (running totals), as Gemini's does

Scripted behaviours, switched on by a marker anywhere in the last user message (chat), the
prompt (completions) or the first input (embeddings):
  [mock:error=429]        answer that HTTP status with an OpenAI error body whose message is
                          error_message(429); any status 400-599 works
  [mock:fail-mid-stream]  stream: send two content chunks, then reset the connection without
                          ending the chunked body; non-stream: reset before answering
  [mock:slow=0.2]         wait that many seconds before each stream chunk (and before a
                          non-stream answer)
  [mock:no-usage]         embeddings: answer without `usage` (Together's and Gemini's
                          embedding models do)
  [mock:retry-after=2]    with [mock:error=...]: send `Retry-After: 2` with the error
Markers may also come from the mock itself, for routing tests where the same request reaches
several upstreams: `mock.behave("[mock:error=503]")` applies markers to every request until
changed (`mock.behave()` clears them), and `mock.queue("[mock:error=429]", ...)` gives the next
requests one marker string each, in order.
Scripted turns (scripted_turns.py): `mock.script(Turn(...), ...)` queues answers that chat
requests take in order — text, reasoning (`reasoning_content`), function calls, a stream that
breaks — before falling back to the behaviour above.
With require_key (--require-key), every request without `Authorization: Bearer <key>` gets 401
(require_key may also be a tuple of keys, any of which is accepted).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import re
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from loopback_server import LoopbackHandler, LoopbackServer, text_of
from scripted_turns import Script, Turn

DEFAULT_MODELS = ("mock-alpha", "mock-beta")
EXTRA_FIELD = "x_mock_upstream"
EXTRA_FIELD_VALUE = {"served_by": "mock_openai", "note": "not an OpenAI field"}
DEFAULT_EMBEDDING_DIMENSIONS = 8

_MARKER = re.compile(r"\[mock:([a-z-]+)(?:=([^\]]*))?\]")


def answer_for(text: str) -> str:
    """The deterministic answer to a chat message or completion prompt."""
    return f"You said: {text}"


def error_message(status: int) -> str:
    """The message of the OpenAI error body sent for `[mock:error=<status>]`."""
    return f"Mock upstream refused the request with status {status}"


def embedding_for(text: str, dimensions: int = DEFAULT_EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic vector derived from the text."""
    values: list[float] = []
    for block in itertools.count():
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        values.extend(round(byte / 255, 6) for byte in digest)
        if len(values) >= dimensions:
            return values[:dimensions]
    raise AssertionError("unreachable")


def stream_pieces(text: str) -> list[str]:
    """How a streamed answer is split: one piece per word, each with its leading spaces."""
    return re.findall(r"\s*\S+", text)


def usage_for(prompt_words: int, answer: str) -> dict[str, int]:
    completion = len(answer.split())
    return {"prompt_tokens": prompt_words, "completion_tokens": completion,
            "total_tokens": prompt_words + completion}


def _markers(text: str) -> dict[str, str]:
    return {name: value or "" for name, value in _MARKER.findall(text)}


@dataclass
class RecordedRequest:
    """One request as the upstream saw it. `headers` keys are lower-case."""
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any = None
    # The JSON answer (or error body) sent; for a stream, every chunk it was going to send.
    response: Any = None
    # For a stream, the chunks actually sent (fewer than `response` when it failed mid-way).
    stream_chunks: list = field(default_factory=list)
    # The markers applied to it (its own and the mock's).
    markers: dict = field(default_factory=dict)
    # When it arrived (time.monotonic()).
    at: float = field(default_factory=time.monotonic)


class _Handler(LoopbackHandler):
    server: "_Server"

    # -- plumbing --------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.verbose:
            sys.stderr.write("mock_openai: " + (format % args) + "\n")

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def _send_error(self, status: int, message: str, error_type: str = "invalid_request_error",
                    code: str | None = None) -> dict:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
        self._send_json(status, body)
        return body

    def _reset_connection(self) -> None:
        """Close abruptly (TCP reset), leaving any chunked body unterminated."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    # -- dispatch --------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        self.server.enter()
        try:
            self._dispatch()
        finally:
            self.server.leave()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        record = RecordedRequest(
            method=self.command, path=url.path, query=url.query,
            headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        if body:
            try:
                record.json = json.loads(body)
            except ValueError:
                record.json = None
        self.server.record(record)

        flavor, prefix = self.server.flavor, self.server.prefix
        native = {
            ("anthropic", "GET", "/v1/models"): self._anthropic_models,
            ("databricks", "GET", "/api/2.0/serving-endpoints"): self._databricks_endpoints,
            ("tei", "GET", "/info"): self._tei_info,
        }.get((flavor, self.command, url.path))
        keys = self.server.require_key
        if keys is not None:
            keys = (keys,) if isinstance(keys, str) else tuple(keys)
            if native == self._anthropic_models:
                presented = self.headers.get("x-api-key")
            else:
                auth = self.headers.get("Authorization") or ""
                presented = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            if presented not in keys:
                record.response = self._send_error(401, "Incorrect API key provided",
                                                   code="invalid_api_key")
                return
        if native is not None:
            native(record)
            return

        routes = {
            ("GET", f"{prefix}/models"): self._models,
            ("POST", f"{prefix}/chat/completions"): self._chat_completions,
            ("POST", f"{prefix}/completions"): self._completions,
            ("POST", f"{prefix}/embeddings"): self._embeddings,
        }
        if flavor == "tei":
            routes.pop(("GET", f"{prefix}/models"))
        route = routes.get((self.command, url.path))
        if route is None:
            record.response = self._send_error(
                404, f"Mock upstream has no route {self.command} {url.path}")
            return
        if self.command == "POST" and not isinstance(record.json, dict):
            record.response = self._send_error(400, "Mock upstream could not parse the JSON body")
            return
        route(record)

    # -- routes ----------------------------------------------------------------------------
    def _models(self, record: RecordedRequest) -> None:
        now = int(time.time())
        entries = [{"id": m, "object": "model", "created": now, "owned_by": "mock"}
                   for m in self.server.models]
        if self.server.flavor == "together":
            record.response = [{**e, "type": "chat"} for e in entries]
        else:
            record.response = {"object": "list", "data": entries}
        self._send_json(200, record.response)

    def _anthropic_models(self, record: RecordedRequest) -> None:
        if not self.headers.get("anthropic-version"):
            record.response = self._send_error(400, "anthropic-version: header is required")
            return
        query = parse_qs(record.query)
        limit = min(int(query.get("limit", ["20"])[0]), self.server.page_size)
        models = list(self.server.models)
        start = models.index(query["after_id"][0]) + 1 if "after_id" in query else 0
        page = models[start:start + limit]
        record.response = {
            "data": [{"type": "model", "id": m, "display_name": m,
                      "created_at": "2025-01-01T00:00:00Z"} for m in page],
            "has_more": start + limit < len(models),
            "first_id": page[0] if page else None, "last_id": page[-1] if page else None}
        self._send_json(200, record.response)

    def _databricks_endpoints(self, record: RecordedRequest) -> None:
        record.response = {"endpoints": [{"name": m, "state": {"ready": "READY"}}
                                         for m in self.server.models]}
        self._send_json(200, record.response)

    def _tei_info(self, record: RecordedRequest) -> None:
        record.response = {"model_id": self.server.models[0], "model_dtype": "float32",
                           "max_input_length": 512, "version": "1.8.0"}
        self._send_json(200, record.response)

    def _scripted(self, record: RecordedRequest, text: str) -> tuple[bool, float]:
        """Applies the markers in `text` and the mock's own (see `behave` and `queue`).
        Returns (already answered, delay per chunk)."""
        markers = _markers(self.server.markers_for_request() + text)
        record.markers = markers
        if "error" in markers:
            status = int(markers["error"])
            body = {"error": {"message": error_message(status), "type": "mock_error",
                              "param": None, "code": str(status)}}
            retry_after = markers.get("retry-after")
            self._send_json(status, body, {"Retry-After": retry_after} if retry_after else None)
            record.response = body
            return True, 0.0
        if "fail-mid-stream" in markers and not record.json.get("stream"):
            self._reset_connection()
            return True, 0.0
        return False, float(markers.get("slow") or 0)

    def _chat_completions(self, record: RecordedRequest) -> None:
        req = record.json
        messages = req.get("messages") or []
        turn = self.server.script.next(lambda: self.server.next_id("call"), req)
        if turn is not None:
            self._scripted_turn(record, turn)
            return
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        text = text_of(users[-1].get("content")) if users else ""
        answered, delay = self._scripted(record, text)
        if answered:
            return
        answer = answer_for(text)
        prompt_words = sum(len(text_of(m.get("content")).split())
                           for m in messages if isinstance(m, dict))
        usage = usage_for(prompt_words, answer)
        completion_id = self.server.next_id("chatcmpl-mock")
        created = int(time.time())
        model = req.get("model")
        if not req.get("stream"):
            time.sleep(delay)
            record.response = {
                "id": completion_id, "object": "chat.completion", "created": created,
                "model": model, "system_fingerprint": "fp_mock",
                "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": answer}}],
                "usage": usage, EXTRA_FIELD: EXTRA_FIELD_VALUE}
            self._send_json(200, record.response)
            return

        def chunk(delta: dict, finish_reason: str | None) -> dict:
            return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model, "system_fingerprint": "fp_mock",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                 "logprobs": None}]}

        pieces = stream_pieces(answer)
        chunks = [chunk({"role": "assistant", "content": pieces[0]}, None)]
        chunks += [chunk({"content": p}, None) for p in pieces[1:]]
        chunks.append(chunk({}, "stop"))
        if self.server.flavor == "gemini":
            # Gemini: running usage on every chunk.
            for n, c in enumerate(chunks, start=1):
                done = len(" ".join(pieces[:n]).split())
                c["usage"] = {"prompt_tokens": prompt_words, "completion_tokens": done,
                              "total_tokens": prompt_words + done}
        elif (req.get("stream_options") or {}).get("include_usage"):
            chunks.append({**chunk({}, None), "choices": [], "usage": usage})
        self._stream(record, chunks, delay, fail_after=2 if "fail-mid-stream" in
                     record.markers else None)

    def _scripted_turn(self, record: RecordedRequest, turn: Turn) -> None:
        answer = turn.answer(record.json, self.server.next_id("chatcmpl-mock"))
        if isinstance(answer, dict):
            record.response = answer
            self._send_json(200, answer)
        else:
            self._stream(record, answer, 0.0, fail_after=2 if turn.fail_mid_stream else None)

    def _completions(self, record: RecordedRequest) -> None:
        req = record.json
        prompt = req.get("prompt")
        text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
        answered, delay = self._scripted(record, text)
        if answered:
            return
        answer = answer_for(text)
        usage = usage_for(len(text.split()), answer)
        completion_id = self.server.next_id("cmpl-mock")
        created = int(time.time())

        def body(piece: str, finish_reason: str | None) -> dict:
            return {"id": completion_id, "object": "text_completion", "created": created,
                    "model": req.get("model"),
                    "choices": [{"index": 0, "text": piece, "finish_reason": finish_reason,
                                 "logprobs": None}]}

        if not req.get("stream"):
            time.sleep(delay)
            record.response = {**body(answer, "stop"), "usage": usage,
                               EXTRA_FIELD: EXTRA_FIELD_VALUE}
            self._send_json(200, record.response)
            return
        chunks = [body(p, None) for p in stream_pieces(answer)] + [body("", "stop")]
        self._stream(record, chunks, delay,
                     fail_after=2 if "fail-mid-stream" in record.markers else None)

    def _embeddings(self, record: RecordedRequest) -> None:
        req = record.json
        inputs = req.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        texts = [i if isinstance(i, str) else json.dumps(i) for i in inputs]
        answered, _ = self._scripted(record, texts[0] if texts else "")
        if answered:
            return
        dims = int(req.get("dimensions") or DEFAULT_EMBEDDING_DIMENSIONS)
        tokens = sum(len(t.split()) for t in texts)
        record.response = {
            "object": "list", "model": req.get("model"),
            "data": [{"object": "embedding", "index": i, "embedding": embedding_for(t, dims)}
                     for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        if "no-usage" in _markers(texts[0] if texts else ""):
            del record.response["usage"]
        self._send_json(200, record.response)

    def _stream(self, record: RecordedRequest, chunks: list[dict], delay: float,
                fail_after: int | None) -> None:
        record.response = chunks
        self._start_sse()
        for n, c in enumerate(chunks):
            if fail_after is not None and n == fail_after:
                # Let the client read what was sent: a reset can discard unread data.
                time.sleep(0.3)
                self._reset_connection()
                return
            time.sleep(delay)
            self._send_sse(json.dumps(c))
            record.stream_chunks.append(c)
        self._end_sse()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], require_key: str | tuple[str, ...] | None,
                 models: tuple[str, ...], verbose: bool, flavor: str = "openai",
                 prefix: str = "/v1", page_size: int = 1000) -> None:
        super().__init__(address, _Handler)
        self.page_size = page_size
        self.require_key = require_key
        self.flavor = flavor
        self.prefix = prefix
        self.models = tuple(models)
        self.verbose = verbose
        self.recorded: list[RecordedRequest] = []
        self.script = Script()
        self.behaviour = ""
        self.queued: list[str] = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._connections: set[socket.socket] = set()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.recorded.append(request)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def markers_for_request(self) -> str:
        """The mock's markers for the request being answered: the next queued string, if
        any, then the standing behaviour."""
        with self._lock:
            queued = self.queued.pop(0) if self.queued else ""
            return queued + self.behaviour

    def next_id(self, prefix: str) -> str:
        with self._lock:
            return f"{prefix}-{next(self._ids)}"

    def track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class MockOpenAI(LoopbackServer):
    """The mock upstream, served from a background thread until `stop()`."""

    thread_name = "mock-openai"

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 require_key: str | tuple[str, ...] | None = None,
                 models: tuple[str, ...] = DEFAULT_MODELS, verbose: bool = False,
                 flavor: str = "openai", prefix: str = "/v1", page_size: int = 1000) -> None:
        super().__init__(_Server((host, port), require_key, models, verbose, flavor, prefix,
                                 page_size), host)
        self.models = tuple(models)
        self.prefix = prefix

    @property
    def base_url(self) -> str:
        """What a provider's `base_url` should be set to."""
        return f"{self.url}{self.prefix}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._server._lock:
            return list(self._server.recorded)

    def last_request(self, path: str) -> RecordedRequest:
        matching = self.requests_to(path)
        assert matching, f"the mock upstream received no request to {path}; got " + \
            repr([(r.method, r.path) for r in self.requests])
        return matching[-1]

    def clear(self) -> None:
        with self._server._lock:
            self._server.recorded.clear()
            self._server.peak_in_flight = self._server.in_flight

    def behave(self, markers: str = "") -> None:
        """Applies `markers` (e.g. "[mock:error=503]") to every request from now on; no
        argument restores normal answers."""
        with self._server._lock:
            self._server.behaviour = markers

    def max_concurrent_requests(self) -> int:
        """The most requests the mock was answering at once since start (or `clear`)."""
        with self._server._lock:
            return self._server.peak_in_flight

    def queue(self, *markers: str) -> None:
        """The next requests get these marker strings, one each, in order."""
        with self._server._lock:
            self._server.queued.extend(markers)

    def script(self, *turns: Turn) -> None:
        """Queues turns that the next chat requests get, in order (see scripted_turns.py)."""
        self._server.script.add(*turns)

    def _close_connections(self) -> None:
        self._server.close_connections()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--require-key", metavar="KEY",
                        help="answer 401 unless the request carries 'Authorization: Bearer KEY'")
    args = parser.parse_args(argv)
    mock = MockOpenAI(args.host, args.port, args.require_key, verbose=True)
    print(f"mock_openai listening on {mock.url}", flush=True)
    mock.serve_until_interrupted()
    return 0


if __name__ == "__main__":
    sys.exit(main())
