"""The Responses API as a user of the OpenAI SDK's `client.responses` sees it, on the `remote::vllm`
plugin against the mock upstream playing scripted turns: plain and streamed answers, function
calls answered through `previous_response_id`, parallel calls, structured output, chains that
survive a restart, the stored-response routes, and the failures a client must be told about."""

from __future__ import annotations

import json

import openai
import pytest
import requests

from mock_openai import answer_for
from ogx_harness import MY_MODEL, RegisteredModel, default_storage_yaml, free_port, vllm_config
from scripted_turns import Turn

MODEL = "vllm/my-model"

RESPONSES_PROVIDER = """
  responses:
  - provider_id: builtin
    provider_type: inline::builtin
    config:
      persistence:
        agent_state:
          namespace: agents
          backend: kv_default
        responses:
          table_name: responses
          backend: sql_default
          max_write_queue_size: 10000
          num_writers: 4
"""

WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]},
}
TIME_TOOL = {
    "type": "function", "name": "get_time", "description": "The time in a time zone.",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
}

TEXT_EVENTS = [
    "response.created", "response.in_progress", "response.output_item.added",
    "response.content_part.added", "response.output_text.delta",
    "response.output_text.done", "response.content_part.done", "response.output_item.done",
    "response.completed",
]


def responses_config(upstream_url: str, store_dir=None, models=(MY_MODEL,)) -> str:
    sections = default_storage_yaml(store_dir) if store_dir is not None else ""
    return vllm_config(upstream_url, distro_name="responses-e2e",
                       apis=("inference", "models", "responses"), models=models,
                       more_providers=RESPONSES_PROVIDER, more_sections=sections)


@pytest.fixture
def server(ogx_server, mock_upstream):
    return ogx_server(responses_config(mock_upstream.base_url))


def chat_requests(mock):
    return [r.json for r in mock.requests_to("/v1/chat/completions")]


def collapse(kinds: list[str]) -> list[str]:
    """Event types with runs of the same delta type collapsed to one."""
    out: list[str] = []
    for kind in kinds:
        if not (out and out[-1] == kind and kind.endswith(".delta")):
            out.append(kind)
    return out


