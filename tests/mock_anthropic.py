"""A loopback upstream that speaks Anthropic's Messages API (`POST /v1/messages`, JSON or SSE,
and `POST /v1/messages/count_tokens`), standing in for Anthropic, vLLM, Ollama, Fireworks, Meta
or DeepSeek on ogx's native Messages path.

Its answers are built with the Anthropic SDK's own types (`anthropic.types.Message`, the raw
stream events) and serialized as the SDK serializes them, so what ogx passes on is checked
against Anthropic's schema, not ours. Every request is recorded with its headers. An answer
has a thinking block with a signature, then a text block echoing the last user text.

Scripted by the last user text: `[mock:error=<status>]` answers that status in Anthropic's error
shape (429 and 529 with `retry-after: 7`) and echoes the request's credential in the message,
as some servers do; `[mock:stream-error]` streams the message start and one delta, then an
`error` event (`overloaded_error`).
"""
from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer

import anthropic.types as at

from loopback_server import LoopbackHandler, LoopbackServer, text_of

SIGNATURE = "EqQBCkgIARABGAIiQL2sig-mock-signature=="
THINKING = "The user wants an echo."
INPUT_TOKENS = 17


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    json: dict


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            return text_of(message.get("content"))
    return ""


def _message(body: dict, text: str) -> at.Message:
    return at.Message(
        id="msg_mock0123456789", type="message", role="assistant", model=body["model"],
        content=[at.ThinkingBlock(type="thinking", thinking=THINKING, signature=SIGNATURE),
                 at.TextBlock(type="text", text=text, citations=None)],
        stop_reason="end_turn", stop_sequence=None,
        usage=at.Usage(input_tokens=INPUT_TOKENS, output_tokens=len(text.split()),
                       cache_read_input_tokens=5, cache_creation_input_tokens=0))


def _events(body: dict, text: str, fail: bool) -> list[tuple[str, dict]]:
    start = _message(body, "").model_copy(update={"content": [], "stop_reason": None})
    events: list[object] = [
        at.RawMessageStartEvent(type="message_start", message=start),
        at.RawContentBlockStartEvent(type="content_block_start", index=0,
                                     content_block=at.ThinkingBlock(type="thinking", thinking="",
                                                                    signature="")),
        at.RawContentBlockDeltaEvent(type="content_block_delta", index=0,
                                     delta=at.ThinkingDelta(type="thinking_delta",
                                                            thinking=THINKING)),
    ]
    if fail:
        dumped = [(e.type, e.model_dump(mode="json", exclude_none=True)) for e in events]
        return dumped + [("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                "message": "Overloaded"}})]
    events += [
        at.RawContentBlockDeltaEvent(type="content_block_delta", index=0,
                                     delta=at.SignatureDelta(type="signature_delta",
                                                             signature=SIGNATURE)),
        at.RawContentBlockStopEvent(type="content_block_stop", index=0),
        at.RawContentBlockStartEvent(type="content_block_start", index=1,
                                     content_block=at.TextBlock(type="text", text="")),
    ]
    for word in re.findall(r"\S+\s*", text):
        events.append(at.RawContentBlockDeltaEvent(
            type="content_block_delta", index=1, delta=at.TextDelta(type="text_delta", text=word)))
    events += [
        at.RawContentBlockStopEvent(type="content_block_stop", index=1),
        at.RawMessageDeltaEvent(type="message_delta",
                                delta=at.raw_message_delta_event.Delta(stop_reason="end_turn",
                                                                       stop_sequence=None),
                                usage=at.MessageDeltaUsage(output_tokens=len(text.split()))),
        at.RawMessageStopEvent(type="message_stop"),
    ]
    return [(e.type, e.model_dump(mode="json", exclude_none=True)) for e in events]


class _Handler(LoopbackHandler):
    server: "_Server"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self._read_body() or b"{}")
        headers = {k.lower(): v for k, v in self.headers.items()}
        path = self.path.split("?")[0]
        self.server.recorded.append(Recorded(path, headers, body))
        if not path.endswith("/v1/messages") and not path.endswith("/v1/messages/count_tokens"):
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error",
                                                             "message": f"no route {path}"}})
            return
        if headers.get("anthropic-version") != "2023-06-01":
            self._send_json(400, {"type": "error", "error": {
                "type": "invalid_request_error", "message": "anthropic-version missing"}})
            return
        if path.endswith("/count_tokens"):
            self._send_json(200, at.MessageTokensCount(input_tokens=INPUT_TOKENS).model_dump())
            return
        text = _last_user_text(body)
        scripted = re.search(r"\[mock:error=(\d{3})\]", text)
        if scripted:
            status = int(scripted.group(1))
            credential = headers.get("x-api-key") or headers.get("authorization", "")
            kind = {401: "authentication_error", 429: "rate_limit_error",
                    529: "overloaded_error"}.get(status, "api_error")
            extra = {"retry-after": "7"} if status in (429, 529) else {}
            self._send_json(status, {"type": "error", "error": {
                "type": kind, "message": f"scripted {status} for credential {credential}"}},
                extra)
            return
        answer = f"echo: {text}"
        if not body.get("stream"):
            self._send_json(200, _message(body, answer).model_dump(mode="json",
                                                                   exclude_none=True))
            return
        self._start_sse()
        for kind, data in _events(body, answer, fail="[mock:stream-error]" in text):
            frame = f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.recorded: list[Recorded] = []
        self.lock = threading.Lock()


class MockAnthropic(LoopbackServer):
    """The Messages upstream; `url` is its root (`/v1/messages` is under it)."""

    thread_name = "mock-anthropic"

    def __init__(self) -> None:
        super().__init__(_Server(), "127.0.0.1")

    @property
    def requests(self) -> list[Recorded]:
        return list(self._server.recorded)

    def expected_events(self, body: dict, text: str) -> list[tuple[str, dict]]:
        """The events a streamed answer to `body` whose last user text is `text` carries."""
        return _events(body, f"echo: {text}", fail=False)
