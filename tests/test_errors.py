"""What a client sees when its request is wrong or the upstream fails: OpenAI error bodies with
the right status, and streams that end with an error event instead of hanging."""

from __future__ import annotations

import json

import openai
import pytest

from mock_openai import answer_for, error_message, stream_pieces
from ogx_harness import error_message_of, sse_events, vllm_config


@pytest.fixture(scope="module")
def server(module_mock_upstream, module_ogx_server):
    return module_ogx_server(vllm_config(module_mock_upstream.base_url, distro_name="errors-e2e"))


def test_a_body_that_is_not_json_is_a_400(server):
    response = server.post("/v1/chat/completions", data=b'{"model": "vllm/my-model", "messages": [',
                           headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    error_message_of(response)


@pytest.mark.parametrize("missing", ["model", "messages"])
def test_a_request_without_a_required_field_is_a_400_naming_it(server, missing):
    body = {"model": "vllm/my-model", "messages": [{"role": "user", "content": "hi"}]}
    del body[missing]

    response = server.post("/v1/chat/completions", json=body)

    assert response.status_code == 400
    assert missing in error_message_of(response)


def test_an_unknown_model_is_a_404_with_the_ogx_message(server):
    with pytest.raises(openai.NotFoundError) as raised:
        server.client().chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}])

    assert raised.value.status_code == 404
    assert raised.value.body["message"] == \
        "Model 'no-such-model' not found. Use 'client.models.list()' to list available Models."


@pytest.mark.parametrize("status", [400, 429, 500])
def test_an_upstream_error_status_reaches_the_client_with_its_message(server, status):
    response = server.post("/v1/chat/completions", json={
        "model": "vllm/my-model",
        "messages": [{"role": "user", "content": f"[mock:error={status}] please fail"}]})

    assert response.status_code == status
    assert error_message(status) in error_message_of(response)


def test_the_sdk_sees_an_upstream_rate_limit_as_a_rate_limit(server):
    with pytest.raises(openai.RateLimitError) as raised:
        server.client().chat.completions.create(
            model="vllm/my-model", messages=[{"role": "user", "content": "[mock:error=429] slow down"}])

    assert error_message(429) in str(raised.value)


def test_an_upstream_error_before_the_first_chunk_is_a_plain_http_error(server):
    response = server.post("/v1/chat/completions", json={
        "model": "vllm/my-model", "stream": True,
        "messages": [{"role": "user", "content": "[mock:error=429] stream nothing"}]})

    assert response.status_code == 429
    assert error_message(429) in error_message_of(response)


def test_a_stream_that_breaks_mid_way_ends_with_an_error_event(server):
    question = "[mock:fail-mid-stream] tell me everything"
    response = server.post("/v1/chat/completions", stream=True, json={
        "model": "vllm/my-model", "stream": True,
        "messages": [{"role": "user", "content": question}]})

    assert response.status_code == 200
    events = [e for e in sse_events(response) if e != "[DONE]"]
    *chunks, last = [json.loads(e) for e in events]
    assert isinstance(last.get("error"), dict) and last["error"].get("message"), last
    received = "".join(c["choices"][0]["delta"].get("content") or ""
                       for c in chunks if c.get("choices"))
    assert received == "".join(stream_pieces(answer_for(question))[:2])


def test_the_sdk_raises_when_a_stream_breaks_mid_way(server):
    stream = server.client().chat.completions.create(
        model="vllm/my-model", stream=True,
        messages=[{"role": "user", "content": "[mock:fail-mid-stream] and then?"}])

    with pytest.raises(openai.APIError):
        for _ in stream:
            pass


def test_the_server_keeps_serving_after_all_that(server):
    answer = server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "still there?"}])

    assert answer.choices[0].message.content == answer_for("still there?")
