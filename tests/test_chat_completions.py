"""Chat completions through ogx to an OpenAI-compatible upstream (remote::vllm on the mock), the
way a user of the OpenAI SDK sees them."""

from __future__ import annotations

import json
import threading

import pytest

from mock_openai import EXTRA_FIELD, EXTRA_FIELD_VALUE, answer_for
from ogx_harness import RegisteredModel, sse_events, vllm_config


@pytest.fixture(scope="module")
def server(module_mock_upstream, module_ogx_server):
    return module_ogx_server(vllm_config(
        module_mock_upstream.base_url, distro_name="chat-e2e",
        models=[RegisteredModel("my-model", "upstream-model", "llm")]))


@pytest.fixture
def mock(module_mock_upstream):
    module_mock_upstream.clear()
    return module_mock_upstream


def test_a_chat_answer_comes_back_under_the_id_the_client_used(server, mock):
    answer = server.client().chat.completions.create(
        model="vllm/my-model",
        messages=[{"role": "user", "content": "What is the capital of France?"}])

    assert answer.choices[0].message.content == answer_for("What is the capital of France?")
    assert answer.model == "vllm/my-model"
    upstream = mock.last_request("/v1/chat/completions")
    assert upstream.json["model"] == "upstream-model"
    assert upstream.json["messages"] == [
        {"role": "user", "content": "What is the capital of France?"}]
    assert answer.usage.total_tokens == upstream.response["usage"]["total_tokens"]


def test_unknown_request_fields_reach_the_upstream(server, mock):
    server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "hi"}],
        extra_body={"guided_choice": ["yes", "no"], "top_k": 7})

    upstream = mock.last_request("/v1/chat/completions")
    assert upstream.json["guided_choice"] == ["yes", "no"]
    assert upstream.json["top_k"] == 7


def test_unknown_response_fields_reach_the_client(server, mock):
    answer = server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "hi"}])

    assert answer.model_extra[EXTRA_FIELD] == EXTRA_FIELD_VALUE


def test_a_streamed_answer_concatenates_to_the_whole_answer(server, mock):
    stream = server.client().chat.completions.create(
        model="vllm/my-model", stream=True,
        messages=[{"role": "user", "content": "Tell me a short story"}])
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer_for("Tell me a short story")
    assert {c.model for c in chunks} == {"vllm/my-model"}
    assert mock.last_request("/v1/chat/completions").json["model"] == "upstream-model"


def test_the_raw_stream_is_server_sent_events_ending_with_done(server, mock):
    response = server.post("/v1/chat/completions", stream=True, json={
        "model": "vllm/my-model", "stream": True,
        "messages": [{"role": "user", "content": "raw stream"}]})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = list(sse_events(response))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks and all(c["model"] == "vllm/my-model" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                   if c.get("choices")) == answer_for("raw stream")


def test_an_unregistered_model_is_routed_by_its_provider_prefix(server, mock):
    answer = server.client().chat.completions.create(
        model="vllm/some-unregistered/model:latest",
        messages=[{"role": "user", "content": "fallback please"}])

    assert answer.model == "vllm/some-unregistered/model:latest"
    assert answer.choices[0].message.content == answer_for("fallback please")
    assert mock.last_request("/v1/chat/completions").json["model"] == "some-unregistered/model:latest"


def test_two_concurrent_streams_do_not_mix(server, mock):
    # Slow chunks make the two streams overlap in time.
    questions = {"first": "[mock:slow=0.05] alpha bravo charlie delta echo",
                 "second": "[mock:slow=0.05] one two three four five six"}
    answers: dict[str, str] = {}
    errors: list[BaseException] = []

    def converse(name: str) -> None:
        try:
            stream = server.client().chat.completions.create(
                model="vllm/my-model", stream=True,
                messages=[{"role": "user", "content": questions[name]}])
            answers[name] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        except BaseException as exc:  # reported below, from the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=converse, args=(name,)) for name in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a stream did not finish"
    assert answers == {name: answer_for(q) for name, q in questions.items()}


def test_text_completions_pass_through(server, mock):
    completion = server.client().completions.create(model="vllm/my-model", prompt="Once upon a time")

    assert completion.choices[0].text == answer_for("Once upon a time")
    assert completion.model == "vllm/my-model"
    assert mock.last_request("/v1/completions").json["model"] == "upstream-model"


def test_embeddings_pass_through(server, mock):
    embeddings = server.client().embeddings.create(model="vllm/embedder", input=["some text"])

    upstream = mock.last_request("/v1/embeddings")
    assert upstream.json["model"] == "embedder"
    assert embeddings.model == "vllm/embedder"
    assert embeddings.data[0].embedding == upstream.response["data"][0]["embedding"]


def test_the_upstream_gets_a_bearer_token_from_the_config(server, mock):
    server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "auth?"}])

    assert mock.last_request("/v1/chat/completions").headers["authorization"] == "Bearer fake-token"
