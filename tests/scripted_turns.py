"""Scripted chat-completion answers for the mock upstreams (mock_openai.py, mock_bedrock.py):
a test queues the turns the model is to play — text, reasoning, function calls, a stream that
breaks — and each chat-completions request takes the next one, in order. With nothing queued
the mocks answer as they always do.

    mock.script(Turn(tool_calls=[("get_weather", {"city": "Paris"})]),
                Turn(content="It is sunny in Paris."))

Converse answers (mock_converse.py) also play reasoning signatures, AWS errors, exception frames
in the middle of a stream and other stop reasons (`guardrail_intervened`).

A turn's function calls get ids `call_<n>` from the mock's counter (`Turn.call_ids` after it
was served). A turn with `when` is served only to a request it accepts (`when(body) -> bool`):
requests it refuses take the next turn without `when` — or the mock's usual answer — and the
turn waits for its request (clients such as Claude Code make side calls between turns). Streamed, every call's opening chunk (id and name) comes first, then the
arguments in two halves, calls interleaved — as parallel calls arrive from real upstreams.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from loopback_server import text_of

ChunkFn = Callable[[dict, "str | None"], dict]


@dataclass
class Turn:
    """One answer of the model."""
    content: str | None = None
    # (name, arguments as a dict or JSON text)
    tool_calls: list[tuple[str, Any]] = field(default_factory=list)
    reasoning: str | None = None
    # Default: "tool_calls" when there are calls, else "stop".
    finish_reason: str | None = None
    # Streamed: send the first two chunks, then reset the connection.
    fail_mid_stream: bool = False
    # Converse only (mock_converse.py). The signature of `reasoning` (Claude's extended thinking).
    signature: str | None = None
    # Answer with this AWS error instead: (HTTP status, exception name, message).
    error: tuple[int, str, str] | None = None
    # Streamed: after the first text delta, this exception frame: (`:exception-type`, message);
    # ("corrupt-crc", "") sends a frame whose message checksum is wrong instead.
    stream_exception: tuple[str, str] | None = None
    # The Converse stopReason (default: "tool_use" with calls, else "end_turn").
    stop_reason: str | None = None
    # Prompt-cache tokens reported in usage: (read, write).
    cache_tokens: tuple[int, int] = (0, 0)
    # Prompt tokens served from the upstream's cache (`usage.prompt_tokens_details`); they are
    # part of `prompt_tokens`, as OpenAI counts them.
    cached_tokens: int | None = None
    # The stop sequence the model hit, as vLLM names it in the finishing choice's `stop_reason`.
    matched_stop: str | None = None
    # Served only to a chat request (its JSON body) for which this is true.
    when: Callable[[dict], bool] | None = None
    # Set when served: the ids given to the calls.
    call_ids: list[str] = field(default_factory=list)

    def finish(self) -> str:
        return self.finish_reason or ("tool_calls" if self.tool_calls else "stop")

    def converse_stop_reason(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_calls else "end_turn")

    def _calls(self) -> list[tuple[str, str, str]]:
        return [(call_id, name, args if isinstance(args, str) else json.dumps(args))
                for call_id, (name, args) in zip(self.call_ids, self.tool_calls)]

    def message(self, reasoning_key: str = "reasoning_content") -> dict:
        """The assistant message of a non-streamed answer."""
        message: dict = {"role": "assistant", "content": self.content}
        if self.reasoning is not None:
            message[reasoning_key] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": call_id, "type": "function",
                 "function": {"name": name, "arguments": args}}
                for call_id, name, args in self._calls()]
        return message

    def chunks(self, chunk: ChunkFn, reasoning_key: str = "reasoning_content") -> list[dict]:
        """The deltas of a streamed answer, finish chunk included (usage not)."""
        out = [chunk({"role": "assistant"}, None)]
        if self.reasoning:
            out += [chunk({reasoning_key: piece}, None)
                    for piece in re.findall(r"\s*\S+", self.reasoning)]
        if self.content:
            out += [chunk({"content": piece}, None)
                    for piece in re.findall(r"\s*\S+", self.content)]
        calls = self._calls()
        for index, (call_id, name, _) in enumerate(calls):
            out.append(chunk({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                              "function": {"name": name, "arguments": ""}}]},
                             None))
        for half in (0, 1):
            for index, (_, _, args) in enumerate(calls):
                middle = len(args) // 2
                piece = args[:middle] if half == 0 else args[middle:]
                if piece:
                    out.append(chunk({"tool_calls": [{"index": index,
                                                      "function": {"arguments": piece}}]}, None))
        out.append(self._finishing(chunk({}, self.finish())))
        return out

    def _finishing(self, body: dict) -> dict:
        """The body of the last chunk (or the completion), with vLLM's `stop_reason`."""
        if self.matched_stop is not None:
            body["choices"][0]["stop_reason"] = self.matched_stop
        return body

    def answer(self, request: dict, completion_id: str,
               reasoning_key: str = "reasoning_content") -> dict | list[dict]:
        """The upstream's answer to the chat request `request`: the completion, or for a
        streamed request its chunks (with a usage chunk last when `stream_options` asks)."""
        prompt_words = sum(len(text_of(m.get("content")).split())
                           for m in request.get("messages") or [] if isinstance(m, dict))
        usage = self.usage(prompt_words)
        created = int(time.time())
        model = request.get("model")
        if not request.get("stream"):
            return self._finishing({
                "id": completion_id, "object": "chat.completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "finish_reason": self.finish(), "logprobs": None,
                             "message": self.message(reasoning_key)}],
                "usage": usage})

        def chunk(delta: dict, finish_reason: str | None) -> dict:
            return {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

        chunks = self.chunks(chunk, reasoning_key)
        if (request.get("stream_options") or {}).get("include_usage"):
            chunks.append({**chunk({}, None), "choices": [], "usage": usage})
        return chunks

    def usage(self, prompt_tokens: int) -> dict:
        words = len((self.content or "").split()) + len((self.reasoning or "").split())
        completion = words + sum(len(str(args)) // 4 + 1 for _, args in self.tool_calls)
        prompt_tokens += self.cached_tokens or 0
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                 "total_tokens": prompt_tokens + completion}
        if self.cached_tokens is not None:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage


class Script:
    """The queue of turns a mock serves; thread-safe."""

    def __init__(self) -> None:
        self._turns: deque[Turn] = deque()
        self._lock = threading.Lock()

    def add(self, *turns: Turn) -> None:
        with self._lock:
            self._turns.extend(turns)

    def next(self, new_call_id: Callable[[], str], request: dict | None = None) -> Turn | None:
        """The first queued turn that takes `request` (see `Turn.when`), removed from the queue."""
        with self._lock:
            for turn in self._turns:
                if turn.when is None or (request is not None and turn.when(request)):
                    self._turns.remove(turn)
                    break
            else:
                return None
        turn.call_ids = [new_call_id() for _ in turn.tool_calls]
        return turn

    def pending(self) -> int:
        with self._lock:
            return len(self._turns)
