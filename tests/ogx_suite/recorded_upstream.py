"""An OpenAI-compatible upstream on 127.0.0.1 that answers with OGX 1.5.0's own recordings.

OGX's integration tests ship the upstream traffic they were recorded with
(`tests/integration/**/recordings/*.json` in its sdist): each file is one request OGX sent to a
real model server (Ollama, OpenAI, ...) and the answer it got. This server indexes them and
answers a request with the recording whose request matches it, so what ogx relays to OGX's
tests are real model outputs, and nothing here is written by hand.

Routes, each under a family prefix (`/ollama/v1/...`, `/openai/v1/...`: the provider's
`base_url` names the family, so each provider sees its own upstream's model listing):
  GET  /<family>/v1/models              the union of that family's recorded model listings
  POST /<family>/v1/chat/completions    plain JSON or SSE chunks, as recorded
  POST /<family>/v1/completions, /<family>/v1/embeddings, /<family>/v1/messages

Matching. OGX hashes a recording by the test's id, which an upstream never sees, so the body
alone is matched: the same endpoint, model and input (`messages`, `prompt` or `input`, with
null fields dropped, text-only content lists read as their text, and spellings OpenAI reads
alike made one: see `request_fields`), then the recording that
differs in the fewest other top-level fields (`stream` first). `extra_body` is merged into the
body as the OpenAI SDK sends it. A request with no such recording is a 500 whose message
names the endpoint, model and the start of its input, so every gap is visible in the test
output (and listed, with their bodies, by `GET /_unmatched`). A model the family's recorded listing does not
hold is a 404 `model '<name>' not found`, as Ollama and OpenAI answer it.

What the recordings normalized is restored as a real upstream sends it: every answer gets
its own `id` (the recorded `rec-<hash>` plus a serial, since several tests replay one
recording and the chat-completion history keys on the id) and `created` the current time.
Embeddings asked for as `base64` are sent as base64 of little-endian float32, as OpenAI does.
A recorded upstream error is answered with its recorded status and body.

Run by hand: `python3 tests/ogx_suite/recorded_upstream.py --recordings DIR [--port 8000]`.
"""
from __future__ import annotations

import argparse
import base64
import itertools
import json
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loopback_server import LoopbackHandler, LoopbackServer  # noqa: E402

# Which recorded upstream each family prefix stands for: the host (and port) of the URLs
# OGX's CI recorded against.
FAMILIES: dict[str, tuple[str, ...]] = {
    "ollama": ("0.0.0.0:11434", "localhost:11434"),
    "openai": ("api.openai.com",),
}
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages")
# The request fields that carry the model's input; a recording matches only on equal input.
INPUT_FIELDS = ("messages", "prompt", "input", "system", "tools")


def canonical(value: Any) -> Any:
    """A JSON value with null fields dropped and text-only content lists read as text."""
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if value and all(isinstance(p, dict) and p.get("type") == "text" and set(p) <= {"type", "text"}
                         for p in value):
            return "".join(p["text"] for p in value)
        return [canonical(v) for v in value]
    return value


def request_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The body as the upstream receives it: `extra_body` merged in, canonical. OGX's
    Responses API repeats `"type": "function"` inside each tool's `function`, which OpenAI
    ignores; it is dropped, so the tool reads as any client sends it; messages as in
    `canonical_message`."""
    merged = {k: v for k, v in body.items() if k != "extra_body"}
    extra = body.get("extra_body")
    if isinstance(extra, dict):
        merged.update({k: v for k, v in extra.items() if k not in merged})
    fields = canonical(merged)
    for tool in fields.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            tool["function"].pop("type", None)
    for message in fields.get("messages") or []:
        if isinstance(message, dict):
            canonical_message(message)
    return fields


def canonical_message(message: dict[str, Any]) -> None:
    """Spellings of one chat message that mean the same to OpenAI, made one: an image's
    default `detail: auto`, an empty `content` beside `tool_calls`, the stream `index`
    OGX leaves on the tool calls it sends back, and the spacing of a call's JSON `arguments`
    (Python's `json.dumps` writes `{"a": 1}`, others `{"a":1}`)."""
    if message.get("tool_calls") and message.get("content") in ("", []):
        del message["content"]
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict):
            call.pop("index", None)
            function = call.get("function")
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                try:
                    function["arguments"] = json.dumps(json.loads(function["arguments"]),
                                                       sort_keys=True)
                except ValueError:
                    pass  # not JSON: compared as written
    if isinstance(message.get("content"), list):
        for part in message["content"]:
            image = part.get("image_url") if isinstance(part, dict) else None
            if isinstance(image, dict) and image.get("detail") == "auto":
                del image["detail"]


def input_key(endpoint: str, fields: dict[str, Any]) -> str:
    return json.dumps([endpoint, fields.get("model")] + [fields.get(f) for f in INPUT_FIELDS],
                      sort_keys=True)


