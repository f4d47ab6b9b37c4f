"""Claude on the mock Bedrock runtime through Anthropic's Messages body (mock_bedrock.py serves
these routes after it authenticated the request, SigV4 checked with botocore or a registered
bearer token):

  POST /model/{modelId}/invoke                        InvokeModel: an Anthropic `message`
  POST /model/{modelId}/invoke-with-response-stream   InvokeModelWithResponseStream: event-stream
                                                      `chunk` messages, each `{"bytes": base64
                                                      of one Anthropic event}`
  POST /model/{modelId}/count-tokens                  CountTokens: `{"inputTokens": N}`

Bodies are checked as Bedrock checks an Anthropic body (a violation is a 400
ValidationException): `anthropic_version` must be "bedrock-2023-05-31", `max_tokens` an integer,
`messages` a list, no `model` or `stream` key ("extraneous key [...] is not permitted"),
`anthropic_beta` a list of strings. CountTokens' `input.invokeModel.body` is a blob, so base64
in botocore's JSON protocol, and takes a foundation-model id (not an inference profile).

Answers: "You said: <the last user text>"; with `thinking` enabled a thinking block with a
signature first; with tools and "[mock:tool]" in the last user text a tool_use block instead
(streamed as input_json_delta pieces); usage with cache_creation_input_tokens counting the text
under a `cache_control` mark. "[mock:throttle]" answers 429 ThrottlingException (with
Retry-After: 3); "[mock:throttle-mid]" streams the first event, then a throttlingException frame.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import mock_converse

BEDROCK_VERSION = "bedrock-2023-05-31"
THINKING = "Let me think about that."
SIGNATURE = "EqQBCkgIARABGAIiQL2bedrocksig=="
TOOL_USE_ID = "toolu_bdrk_01MockToolUseId42"
THROTTLED = "Too many requests, please wait before trying again."
BAD_MODEL = "The provided model identifier is invalid."


class AnthropicInvalid(Exception):
    """An Anthropic body Bedrock would refuse with a ValidationException."""


def is_claude(model_id: str) -> bool:
    return "anthropic.claude" in model_id


def validate(body: Any) -> None:
    if not isinstance(body, dict):
        raise AnthropicInvalid("Malformed input request, please reformat your input and try again.")
    for key in ("model", "stream"):
        if key in body:
            raise AnthropicInvalid(f"Malformed input request: #: extraneous key [{key}] is not "
                                   "permitted, please reformat your input and try again.")
    if body.get("anthropic_version") != BEDROCK_VERSION:
        raise AnthropicInvalid("Malformed input request: #: required key [anthropic_version] "
                               "not found or invalid, please reformat your input and try again.")
    if not isinstance(body.get("max_tokens"), int):
        raise AnthropicInvalid("Malformed input request: #: required key [max_tokens] not found, "
                               "please reformat your input and try again.")
    if not isinstance(body.get("messages"), list):
        raise AnthropicInvalid("Malformed input request: #: required key [messages] not found, "
                               "please reformat your input and try again.")
    betas = body.get("anthropic_beta", [])
    if not isinstance(betas, list) or not all(isinstance(b, str) for b in betas):
        raise AnthropicInvalid("Malformed input request: #/anthropic_beta: expected type: "
                               "JSONArray of strings, please reformat your input and try again.")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def last_user_text(body: dict) -> str:
    users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    return _text(users[-1].get("content")) if users else ""


def input_tokens(body: dict) -> int:
    texts = [_text(m.get("content")) for m in body.get("messages", []) if isinstance(m, dict)]
    texts.append(_text(body.get("system")))
    return sum(len(t.split()) for t in texts)


def _cached_tokens(body: dict) -> int:
    blocks = body.get("system") if isinstance(body.get("system"), list) else []
    for m in body.get("messages", []):
        if isinstance(m, dict) and isinstance(m.get("content"), list):
            blocks = blocks + m["content"]
    return sum(len(b.get("text", "").split()) for b in blocks
               if isinstance(b, dict) and "cache_control" in b)


def _blocks(body: dict) -> list[dict]:
    text = last_user_text(body)
    blocks: list[dict] = []
    if isinstance(body.get("thinking"), dict) and body["thinking"].get("type") == "enabled":
        blocks.append({"type": "thinking", "thinking": THINKING, "signature": SIGNATURE})
    if body.get("tools") and "[mock:tool]" in text:
        tool = body["tools"][0]
        blocks.append({"type": "tool_use", "id": TOOL_USE_ID, "name": tool["name"],
                       "input": {"city": "Paris"}})
    else:
        blocks.append({"type": "text", "text": f"You said: {text}"})
    return blocks


def message(body: dict, model_id: str) -> dict:
    blocks = _blocks(body)
    output = sum(len(json.dumps(b).split()) for b in blocks)
    stop = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
    return {"id": "msg_bdrk_01MockMessage", "type": "message", "role": "assistant",
            "model": model_id.rsplit("/", 1)[-1].split("anthropic.", 1)[-1],
            "content": blocks, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens(body), "output_tokens": output,
                      "cache_creation_input_tokens": _cached_tokens(body),
                      "cache_read_input_tokens": 0}}


def events(body: dict, model_id: str) -> list[dict]:
    """The Anthropic events of a streamed answer, as Claude on Bedrock sends them."""
    answer = message(body, model_id)
    start = {**answer, "content": [], "stop_reason": None,
             "usage": {**answer["usage"], "output_tokens": 1}}
    out: list[dict] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(answer["content"]):
        if block["type"] == "thinking":
            out += [{"type": "content_block_start", "index": index,
                     "content_block": {"type": "thinking", "thinking": ""}},
                    {"type": "content_block_delta", "index": index,
                     "delta": {"type": "thinking_delta", "thinking": block["thinking"]}},
                    {"type": "content_block_delta", "index": index,
                     "delta": {"type": "signature_delta", "signature": block["signature"]}}]
        elif block["type"] == "tool_use":
            args = json.dumps(block["input"])
            out += [{"type": "content_block_start", "index": index,
                     "content_block": {**block, "input": {}}}]
            out += [{"type": "content_block_delta", "index": index,
                     "delta": {"type": "input_json_delta", "partial_json": args[i:i + 6]}}
                    for i in range(0, len(args), 6)]
        else:
            out += [{"type": "content_block_start", "index": index,
                     "content_block": {"type": "text", "text": ""}},
                    {"type": "content_block_delta", "index": index,
                     "delta": {"type": "text_delta", "text": block["text"]}}]
        out.append({"type": "content_block_stop", "index": index})
    out.append({"type": "message_delta",
                "delta": {"stop_reason": answer["stop_reason"], "stop_sequence": None},
                "usage": {"output_tokens": answer["usage"]["output_tokens"]}})
    out.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": answer["usage"]["input_tokens"],
        "outputTokenCount": answer["usage"]["output_tokens"],
        "invocationLatency": 12, "firstByteLatency": 5}})
    return out


def chunk_frame(event: dict) -> bytes:
    """One InvokeModelWithResponseStream `chunk` message carrying `event`."""
    payload = {"bytes": base64.b64encode(json.dumps(event).encode()).decode()}
    return mock_converse.encode_frame(
        [(":event-type", "chunk"), (":content-type", "application/json"),
         (":message-type", "event")], json.dumps(payload).encode())


def serve(handler: Any, record: Any, model_id: str, operation: str, request_id: str) -> None:
    """Answers one Claude InvokeModel, InvokeModelWithResponseStream or CountTokens request on
    `handler` (mock_bedrock's request handler) and notes the status in `record`."""
    def refuse(status: int, name: str, message: str, headers: dict | None = None) -> None:
        record.status = status
        record.rejection = message
        handler._send_json(status, {"message": message}, {"x-amzn-ErrorType": name, **(headers or {})})

    body = record.json
    try:
        if operation == "count-tokens":
            if model_id.split(".", 1)[0] in ("us", "eu", "apac", "global"):
                raise AnthropicInvalid(BAD_MODEL)
            blob = (body or {}).get("input", {}).get("invokeModel", {}).get("body")
            try:
                body = json.loads(base64.b64decode(blob, validate=True))
            except (TypeError, ValueError) as e:
                raise AnthropicInvalid(f"input.invokeModel.body is not a base64 blob: {e}")
            record.invoke_body = body
        validate(body)
    except AnthropicInvalid as e:
        refuse(400, "ValidationException", str(e))
        return
    if operation == "count-tokens":
        record.status = 200
        handler._send_json(200, {"inputTokens": input_tokens(body)})
        return
    text = last_user_text(body)
    if "[mock:throttle]" in text:
        refuse(429, "ThrottlingException", THROTTLED, {"Retry-After": "3"})
        return
    record.status = 200
    if operation == "invoke":
        handler._send_json(200, message(body, model_id), {"x-amzn-RequestId": request_id})
        return
    frames = [chunk_frame(e) for e in events(body, model_id)]
    if "[mock:throttle-mid]" in text:
        frames = frames[:1] + [mock_converse.event_frame("!throttlingException",
                                                         {"message": THROTTLED})]
    mock_converse.send_frames(handler, request_id, frames)