def test_a_plain_answer_plain_and_streamed(server, mock_upstream):
    client = server.client()
    response = client.responses.create(model=MODEL, input="What is the capital of France?",
                                       instructions="Be brief.", metadata={"team": "e2e"})
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.model == MODEL
    assert response.output_text == answer_for("What is the capital of France?")
    assert response.instructions == "Be brief."
    assert response.metadata == {"team": "e2e"}
    assert response.error is None and response.incomplete_details is None
    assert response.usage.total_tokens == response.usage.input_tokens + \
        response.usage.output_tokens > 0
    sent = chat_requests(mock_upstream)[-1]
    assert sent["model"] == "upstream-model"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}

    with client.responses.stream(model=MODEL, input="Name a prime number.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert collapse(kinds) == TEXT_EVENTS
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == answer_for("Name a prime number.")
    assert final.output_text == deltas
    assert final.status == "completed"
    assert final.usage.output_tokens > 0
    # The stored copy is the final one.
    assert client.responses.retrieve(final.id).output_text == deltas


def test_events_are_framed_with_event_and_data_lines(server):
    with requests.post(server.url + "/v1/responses", stream=True, timeout=30,
                       json={"model": MODEL, "input": "hi", "stream": True}) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        blocks = raw.text.strip().split("\n\n")
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ")
        assert json.loads(data_line.removeprefix("data: "))["type"] == \
            event_line.removeprefix("event: ")


def test_a_function_call_round_trip_through_previous_response_id(server, mock_upstream):
    mock_upstream.script(Turn(tool_calls=[("get_weather", {"city": "Paris"})]),
                         Turn(content="It is sunny in Paris."))
    client = server.client()
    first = client.responses.create(model=MODEL, input="What is the weather in Paris?",
                                    tools=[WEATHER_TOOL])
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert call.call_id.startswith("call")
    assert call.id.startswith("fc_")
    sent = chat_requests(mock_upstream)[-1]
    assert sent["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city.",
        "parameters": WEATHER_TOOL["parameters"]}}]

    second = client.responses.create(
        model=MODEL, previous_response_id=first.id, tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "It is sunny in Paris."
    assert second.previous_response_id == first.id
    messages = chat_requests(mock_upstream)[-1]["messages"]
    assert messages == [
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": call.arguments}}]},
        {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"},
    ]


def test_two_parallel_calls_and_text_keep_their_own_output_indexes(server, mock_upstream):
    mock_upstream.script(Turn(content="Checking both.",
                              tool_calls=[("get_weather", {"city": "Oslo"}),
                                          ("get_time", {"tz": "Europe/Oslo"})]))
    client = server.client()
    with client.responses.stream(model=MODEL, input="Weather and time in Oslo?",
                                 tools=[WEATHER_TOOL, TIME_TOOL],
                                 parallel_tool_calls=True) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]
    assert final.output[0].content[0].text == "Checking both."
    calls = final.output[1:]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert [json.loads(c.arguments) for c in calls] == [{"city": "Oslo"}, {"tz": "Europe/Oslo"}]
    assert len({c.call_id for c in calls}) == 2
    added = [e for e in events if e.type == "response.output_item.added"]
    assert [(e.output_index, e.item.type) for e in added] == \
        [(0, "message"), (1, "function_call"), (2, "function_call")]
    for index, call in zip((1, 2), calls):
        deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"
                  and e.output_index == index]
        assert "".join(deltas) == call.arguments
        [done] = [e for e in events if e.type == "response.function_call_arguments.done"
                  and e.output_index == index]
        assert done.arguments == call.arguments and done.item_id == call.id
    assert chat_requests(mock_upstream)[-1]["parallel_tool_calls"] is True


def test_json_schema_output(server, mock_upstream):
    mock_upstream.script(Turn(content='{"city": "Paris", "population": 2102650}'))
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                               "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    response = server.client().responses.create(
        model=MODEL, input="The largest city of France, as JSON.",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema,
                         "strict": True}})
    assert json.loads(response.output_text) == {"city": "Paris", "population": 2102650}
    assert response.text.format.type == "json_schema"
    assert chat_requests(mock_upstream)[-1]["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}}


def test_a_three_turn_chain_survives_a_restart_and_the_stored_routes(
        ogx_server, mock_upstream, tmp_path):
    config = responses_config(mock_upstream.base_url, tmp_path / "store")
    first_server = ogx_server(config)
    client = first_server.client()
    one = client.responses.create(model=MODEL, input="My name is Ada.")
    two = client.responses.create(model=MODEL, input="I like tea.", previous_response_id=one.id)
    first_server.stop()

    client = ogx_server(config).client()
    three = client.responses.create(model=MODEL, input="What do you know?",
                                    previous_response_id=two.id, instructions="Be brief.")
    messages = chat_requests(mock_upstream)[-1]["messages"]
    texts = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]
             for m in messages]
    assert texts == ["Be brief.", "My name is Ada.", answer_for("My name is Ada."),
                     "I like tea.", answer_for("I like tea."), "What do you know?"]
    assert three.previous_response_id == two.id

    got = client.responses.retrieve(two.id)
    assert got.output_text == answer_for("I like tea.") and got.status == "completed"
    items = client.responses.input_items.list(two.id)
    assert [(i.type, i.role, i.content[0].text) for i in items.data] == \
        [("message", "user", "I like tea.")]
    assert items.data[0].id.startswith("msg_")

    listed = client.get("/responses", cast_to=object, options={"params": {"limit": 2}})
    assert [r["id"] for r in listed["data"]] == [three.id, two.id]
    assert listed["has_more"] is True
    rest = client.get("/responses", cast_to=object,
                      options={"params": {"after": two.id, "order": "desc"}})
    assert [r["id"] for r in rest["data"]] == [one.id]
    assert rest["data"][0]["input"][0]["content"][0]["text"] == "My name is Ada."

    deleted = client.responses.delete(two.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.retrieve(two.id)
    assert f"Response '{two.id}' not found" in missing.value.message
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="And now?", previous_response_id=two.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, input="x", previous_response_id="resp_unknown")
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(two.id)