@dataclass
class Recording:
    path: Path
    endpoint: str
    fields: dict[str, Any]
    response: dict[str, Any]

    def score(self, fields: dict[str, Any], continued: set[str]) -> tuple[int, int, int]:
        """Higher is closer: the same `stream` first, then the fewest fields that differ
        (a field only one side has counts as differing), then an answer that a recorded
        later turn continues (when several tests sent one first turn and got different
        answers, the one whose conversation goes on is the one a multi-turn test needs)."""
        same_stream = int(bool(self.fields.get("stream")) == bool(fields.get("stream")))
        keys = set(self.fields) | set(fields)
        differing = sum(1 for k in keys if self.fields.get(k) != fields.get(k))
        return same_stream, -differing, int(bool(answer_keys(self.response) & continued))


@dataclass
class RecordingIndex:
    by_input: dict[str, list[Recording]] = field(default_factory=dict)
    model_lists: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # Assistant texts and tool-call ids that recorded requests send back as history.
    continued: set[str] = field(default_factory=set)
    files: int = 0

    @classmethod
    def load(cls, roots: list[Path], models: set[str] | None = None) -> "RecordingIndex":
        """Indexes every recording under `roots` (only those of `models`, when given)."""
        index = cls()
        for root in roots:
            for path in sorted(root.rglob("recordings/*.json")):
                try:
                    data = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                index.add(path, data, models)
        return index

    def add(self, path: Path, data: dict[str, Any], models: set[str] | None) -> None:
        request, response = data.get("request") or {}, data.get("response") or {}
        url = request.get("url") or ""
        endpoint = request.get("endpoint") or _endpoint_of(url)
        body = request.get("body") if "body" in request else request.get("payload")
        if endpoint == "/v1/models":
            family = family_of(url)
            if family:
                listing = self.model_lists.setdefault(family, {})
                for item in response.get("body") or []:
                    model = item.get("__data__", item)
                    listing.setdefault(model["id"], model)
            return
        if endpoint not in ENDPOINTS or not isinstance(body, dict):
            return
        fields = request_fields(body)
        if models is not None and fields.get("model") not in models:
            return
        self.files += 1
        for message in fields.get("messages") or []:
            if isinstance(message, dict) and message.get("role") == "assistant":
                self.continued |= message_keys(message)
        self.by_input.setdefault(input_key(endpoint, fields), []).append(
            Recording(path, endpoint, fields, response))

    def find(self, endpoint: str, body: dict[str, Any]) -> Recording | None:
        fields = request_fields(body)
        candidates = self.by_input.get(input_key(endpoint, fields))
        if not candidates:
            return None
        return max(candidates, key=lambda r: r.score(fields, self.continued))


def message_keys(message: dict[str, Any]) -> set[str]:
    """What identifies an assistant turn in a later request: its text, its tool-call ids."""
    keys = {f"call:{c['id']}" for c in message.get("tool_calls") or [] if isinstance(c, dict) and c.get("id")}
    if isinstance(message.get("content"), str) and message["content"]:
        keys.add(f"text:{message['content']}")
    return keys


def answer_keys(response: dict[str, Any]) -> set[str]:
    """`message_keys` of a recorded chat answer, plain or streamed (a streamed `/v1/messages`
    recording, whose items are the SSE lines as text, has none)."""
    body = response.get("body")
    if response.get("is_streaming") and isinstance(body, list):
        text, calls = "", set()
        for chunk in body:
            chunk = data_of(chunk)
            if not isinstance(chunk, dict):
                continue
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                text += delta.get("content") or ""
                calls |= {c["id"] for c in delta.get("tool_calls") or [] if c.get("id")}
        return ({f"text:{text}"} if text else set()) | {f"call:{c}" for c in calls}
    if isinstance(body, dict):
        choices = (data_of(body) or {}).get("choices") or []
        if choices and isinstance(choices[0].get("message"), dict):
            return message_keys(choices[0]["message"])
    return set()


def _endpoint_of(url: str) -> str:
    path = urlsplit(url).path
    return next((e for e in ENDPOINTS if path.endswith(e)), path)


def family_of(url: str) -> str | None:
    netloc = urlsplit(url).netloc
    return next((name for name, hosts in FAMILIES.items() if netloc in hosts), None)


def data_of(item: Any) -> Any:
    """A recorded pydantic object's fields (`{"__type__", "__data__"}`), or the value itself."""
    return item["__data__"] if isinstance(item, dict) and "__data__" in item else item


class RecordedUpstream(LoopbackServer):
    thread_name = "recorded-upstream"

    def __init__(self, index: RecordingIndex, host: str = "127.0.0.1", port: int = 0):
        self.index = index
        self.unmatched: list[str] = []
        self.unmatched_bodies: list[dict[str, Any]] = []
        self.served: list[str] = []
        self._serial = itertools.count(1)
        self._lock = threading.Lock()
        upstream = self

        class Handler(RecordedHandler):
            server_state = upstream

        super().__init__(ThreadingHTTPServer((host, port), Handler), host)

    @property
    def requests(self) -> list[str]:
        return self.served

    def next_serial(self) -> int:
        with self._lock:
            return next(self._serial)


