"""The mock upstream, checked with the same OpenAI SDK the gateway tests use. These run without
the ogx binary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openai
import pytest
import requests
from openai import OpenAI

import mock_openai
from mock_openai import EXTRA_FIELD, EXTRA_FIELD_VALUE, MockOpenAI, answer_for, error_message
from ogx_harness import free_port, sse_events, wait_until
from scripted_turns import Turn


def client_for(mock: MockOpenAI, api_key: str = "unused") -> OpenAI:
    return OpenAI(base_url=mock.base_url, api_key=api_key, max_retries=0, timeout=10)


def test_lists_its_models(mock_upstream):
    models = client_for(mock_upstream).models.list()

    assert [m.id for m in models.data] == list(mock_upstream.models)
    assert mock_upstream.last_request("/v1/models").method == "GET"


def test_chat_answer_echoes_the_last_user_message_and_model(mock_upstream):
    answer = client_for(mock_upstream).chat.completions.create(
        model="upstream-model",
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Hello there"}],
        extra_body={"custom_knob": {"depth": 3}})

    assert answer.choices[0].message.content == answer_for("Hello there") == "You said: Hello there"
    assert answer.model == "upstream-model"
    assert answer.id and answer.usage.total_tokens > 0
    assert answer.model_extra[EXTRA_FIELD] == EXTRA_FIELD_VALUE
    seen = mock_upstream.last_request("/v1/chat/completions")
    assert seen.json["custom_knob"] == {"depth": 3}
    assert seen.headers["authorization"] == "Bearer unused"
    assert seen.response["usage"] == answer.usage.model_dump(exclude_unset=True)


def test_chat_stream_splits_the_answer_into_words(mock_upstream):
    stream = client_for(mock_upstream).chat.completions.create(
        model="upstream-model", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "stream this please"}])
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer_for("stream this please")
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == \
        len(mock_openai.stream_pieces(text))
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_raw_chat_stream_is_sse_ending_with_done(mock_upstream):
    response = requests.post(f"{mock_upstream.base_url}/chat/completions", stream=True, timeout=10,
                             json={"model": "m", "stream": True,
                                   "messages": [{"role": "user", "content": "raw bytes"}]})

    assert response.headers["content-type"].startswith("text/event-stream")
    events = list(sse_events(response))
    assert events[-1] == "[DONE]"
    assert [json.loads(e)["object"] for e in events[:-1]] == \
        ["chat.completion.chunk"] * (len(events) - 1)


def test_completions_and_embeddings(mock_upstream):
    client = client_for(mock_upstream)

    completion = client.completions.create(model="upstream-model", prompt="Once upon")
    embeddings = client.embeddings.create(model="embedder", input=["a", "b"], dimensions=5)

    assert completion.choices[0].text == answer_for("Once upon")
    assert [e.embedding for e in embeddings.data] == \
        [mock_openai.embedding_for("a", 5), mock_openai.embedding_for("b", 5)]
    assert embeddings.model == "embedder"


@pytest.mark.parametrize("status, error_class", [
    (400, openai.BadRequestError),
    (429, openai.RateLimitError),
    (500, openai.InternalServerError),
])
def test_error_marker_answers_that_status(mock_upstream, status, error_class):
    with pytest.raises(error_class) as raised:
        client_for(mock_upstream).chat.completions.create(
            model="m", messages=[{"role": "user", "content": f"[mock:error={status}] please"}])

    assert raised.value.status_code == status
    assert raised.value.body["message"] == error_message(status)


def test_fail_mid_stream_sends_two_chunks_then_resets(mock_upstream):
    response = requests.post(f"{mock_upstream.base_url}/chat/completions", stream=True, timeout=10,
                             json={"model": "m", "stream": True, "messages": [
                                 {"role": "user", "content": "[mock:fail-mid-stream] go on"}]})
    events = []
    with pytest.raises(requests.exceptions.RequestException):
        for event in sse_events(response):
            events.append(event)

    assert len(events) == 2
    assert "[DONE]" not in events
    assert len(mock_upstream.last_request("/v1/chat/completions").stream_chunks) == 2


def test_slow_stream_still_delivers_the_whole_answer(mock_upstream):
    stream = client_for(mock_upstream).chat.completions.create(
        model="m", stream=True,
        messages=[{"role": "user", "content": "[mock:slow=0.01] take your time"}])

    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == answer_for("[mock:slow=0.01] take your time")


def test_required_key_is_enforced():
    with MockOpenAI(require_key="sekret") as mock:
        with pytest.raises(openai.AuthenticationError):
            client_for(mock, api_key="wrong").models.list()
        models = client_for(mock, api_key="sekret").models.list()

    assert [m.id for m in models.data] == list(mock.models)


def test_unknown_route_is_a_404_with_an_openai_error_body(mock_upstream):
    response = requests.get(f"{mock_upstream.url}/models", timeout=10)

    assert response.status_code == 404
    assert "/models" in response.json()["error"]["message"]


def test_runs_from_the_command_line(tmp_path):
    port = free_port()
    script = Path(mock_openai.__file__)
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        assert "listening on" in proc.stdout.readline()

        def models():
            try:
                return requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).json()
            except requests.RequestException:
                return None
        listed = wait_until(models, timeout=10, what="the mock's /v1/models")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()

    assert [m["id"] for m in listed["data"]] == list(mock_openai.DEFAULT_MODELS)


def test_scripted_turns_are_served_in_order_then_the_usual_answers(mock_upstream):
    mock_upstream.script(
        Turn(content="Two calls.", tool_calls=[("f", {"a": 1}), ("g", '{"b": 2}')]),
        Turn(reasoning="thinking it over", content="done"))
    client = client_for(mock_upstream)
    ask = [{"role": "user", "content": "go"}]
    plain = client.chat.completions.create(model="m", messages=ask)
    message = plain.choices[0].message
    assert plain.choices[0].finish_reason == "tool_calls"
    assert message.content == "Two calls."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == \
        [("f", {"a": 1}), ("g", {"b": 2})]
    assert len({c.id for c in message.tool_calls}) == 2

    chunks = list(client.chat.completions.create(model="m", messages=ask, stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "done"
    assert "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas) == \
        "thinking it over"
    # Nothing left in the script: the usual echo.
    again = client.chat.completions.create(model="m", messages=ask)
    assert again.choices[0].message.content == answer_for("go")