@pytest.mark.parametrize("tool", [
    {"type": "web_search"},
    {"type": "file_search", "vector_store_ids": ["vs_1"]},
    {"type": "mcp", "server_label": "deepwiki", "server_url": "http://127.0.0.1:9/mcp"},
])
def test_built_in_tools_are_refused_naming_the_type(server, mock_upstream, tool):
    with pytest.raises(openai.BadRequestError) as refused:
        server.client().responses.create(model=MODEL, input="Search for it.", tools=[tool])
    assert f"Tool type '{tool['type']}'" in refused.value.message
    assert "not supported yet" in refused.value.message
    assert chat_requests(mock_upstream) == []


def test_an_upstream_failure_mid_stream_is_response_failed(server, mock_upstream):
    mock_upstream.script(Turn(content="one two three four five", fail_mid_stream=True))
    client = server.client()
    events = list(client.responses.create(model=MODEL, input="Count.", stream=True))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed"
    assert failed.error.code == "server_error" and failed.error.message
    assert client.responses.retrieve(failed.id).status == "failed"

    mock_upstream.script(Turn(content="one two three four", fail_mid_stream=True))
    with pytest.raises(openai.APIStatusError) as plain:
        client.responses.create(model=MODEL, input="Count again.")
    assert plain.value.status_code == 502