class RecordedHandler(LoopbackHandler):
    server_state: RecordedUpstream

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass

    def _route(self) -> tuple[str | None, str]:
        parts = self.path.split("?", 1)[0].split("/", 2)
        if len(parts) == 3 and parts[1] in FAMILIES:
            return parts[1], "/" + parts[2]
        return None, self.path.split("?", 1)[0]

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        family, path = self._route()
        if path == "/_unmatched" or self.path == "/_unmatched":
            self._send_json(200, {"unmatched": self.server_state.unmatched,
                                  "bodies": self.server_state.unmatched_bodies})
        elif family and path == "/v1/models":
            models = self.server_state.index.model_lists.get(family, {})
            self._send_json(200, {"object": "list", "data": list(models.values())})
        else:
            self._send_json(404, {"error": {"message": f"no route GET {self.path}"}})

    def do_POST(self) -> None:  # noqa: N802
        family, path = self._route()
        raw = self._read_body()
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send_json(400, {"error": {"message": "the body is not JSON"}})
            return
        if family is None or path not in ENDPOINTS:
            self._send_json(404, {"error": {"message": f"no route POST {self.path}"}})
            return
        recording = self.server_state.index.find(path, body)
        if recording is None:
            listed = self.server_state.index.model_lists.get(family, {})
            if body.get("model") not in listed:
                self._unknown_model(path, str(body.get("model")))
            else:
                self._unmatched(path, body)
            return
        self.server_state.served.append(f"{path} {recording.path.name}")
        self._answer(path, body, recording)

    def _unknown_model(self, path: str, model: str) -> None:
        """A model the upstream does not list is a 404, as Ollama and OpenAI answer it."""
        if path == "/v1/messages":
            error = {"type": "error", "error": {"type": "not_found_error",
                                                "message": f"model '{model}' not found"}}
        else:
            error = {"error": {"message": f"model '{model}' not found", "type": "not_found_error",
                               "param": None, "code": "model_not_found"}}
        self._send_json(404, error)

    def _unmatched(self, path: str, body: dict[str, Any]) -> None:
        fields = request_fields(body)
        shown = next((json.dumps(fields[f])[:300] for f in INPUT_FIELDS if f in fields), "{}")
        message = (f"recorded upstream: no OGX recording for POST {path} model="
                   f"{fields.get('model')!r} stream={bool(fields.get('stream'))} input={shown}")
        self.server_state.unmatched.append(message)
        self.server_state.unmatched_bodies.append({"endpoint": path, "body": body})
        self._send_json(500, {"error": {"message": message, "type": "unmatched_recording"}})

    def _answer(self, path: str, body: dict[str, Any], recording: Recording) -> None:
        response = recording.response
        if response.get("is_exception"):
            error = response.get("exception_data") or {}
            detail = error.get("body") or {"message": response.get("exception_message", "error")}
            self._send_json(int(error.get("status_code") or 500), {"error": detail})
            return
        serial = self.server_state.next_serial()
        now = int(time.time())
        recorded = response.get("body")
        if path == "/v1/messages":
            self._answer_raw(response, serial)
        elif response.get("is_streaming"):
            self._start_sse()
            for chunk in recorded:
                self._send_sse(json.dumps(restored(data_of(chunk), serial, now)))
            self._end_sse()
        else:
            answer = restored(data_of(recorded), serial, now)
            if path == "/v1/embeddings" and body.get("encoding_format") == "base64":
                answer = as_base64_embeddings(answer)
            self._send_json(int(response.get("status") or 200), answer)

    def _answer_raw(self, response: dict[str, Any], serial: int) -> None:
        """Recordings of plain HTTP calls (`/v1/messages`): JSON, or the SSE lines as sent."""
        recorded = response.get("body")
        if not response.get("is_streaming"):
            answer = dict(recorded)
            if isinstance(answer.get("id"), str):
                answer["id"] = f"{answer['id']}-{serial}"
            self._send_json(int(response.get("status") or 200), answer)
            return
        self.send_response(int(response.get("status") or 200))
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in recorded:
            data = (line + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def restored(obj: Any, serial: int, now: int) -> Any:
    """A recorded answer with its own id and a real `created`, as an upstream sends it."""
    if not isinstance(obj, dict):
        return obj
    obj = dict(obj)
    if isinstance(obj.get("id"), str) and obj["id"].startswith("rec-"):
        obj["id"] = f"{obj['id']}-{serial}"
    if obj.get("created") == 0:
        obj["created"] = now
    return obj


def as_base64_embeddings(answer: dict[str, Any]) -> dict[str, Any]:
    answer = dict(answer)
    data = []
    for item in answer.get("data") or []:
        item = dict(item)
        if isinstance(item.get("embedding"), list):
            vector = item["embedding"]
            item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append(item)
    answer["data"] = data
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=Path, required=True, action="append",
                        help="a folder holding recordings/ folders (repeatable)")
    parser.add_argument("--model", action="append", help="index only these models (repeatable)")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    index = RecordingIndex.load(args.recordings, set(args.model) if args.model else None)
    server = RecordedUpstream(index, port=args.port)
    print(f"recorded upstream on {server.url}: {index.files} recordings, model lists for "
          f"{', '.join(sorted(index.model_lists))}", flush=True)
    server.serve_until_interrupted()


if __name__ == "__main__":
    main()
