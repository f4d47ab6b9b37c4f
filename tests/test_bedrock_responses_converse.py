"""The Responses API on Converse models: a Claude, a Nova and a Llama model id, an inference
profile and an ARN through `/v1/responses`, a streamed function call with reasoning, its output
chained by `previous_response_id`, signed with SigV4 and with a bearer token (the mock verifies
both and checks the Converse bodies against Bedrock's rules)."""

from __future__ import annotations

import json

import pytest

from aws_fixtures import REGION, endpoint_env, started_mock, static_keys_env
from ogx_harness import openai_client
from scripted_turns import Turn
from test_bedrock_converse import CONVERSE_MODELS, model_entries
from test_responses import WEATHER_TOOL
from test_responses_bedrock import responses_config

TOKEN = "responses-converse-bearer-token"


@pytest.fixture(scope="module")
def module_mock():
    with started_mock() as mock:
        mock.add_bearer(TOKEN)
        yield mock


@pytest.fixture(scope="module")
def servers(module_mock, module_ogx_server):
    """One ogx signing with SigV4, one sending the bearer token."""
    return {
        "sigv4": module_ogx_server(responses_config({"region_name": REGION}, model_entries()),
                                   env={**endpoint_env(module_mock), **static_keys_env()}),
        "bearer": module_ogx_server(
            responses_config({"region_name": REGION, "aws_bedrock_bearer_token": TOKEN},
                             model_entries()),
            env=endpoint_env(module_mock)),
    }


@pytest.mark.parametrize("auth", ["sigv4", "bearer"])
@pytest.mark.parametrize("name", sorted(CONVERSE_MODELS))
def test_a_tool_loop_by_previous_response_id(servers, module_mock, name, auth):
    mock = module_mock
    mock.clear()
    client = openai_client(servers[auth].url)
    model = f"bedrock-inference/{name}"
    mock.script(Turn(reasoning="The user wants the weather, so call the tool.",
                     signature="c2ln", tool_calls=[("get_weather", {"city": "Paris"})]),
                Turn(content="It is sunny in Paris."))
    with client.responses.stream(model=model, tools=[WEATHER_TOOL],
                                 input="What is the weather in Paris?") as stream:
        events = [e.type for e in stream]
        first = stream.get_final_response()
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    assert first.output[0].content[0].text == "The user wants the weather, so call the tool."
    assert "response.reasoning_text.delta" in events
    assert "response.function_call_arguments.delta" in events
    call = first.output[1]
    assert json.loads(call.arguments) == {"city": "Paris"}

    second = client.responses.create(
        model=model, previous_response_id=first.id, tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "It is sunny in Paris."
    seen = mock.converse_requests()
    # The host streams both turns upstream, the non-streamed one included.
    assert [(r.path.rsplit("/", 1)[1], r.auth, r.status, r.model_id) for r in seen] == \
        [("converse-stream", auth, 200, CONVERSE_MODELS[name])] * 2
    if auth == "bearer":
        assert {r.bearer_token for r in seen} == {TOKEN}
    sent = seen[-1].json
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"][-1]["toolUse"]["toolUseId"] == call.call_id
    assert sent["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": call.call_id, "content": [{"text": "sunny"}]}}]
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
