"""The Responses API on Converse models: a Claude model id and an inference-profile id through
`/v1/responses`, a streamed function call with reasoning, its output chained by
`previous_response_id`, signed with SigV4 (the mock verifies it with botocore and checks the
Converse bodies against Bedrock's rules)."""

from __future__ import annotations

import json

import pytest

from aws_fixtures import REGION, bedrock_mock, endpoint_env, static_keys_env  # noqa: F401
from ogx_harness import openai_client
from scripted_turns import Turn
from test_bedrock_converse import CLAUDE, model_entries
from test_responses import WEATHER_TOOL
from test_responses_bedrock import responses_config


@pytest.mark.parametrize("model", [CLAUDE, "us.anthropic.claude-sonnet-4-20250514-v1:0"])
def test_a_tool_loop_by_previous_response_id(ogx_server, bedrock_mock, model):
    server = ogx_server(responses_config({"region_name": REGION}, model_entries()), env={**endpoint_env(bedrock_mock), **static_keys_env()})
    client = openai_client(server.url)
    bedrock_mock.script(Turn(reasoning="The user wants the weather, so call the tool.",
                             signature="c2ln", tool_calls=[("get_weather", {"city": "Paris"})]),
                        Turn(content="It is sunny in Paris."))
    with client.responses.stream(model=f"bedrock-inference/{model}", tools=[WEATHER_TOOL],
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
        model=f"bedrock-inference/{model}", previous_response_id=first.id, tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "It is sunny in Paris."
    seen = bedrock_mock.converse_requests()
    assert [(r.path.rsplit("/", 1)[1], r.auth, r.status, r.model_id) for r in seen] == \
        [("converse-stream", "sigv4", 200, model)] * 2  # the host streams both turns upstream
    sent = seen[-1].json
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"][-1]["toolUse"]["toolUseId"] == call.call_id
    assert sent["messages"][2]["content"] == [
        {"toolResult": {"toolUseId": call.call_id, "content": [{"text": "sunny"}]}}]
    assert sent["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
