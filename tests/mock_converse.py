"""The Converse side of the mock Bedrock runtime (mock_bedrock.py serves these routes after it
authenticated the request, SigV4 checked with botocore or a registered bearer token):

  POST /model/{modelId}/converse          Converse: a JSON answer
  POST /model/{modelId}/converse-stream   ConverseStream: `application/vnd.amazon.eventstream`
  POST /model/{modelId}/invoke            InvokeModel for embedding models (Titan v1/v2, Cohere v3/v4)
  GET  /inference-profiles                the control plane's ListInferenceProfiles
  GET  /__mock/image.png                  (unauthenticated) a small PNG, for image-URL tests

`{modelId}` is percent-decoded from the path, as Bedrock does (ids, profile ids and ARNs).

Every Converse body is checked against Bedrock's rules before it is answered; a violation is a
400 ValidationException with Bedrock's own wording where known: the first message from the
user, strict user/assistant alternation, non-empty content and text, one key per content
block, image formats, toolUse input objects, every toolResult answering a toolUse of the
turn before and every toolUse answered in the next turn, `toolConfig` present when the
history holds tool blocks, toolChoice naming a defined tool, inferenceConfig ranges. Models in
PROFILE_ONLY_MODELS answer the "needs an inference profile" ValidationException, as Claude 3.5
Haiku and newer models do on Bedrock.

Answers: a scripted Turn (scripted_turns.py) when one is queued (text, reasoning with a
signature, tool calls, AWS errors, an exception frame mid-stream, another stop reason);
otherwise "You said: <the last user text>", plus " [image: <format>]" per image and
" [document: <name>]" per document of that turn. Streams are real event-stream frames,
encoded here with struct and zlib (independently of botocore, whose EventStreamBuffer the
tests use to read them back), blocks one after another as Bedrock sends them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import zlib
from typing import Any
from urllib.parse import unquote

from scripted_turns import Turn

EVENTSTREAM_TYPE = "application/vnd.amazon.eventstream"
PROFILE_ONLY_MODELS = frozenset({
    "anthropic.claude-3-5-haiku-20241022-v1:0",
    "anthropic.claude-sonnet-4-20250514-v1:0",
})
IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
DOCUMENT_FORMATS = ("pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md")
BLOCK_KEYS = ("text", "image", "document", "toolUse", "toolResult", "guardContent",
              "reasoningContent", "cachePoint", "video")
# A 1x1 transparent PNG.
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")

MSG_FIRST_USER = ("A conversation must start with a user message. Try again with a conversation "
                  "that starts with a user message.")
MSG_ALTERNATE = ("A conversation must alternate between user and assistant roles. Make sure the "
                 "conversation alternates between user and assistant roles and try again.")
MSG_TOOLCONFIG = ("The toolConfig field must be defined when using toolUse and toolResult "
                  "content blocks.")


def needs_profile_message(model_id: str) -> str:
    return (f"Invocation of model ID {model_id} with on-demand throughput isn't supported. Retry "
            "your request with the ID or ARN of an inference profile that contains this model.")


class ConverseInvalid(Exception):
    """A Converse body Bedrock would refuse with a ValidationException."""


def model_id_of(path: str) -> str | None:
    """The decoded `{modelId}` of a `/model/{modelId}/<operation>` path."""
    m = re.fullmatch(
        r"/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream|count-tokens)",
        path)
    return unquote(m.group(1)) if m else None


# -- validation ------------------------------------------------------------------------------
def validate(body: Any) -> None:
    """Raises ConverseInvalid with Bedrock's message when `body` breaks a Converse rule."""
    if not isinstance(body, dict):
        raise ConverseInvalid("The request body must be a JSON object.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ConverseInvalid("The messages field must contain at least one message.")
    for i, block in enumerate(body.get("system") or []):
        _one_key(block, f"system.{i}", ("text", "guardContent", "cachePoint"))
        if "text" in block and not str(block["text"]).strip():
            raise ConverseInvalid(f"The text field in the SystemContentBlock object at system.{i} "
                                  "is blank. Add text to the text field, and try again.")
    tool_blocks = False
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise ConverseInvalid(f"messages.{i}.role must be user or assistant.")
        if i == 0 and role != "user":
            raise ConverseInvalid(MSG_FIRST_USER)
        if i > 0 and messages[i - 1].get("role") == role:
            raise ConverseInvalid(MSG_ALTERNATE)
        content = message.get("content")
        if not isinstance(content, list) or not [b for b in content if "cachePoint" not in b]:
            raise ConverseInvalid(f"The content field in the Message object at messages.{i} is "
                                  "empty. Add a ContentBlock object to the content field and "
                                  "try again.")
        for j, block in enumerate(content):
            where = f"messages.{i}.content.{j}"
            key = _one_key(block, where, BLOCK_KEYS)
            _check_block(key, block[key], where, role)
            tool_blocks = tool_blocks or key in ("toolUse", "toolResult")
    _check_tool_pairing(messages)
    tool_config = body.get("toolConfig")
    if tool_blocks and not tool_config:
        raise ConverseInvalid(MSG_TOOLCONFIG)
    if tool_config is not None:
        specs = [t["toolSpec"] for t in tool_config.get("tools") or [] if "toolSpec" in t]
        if not specs:
            raise ConverseInvalid("The toolConfig.tools field must contain at least one tool.")
        names = [s.get("name") for s in specs]
        for spec in specs:
            if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", str(spec.get("name"))):
                raise ConverseInvalid(f"Tool name {spec.get('name')!r} is invalid.")
            schema = (spec.get("inputSchema") or {}).get("json")
            if not isinstance(schema, dict):
                raise ConverseInvalid("Every toolSpec needs inputSchema.json, a JSON schema.")
        choice = tool_config.get("toolChoice")
        if choice is not None:
            if len(choice) != 1 or next(iter(choice)) not in ("auto", "any", "tool"):
                raise ConverseInvalid("toolChoice must be one of auto, any, tool.")
            if "tool" in choice and choice["tool"].get("name") not in names:
                raise ConverseInvalid("The tool named in toolChoice is not defined in toolConfig.")
    inference = body.get("inferenceConfig") or {}
    if "temperature" in inference and not 0 <= inference["temperature"] <= 1:
        raise ConverseInvalid("The value at inferenceConfig.temperature must be between 0 and 1.")
    if "topP" in inference and not 0 <= inference["topP"] <= 1:
        raise ConverseInvalid("The value at inferenceConfig.topP must be between 0 and 1.")
    if "maxTokens" in inference and not (isinstance(inference["maxTokens"], int)
                                         and inference["maxTokens"] >= 1):
        raise ConverseInvalid("The value at inferenceConfig.maxTokens must be at least 1.")
    stops = inference.get("stopSequences")
    if stops is not None and (not isinstance(stops, list) or not all(
            isinstance(s, str) and s for s in stops)):
        raise ConverseInvalid("inferenceConfig.stopSequences must be non-empty strings.")


def _one_key(block: Any, where: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in allowed:
        raise ConverseInvalid(f"The content block at {where} must have exactly one of "
                              f"{', '.join(allowed)}.")
    return next(iter(block))


def _check_block(key: str, value: Any, where: str, role: str) -> None:
    if key == "text" and (not isinstance(value, str) or not value.strip()):
        raise ConverseInvalid(f"The text field in the ContentBlock object at {where} is blank. "
                              "Add text to the text field, and try again.")
    if key in ("image", "document"):
        formats = IMAGE_FORMATS if key == "image" else DOCUMENT_FORMATS
        if value.get("format") not in formats:
            raise ConverseInvalid(f"The {key} format at {where} is not one of {formats}.")
        data = (value.get("source") or {}).get("bytes")
        try:
            raw = base64.b64decode(data or "", validate=True)
        except ValueError:
            raise ConverseInvalid(f"The {key} bytes at {where} are not base64.") from None
        if not raw:
            raise ConverseInvalid(f"The {key} bytes at {where} are empty.")
        if key == "document" and not re.fullmatch(r"[A-Za-z0-9()\[\]-]+( [A-Za-z0-9()\[\]-]+)*",
                                                  str(value.get("name"))):
            raise ConverseInvalid(f"The document name at {where} has characters Bedrock refuses.")
    if key == "toolUse":
        if role != "assistant" or not isinstance(value.get("input"), dict):
            raise ConverseInvalid(f"The toolUse at {where} must be an assistant's, with an "
                                  "object input.")
        if not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", str(value.get("toolUseId"))):
            raise ConverseInvalid(f"The toolUseId at {where} is invalid.")
    if key == "toolResult" and role != "user":
        raise ConverseInvalid(f"The toolResult at {where} must be in a user message.")
    if key == "reasoningContent":
        text = value.get("reasoningText")
        if role != "assistant" or (text is not None and not text.get("signature")):
            raise ConverseInvalid(f"The reasoningContent at {where} needs a signature.")


def _check_tool_pairing(messages: list[dict]) -> None:
    for i, message in enumerate(messages):
        ids = lambda m, k: [b[k]["toolUseId"] for b in m["content"] if k in b]  # noqa: E731
        if message["role"] == "user":
            results = ids(message, "toolResult")
            asked = ids(messages[i - 1], "toolUse") if i > 0 else []
            if len(results) > len(asked):
                raise ConverseInvalid(f"The number of toolResult blocks at messages.{i}.content "
                                      "exceeds the number of toolUse blocks of previous turn.")
            if asked and sorted(results) != sorted(asked):
                raise ConverseInvalid(f"Expected toolResult blocks at messages.{i}.content for "
                                      f"the following Ids: {', '.join(asked)}")
        elif i + 1 < len(messages) and ids(message, "toolUse") and \
                not ids(messages[i + 1], "toolResult"):
            raise ConverseInvalid(f"Expected toolResult blocks at messages.{i + 1}.content for "
                                  f"the following Ids: {', '.join(ids(message, 'toolUse'))}")


# -- answers ---------------------------------------------------------------------------------
def default_answer(body: dict) -> str:
    """What the model says when nothing is scripted (see the module docs)."""
    last = body["messages"][-1]
    parts = []
    for block in last["content"]:
        if "text" in block:
            parts.append(block["text"])
        elif "toolResult" in block:
            texts = [c.get("text", json.dumps(c.get("json"))) for c in block["toolResult"]["content"]]
            parts.append(f"(tool {block['toolResult']['toolUseId']} said {' '.join(texts)})")
    answer = "You said: " + " ".join(parts)
    for block in last["content"]:
        if "image" in block:
            answer += f" [image: {block['image']['format']}]"
        elif "document" in block:
            answer += f" [document: {block['document']['name']}]"
    return answer


def _usage(body: dict, output: str, turn: Turn | None) -> dict:
    words = sum(len(b.get("text", "").split()) for m in body["messages"] for b in m["content"])
    words += sum(len(b.get("text", "").split()) for b in body.get("system") or [])
    read, write = turn.cache_tokens if turn else (0, 0)
    out = len(output.split()) + (sum(len(json.dumps(a)) // 4 + 1 for _, a in turn.tool_calls)
                                 if turn else 0)
    usage = {"inputTokens": words, "outputTokens": out, "totalTokens": words + out + read + write}
    if read or write:
        usage.update(cacheReadInputTokens=read, cacheWriteInputTokens=write)
    return usage


def _tool_input(args: Any) -> dict:
    return json.loads(args) if isinstance(args, str) else args


def converse_answer(body: dict, turn: Turn | None) -> dict:
    """The Converse JSON answer to `body`."""
    content: list[dict] = []
    text = turn.content if turn else default_answer(body)
    if turn and turn.reasoning is not None:
        content.append({"reasoningContent": {"reasoningText": {
            "text": turn.reasoning, "signature": turn.signature or "sig-" + _digest(turn.reasoning)}}})
    if text:
        content.append({"text": text})
    for call_id, (name, args) in zip(turn.call_ids if turn else [], turn.tool_calls if turn else []):
        content.append({"toolUse": {"toolUseId": call_id, "name": name, "input": _tool_input(args)}})
    stop = turn.converse_stop_reason() if turn else "end_turn"
    return {"output": {"message": {"role": "assistant", "content": content}}, "stopReason": stop,
            "usage": _usage(body, text or "", turn), "metrics": {"latencyMs": 1}}


def converse_events(body: dict, turn: Turn | None) -> list[tuple[str, dict]]:
    """The ConverseStream events answering `body`: (`:event-type`, payload), in order. An
    exception is ("!<exception-type>", payload)."""
    events: list[tuple[str, dict]] = [("messageStart", {"role": "assistant"})]
    index = 0
    text = turn.content if turn else default_answer(body)
    if turn and turn.reasoning:
        for piece in re.findall(r"\s*\S+", turn.reasoning):
            events.append(("contentBlockDelta", {"contentBlockIndex": index,
                                                 "delta": {"reasoningContent": {"text": piece}}}))
        signature = turn.signature or "sig-" + _digest(turn.reasoning)
        events.append(("contentBlockDelta", {"contentBlockIndex": index, "delta": {
            "reasoningContent": {"signature": signature}}}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    if text:
        for n, piece in enumerate(re.findall(r"\s*\S+", text)):
            events.append(("contentBlockDelta", {"contentBlockIndex": index,
                                                 "delta": {"text": piece}, "p": "abcdefgh"[:n % 8]}))
            if n == 0 and turn and turn.stream_exception:
                kind, message = turn.stream_exception
                events.append(("!" + kind, {"message": message}))
                return events
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    for call_id, (name, args) in zip(turn.call_ids if turn else [], turn.tool_calls if turn else []):
        events.append(("contentBlockStart", {"contentBlockIndex": index, "start": {
            "toolUse": {"toolUseId": call_id, "name": name}}}))
        raw = args if isinstance(args, str) else json.dumps(args)
        if raw not in ("", "{}"):
            middle = len(raw) // 2
            for piece in (raw[:middle], raw[middle:]):
                events.append(("contentBlockDelta", {"contentBlockIndex": index,
                                                     "delta": {"toolUse": {"input": piece}}}))
        events.append(("contentBlockStop", {"contentBlockIndex": index}))
        index += 1
    stop = turn.converse_stop_reason() if turn else "end_turn"
    events.append(("messageStop", {"stopReason": stop}))
    events.append(("metadata", {"usage": _usage(body, text or "", turn),
                                "metrics": {"latencyMs": 1}}))
    return events


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- event-stream encoding -------------------------------------------------------------------
def encode_frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One `application/vnd.amazon.eventstream` message with string (type 7) headers."""
    encoded = b"".join(bytes([len(name)]) + name.encode() + b"\x07" +
                       struct.pack(">H", len(value.encode())) + value.encode()
                       for name, value in headers)
    total = 16 + len(encoded) + len(payload)
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event_frame(event_type: str, payload: dict) -> bytes:
    """The frame of one event; "!<type>" is an exception frame, "!corrupt-crc" a
    contentBlockDelta whose message CRC is wrong."""
    data = json.dumps(payload, separators=(",", ":")).encode()
    if event_type == "!corrupt-crc":
        frame = bytearray(event_frame("contentBlockDelta", {"contentBlockIndex": 0,
                                                            "delta": {"text": " lost"}}))
        frame[-1] ^= 1
        return bytes(frame)
    if event_type.startswith("!"):
        return encode_frame([(":exception-type", event_type[1:]),
                             (":content-type", "application/json"),
                             (":message-type", "exception")], data)
    return encode_frame([(":event-type", event_type), (":content-type", "application/json"),
                         (":message-type", "event")], data)


def send_event_stream(handler: Any, request_id: str, events: list[tuple[str, dict]]) -> None:
    """A 200 ConverseStream answer on `handler` (a BaseHTTPRequestHandler), chunked."""
    send_frames(handler, request_id, [event_frame(t, payload) for t, payload in events])


def send_frames(handler: Any, request_id: str, frames: list[bytes]) -> None:
    """A 200 event-stream answer of `frames` on `handler`, chunked."""
    handler.send_response(200)
    handler.send_header("Content-Type", EVENTSTREAM_TYPE)
    handler.send_header("x-amzn-RequestId", request_id)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    for frame in frames:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        handler.wfile.flush()
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def inference_profile_list(region: str, profiles: tuple) -> dict:
    """ListInferenceProfiles for (profile id, foundation-model id) pairs."""
    return {"inferenceProfileSummaries": [{
        "inferenceProfileId": profile_id, "inferenceProfileName": profile_id,
        "inferenceProfileArn": f"arn:aws:bedrock:{region}:123456789012:inference-profile/"
                               f"{profile_id}",
        "status": "ACTIVE", "type": "SYSTEM_DEFINED",
        "models": [{"modelArn": f"arn:aws:bedrock:{region}::foundation-model/{model_id}"}]}
        for profile_id, model_id in profiles]}


# -- embeddings ------------------------------------------------------------------------------
def embedding_of(text: str, dimensions: int) -> list[float]:
    """A deterministic unit-free vector for `text`."""
    seed = hashlib.sha256(text.encode()).digest()
    return [round((seed[i % 32] - 128) / 128, 6) for i in range(dimensions)]


def invoke_embeddings(model_id: str, body: Any) -> tuple[dict, dict[str, str]]:
    """InvokeModel for the embedding families; raises ConverseInvalid as Bedrock would."""
    if not isinstance(body, dict):
        raise ConverseInvalid("Malformed input request: the body must be a JSON object.")
    base = model_id.rsplit("/", 1)[-1].split(".", 1)[-1] if model_id.startswith(
        ("us.", "eu.", "apac.", "global.")) else model_id.rsplit("/", 1)[-1]
    if base.startswith("amazon.titan-embed-text"):
        allowed = {"inputText", "dimensions", "normalize", "embeddingTypes"}
        if set(body) - allowed or not isinstance(body.get("inputText"), str) or not body["inputText"]:
            raise ConverseInvalid("Malformed input request: #: extraneous key or missing inputText, "
                                  "please reformat your input and try again.")
        dims = body.get("dimensions", 1024)
        if "v2" in base and dims not in (256, 512, 1024):
            raise ConverseInvalid("Malformed input request: #/dimensions: 256, 512 or 1024.")
        if "v2" not in base and "dimensions" in body:
            raise ConverseInvalid("Malformed input request: #: extraneous key [dimensions].")
        return ({"embedding": embedding_of(body["inputText"], dims if "v2" in base else 1536),
                 "inputTextTokenCount": len(body["inputText"].split())}, {})
    if base.startswith("cohere.embed-"):
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise ConverseInvalid("Malformed input request: #/texts: expected a list of strings.")
        if body.get("input_type") not in ("search_document", "search_query", "classification",
                                          "clustering"):
            raise ConverseInvalid("Malformed input request: #/input_type is required.")
        v4 = base.startswith("cohere.embed-v4")
        if "output_dimension" in body and not v4:
            raise ConverseInvalid("Malformed input request: #: extraneous key [output_dimension].")
        dims = body.get("output_dimension", 1536 if v4 else 1024)
        vectors = [embedding_of(t, dims) for t in texts]
        embeddings: Any = {"float": vectors} if body.get("embedding_types") else vectors
        tokens = sum(len(t.split()) for t in texts)
        return ({"id": "emb-1", "texts": texts, "embeddings": embeddings,
                 "response_type": "embeddings_by_type" if body.get("embedding_types")
                 else "embeddings_floats"},
                {"X-Amzn-Bedrock-Input-Token-Count": str(tokens)})
    raise ConverseInvalid(f"The provided model identifier is invalid: {model_id} is not an "
                          "embedding model this mock serves.")
