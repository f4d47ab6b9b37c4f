"""The Responses API on the `remote::bedrock` plugin, against the mock Bedrock that verifies
SigV4 signatures and bearer tokens: a function-call round trip through `previous_response_id`,
streamed, with Bedrock's `reasoning` deltas carried into a `reasoning` output item."""

from __future__ import annotations

import json

import pytest

from aws_fixtures import (REGION, MODEL_ID, bedrock_mock, endpoint_env,  # noqa: F401
                          static_keys_env)
from bedrock_session import config_with
from ogx_harness import openai_client
from scripted_turns import Turn
from test_responses import RESPONSES_PROVIDER, WEATHER_TOOL

MODEL = f"bedrock-inference/{MODEL_ID}"
TOKEN = "responses-bearer-token"


def responses_config(provider_config: dict, extra_models: str = "") -> str:
    config = config_with(provider_config, extra_models)
    config = config.replace("apis: [inference, models]", "apis: [inference, models, responses]")
    return config.replace("registered_resources:",
                          RESPONSES_PROVIDER.strip("\n") + "\nregistered_resources:", 1)


def round_trip(client, mock) -> None:
    """Weather in Paris: a streamed function call with reasoning, its output, the answer."""
    mock.script(Turn(reasoning="The user wants the weather, so call the tool.",
                     tool_calls=[("get_weather", {"city": "Paris"})]),
                Turn(content="It is sunny in Paris."))
    with client.responses.stream(model=MODEL, input="What is the weather in Paris?",
                                 tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        first = stream.get_final_response()
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    reasoning, call = first.output
    assert reasoning.content[0].text == "The user wants the weather, so call the tool."
    assert "response.reasoning_text.delta" in [e.type for e in events]
    assert json.loads(call.arguments) == {"city": "Paris"}

    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "It is sunny in Paris."
    sent = mock.last_chat_request().json
    assert sent["model"] == MODEL_ID
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][1]["tool_calls"][0]["id"] == call.call_id


def test_a_round_trip_signed_with_sigv4(ogx_server, bedrock_mock):
    server = ogx_server(responses_config({"region_name": REGION}),
                        env={"AWS_DEFAULT_REGION": REGION, **endpoint_env(bedrock_mock),
                             **static_keys_env()})
    round_trip(openai_client(server.url), bedrock_mock)
    seen = bedrock_mock.chat_requests()[-2:]
    assert [(r.auth, r.status, r.scope_service) for r in seen] == \
        [("sigv4", 200, "bedrock")] * 2


def test_a_round_trip_with_a_bearer_token(ogx_server, bedrock_mock):
    bedrock_mock.add_bearer(TOKEN)
    server = ogx_server(responses_config({"aws_bedrock_bearer_token": TOKEN,
                                          "region_name": REGION}),
                        env=endpoint_env(bedrock_mock))
    round_trip(openai_client(server.url), bedrock_mock)
    seen = bedrock_mock.chat_requests()[-2:]
    assert [(r.auth, r.bearer_token, r.status) for r in seen] == [("bearer", TOKEN, 200)] * 2
    assert TOKEN not in server.output()


@pytest.mark.parametrize("stream", [False, True])
def test_a_rejected_signature_answers_as_chat_completions_do_before_any_event(
        ogx_server, bedrock_mock, stream):
    server = ogx_server(responses_config({"region_name": REGION}),
                        env={"AWS_DEFAULT_REGION": REGION, **endpoint_env(bedrock_mock),
                             "AWS_ACCESS_KEY_ID": "AKIAUNKNOWNKEY000001",
                             "AWS_SECRET_ACCESS_KEY": "wrong"})
    got = server.post("/v1/responses", json={"model": MODEL, "input": "hi", "stream": stream})
    chat = server.post("/v1/chat/completions", json={
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert got.headers["content-type"].startswith("application/json")
    assert (got.status_code, got.json()) == (chat.status_code, chat.json())
    assert got.status_code >= 400 and "Authentication failed" in got.text
    assert "wrong" not in got.text
