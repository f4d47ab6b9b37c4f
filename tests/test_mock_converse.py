"""Self-tests of the mock's Converse side (mock_converse.py): its event-stream frames are what
botocore's own parser reads and match the reference vectors byte for byte, the model id in
the path is decoded, and what it refuses is what Bedrock refuses."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from botocore.eventstream import EventStreamBuffer

from mock_converse import (MSG_ALTERNATE, MSG_FIRST_USER, MSG_TOOLCONFIG, ConverseInvalid,
                           encode_frame, event_frame, needs_profile_message, validate)
from scripted_turns import Turn
from test_mock_bedrock import mock, send, signed  # noqa: F401

CLAUDE = "anthropic.claude-3-haiku-20240307-v1:0"


def converse_path(model: str, operation: str = "converse") -> str:
    return f"/model/{quote(model, safe='')}/{operation}"


def body_of(*messages: dict, **extra) -> str:
    return json.dumps({"messages": list(messages), **extra})


def user(text: str) -> dict:
    return {"role": "user", "content": [{"text": text}]}


def read_events(raw: bytes) -> list[tuple[str, str, dict]]:
    """(message type, event or exception type, payload) of every frame, read by botocore."""
    buffer = EventStreamBuffer()
    buffer.add_data(raw)
    out = []
    for message in buffer:
        headers = message.headers
        kind = headers[":message-type"]
        name = headers[":event-type"] if kind == "event" else headers[":exception-type"]
        out.append((kind, name, json.loads(message.payload)))
    return out


def test_the_encoder_reproduces_the_reference_vectors():
    # No headers, payload {'foo':'bar'} (smithy-rs / aws-c-event-stream).
    assert encode_frame([], b"{'foo':'bar'}").hex() == \
        "0000001d00000000fd528c5a7b27666f6f273a27626172277dc3653936"
    # One string header content-type: application/json.
    assert encode_frame([("content-type", "application/json")], b"{'foo':'bar'}").hex() == (
        "0000003d0000002007fd83960c636f6e74656e742d747970650700106170706c69636174696f6e2f6a"
        "736f6e7b27666f6f273a27626172277d8d9c08b1")
    # A Bedrock-shaped contentBlockDelta.
    assert event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello"}}
                       ).hex().endswith("67623831")


def test_a_signed_converse_stream_reads_back_with_botocore(mock):  # noqa: F811
    mock.script(Turn(content="Sunny today.", reasoning="Check the weather.", signature="c2ln",
                     tool_calls=[("weather", {"city": "Paris"})]))
    model = "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us." + CLAUDE
    body = body_of(user("Weather?"), toolConfig={"tools": [{"toolSpec": {
        "name": "weather", "inputSchema": {"json": {"type": "object"}}}}]})
    response = send(signed(mock, path=converse_path(model, "converse-stream"), body=body))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
    events = read_events(response.content)
    assert [name for _, name, _ in events] == [
        "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta",
        "contentBlockDelta", "contentBlockStop", "contentBlockDelta", "contentBlockDelta",
        "contentBlockStop", "contentBlockStart", "contentBlockDelta", "contentBlockDelta",
        "contentBlockStop", "messageStop", "metadata"]
    assert events[4][2]["delta"]["reasoningContent"]["signature"] == "c2ln"
    args = "".join(p["delta"]["toolUse"]["input"] for _, n, p in events[10:12])
    assert json.loads(args) == {"city": "Paris"}
    assert events[-2][2] == {"stopReason": "tool_use"}
    assert mock.last_converse_request().model_id == model


def test_an_exception_frame_mid_stream(mock):  # noqa: F811
    mock.script(Turn(content="one two three", stream_exception=("throttlingException", "slow")))
    response = send(signed(mock, path=converse_path(CLAUDE, "converse-stream"),
                           body=body_of(user("hi"))))
    events = read_events(response.content)
    assert events[-1] == ("exception", "throttlingException", {"message": "slow"})
    assert [kind for kind, _, _ in events[:-1]] == ["event", "event"]


def test_profile_only_models_and_scripted_errors(mock):  # noqa: F811
    model = "anthropic.claude-3-5-haiku-20241022-v1:0"
    response = send(signed(mock, path=converse_path(model), body=body_of(user("hi"))))
    assert (response.status_code, response.json()["message"]) == (400, needs_profile_message(model))
    assert response.headers["x-amzn-errortype"] == "ValidationException"
    mock.script(Turn(error=(429, "ThrottlingException", "Too many requests")))
    response = send(signed(mock, path=converse_path(CLAUDE), body=body_of(user("hi"))))
    assert (response.status_code, response.headers["x-amzn-errortype"]) == \
        (429, "ThrottlingException")


TOOL_CONFIG = {"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}]}
USE = {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "f", "input": {}}}]}
RESULT = {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "r"}]}}]}


@pytest.mark.parametrize("body, message", [
    ({"messages": [{"role": "assistant", "content": [{"text": "hi"}]}]}, MSG_FIRST_USER),
    ({"messages": [user("a"), user("b")]}, MSG_ALTERNATE),
    ({"messages": [user("a"), USE, RESULT]}, MSG_TOOLCONFIG),
    ({"messages": [{"role": "user", "content": [{"text": "  "}]}]}, "is blank"),
    ({"messages": [{"role": "user", "content": []}]}, "is empty"),
    ({"messages": [{"role": "user", "content": [{"text": "a", "image": {}}]}]}, "exactly one"),
    ({"messages": [user("a"), USE, user("b")], "toolConfig": TOOL_CONFIG}, "Expected toolResult"),
    ({"messages": [user("a"), {"role": "assistant", "content": [{"text": "x"}]}, RESULT],
      "toolConfig": TOOL_CONFIG}, "exceeds the number of toolUse"),
    ({"messages": [user("a")], "inferenceConfig": {"temperature": 1.5}}, "between 0 and 1"),
    ({"messages": [user("a")], "toolConfig": {**TOOL_CONFIG, "toolChoice": {"tool": {"name": "g"}}}},
     "not defined"),
    ({"messages": [{"role": "user", "content": [{"image": {"format": "bmp", "source": {"bytes": "AA=="}}}]}]},
     "format"),
])
def test_bedrock_rules(body, message):
    with pytest.raises(ConverseInvalid, match=message):
        validate(body)


def test_a_valid_tool_round_trip_passes():
    validate({"messages": [user("a"), USE, RESULT], "toolConfig": TOOL_CONFIG,
              "system": [{"text": "s"}, {"cachePoint": {"type": "default"}}]})