def test_a_cut_answer_is_incomplete_with_openais_reason(server, mock_upstream):
    mock_upstream.script(Turn(content="It was the best of", finish_reason="length"))
    response = server.client().responses.create(model=MODEL, input="Tell a story.",
                                                max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.max_output_tokens == 16
    assert chat_requests(mock_upstream)[-1]["max_completion_tokens"] == 16


def test_an_agent_loop_written_with_the_sdk_runs_unchanged(server, mock_upstream):
    mock_upstream.script(
        Turn(tool_calls=[("get_weather", {"city": "Rome"}), ("get_time", {"tz": "Europe/Rome"})]),
        Turn(content="Let me check Milan too.", tool_calls=[("get_weather", {"city": "Milan"})]),
        Turn(content="Rome is warm at noon; Milan is cloudy."))
    tools = {"get_weather": lambda city: f"{city}: warm" if city == "Rome" else f"{city}: cloudy",
             "get_time": lambda tz: "12:00"}
    client = server.client()
    response = client.responses.create(model=MODEL, input="Compare Rome and Milan.",
                                       tools=[WEATHER_TOOL, TIME_TOOL])
    rounds = 0
    while any(item.type == "function_call" for item in response.output):
        outputs = [{"type": "function_call_output", "call_id": item.call_id,
                    "output": tools[item.name](**json.loads(item.arguments))}
                   for item in response.output if item.type == "function_call"]
        response = client.responses.create(model=MODEL, previous_response_id=response.id,
                                           input=outputs, tools=[WEATHER_TOOL, TIME_TOOL])
        rounds += 1
    assert rounds == 2
    assert response.output_text == "Rome is warm at noon; Milan is cloudy."
    last = chat_requests(mock_upstream)[-1]["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "tool", "tool", "assistant",
                                         "tool"]
    assert last[2]["content"] == "Rome: warm" and last[5]["content"] == "Milan: cloudy"


def test_form_encoded_requests_and_bad_bodies(server, mock_upstream):
    answered = server.post("/v1/responses", data={
        "model": MODEL, "input": "Hello from a form", "temperature": "0.5",
        "metadata": json.dumps({"source": "form"})})
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["output"][0]["content"][0]["text"] == answer_for("Hello from a form")
    assert body["metadata"] == {"source": "form"} and body["temperature"] == 0.5

    cases = [
        ({"input": "x"}, 400, "'model' is required"),
        ({"model": MODEL, "input": "x", "temperature": 9}, 400, "'temperature'"),
        ({"model": "nobody/none", "input": "x"}, 404, "Model 'nobody/none' not found"),
        ({"model": MODEL, "input": [{"type": "item_reference", "id": "x"}]}, 400,
         "'item_reference' is not supported"),
        ({"model": MODEL, "input": [{"type": "function_call_output", "call_id": "call_x",
                                     "output": "42"}]}, 400,
         "No tool call found for function call output with call_id call_x."),
    ]
    for payload, status, message in cases:
        got = server.post("/v1/responses", json=payload)
        assert got.status_code == status, (payload, got.text)
        assert message in got.json()["error"]["message"]
    assert server.get("/v1/responses/resp_nothing").status_code == 404


def test_store_false_keeps_nothing(server, mock_upstream):
    client = server.client()
    response = client.responses.create(model=MODEL, input="Forget this.", store=False)
    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_without_a_responses_provider_the_routes_say_how_to_enable_them(
        ogx_server, mock_upstream):
    server = ogx_server(vllm_config(mock_upstream.base_url, distro_name="no-responses"))
    got = server.post("/v1/responses", json={"model": MODEL, "input": "hi"})
    assert got.status_code == 404
    assert "add a `responses` provider" in got.json()["error"]["message"]


def test_the_responses_provider_is_listed(server):
    providers = server.get("/v1/providers").json()["data"]
    [builtin] = [p for p in providers if p["api"] == "responses"]
    assert builtin["provider_id"] == "builtin"
    assert builtin["provider_type"] == "inline::builtin"
    assert "Responses API: provider builtin" in server.output()


@pytest.mark.parametrize("change, key, message", [
    (("provider_type: inline::builtin", "provider_type: remote::openai"),
     "providers.responses[0].provider_type",
     "provider type 'remote::openai' is not available for the responses API"),
    (("backend: sql_default\n          max_write", "backend: kv_default\n          max_write"),
     "providers.responses[0].config.persistence.responses",
     "references backend 'kv_default' of type 'kv_sqlite'"),
    (("table_name: responses", "table_name: \"bad-name\""),
     "providers.responses[0].config.persistence.responses.table_name",
     "is not a plain identifier"),
])
def test_a_bad_responses_provider_stops_start_up_naming_the_key(
        run_ogx, tmp_path, mock_upstream, change, key, message):
    text = responses_config(mock_upstream.base_url, tmp_path / "store").replace(*change)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    result = run_ogx(["run", "--port", free_port(), config])
    assert result.returncode != 0
    assert key in result.output and message in result.output, result.output


def test_a_model_that_is_not_an_llm_is_refused(ogx_server, mock_upstream):
    embedder = RegisteredModel("embedder", "upstream-embedder", "rerank")
    server = ogx_server(responses_config(mock_upstream.base_url, models=(MY_MODEL, embedder)))
    got = server.post("/v1/responses", json={"model": "vllm/embedder", "input": "hi"})
    assert got.status_code == 400
    assert got.json()["error"]["message"] == \
        "Model 'vllm/embedder' is of type 'rerank' rather than the expected type 'llm'"


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_refusal_before_any_output_is_an_http_error(server, stream):
    got = server.post("/v1/responses", json={"model": MODEL, "stream": stream,
                                             "input": "Busy? [mock:error=429]"})
    assert got.status_code == 429, got.text
    assert got.headers["content-type"].startswith("application/json")
    assert "Mock upstream refused the request with status 429" in \
        got.json()["error"]["message"]
