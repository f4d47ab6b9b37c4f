"""The recorded upstream of the OGX 1.5.0 suite (tests/ogx_suite/recorded_upstream.py) on its
own, no binary needed: recordings in OGX's format are answered to the OpenAI SDK as the
recorded upstream answered OGX, and a request without a recording is a 500 naming it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import openai
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent / "ogx_suite"))
from recorded_upstream import RecordedUpstream, RecordingIndex  # noqa: E402

MODEL = "llama3.2:3b-instruct-fp16"
QUESTION = [{"role": "user", "content": "Which planet do humans live on?"}]


def chat_recording(stream: bool, text: str, **extra) -> dict:
    completion = {"id": "rec-0123456789ab", "created": 0, "model": MODEL,
                  "object": "chat.completion",
                  "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                               "message": {"role": "assistant", "content": text}}]}
    chunks = [{"__type__": "ChatCompletionChunk", "__data__": {
        "id": "rec-0123456789ab", "created": 0, "model": MODEL, "object": "chat.completion.chunk",
        "choices": [{"index": 0, "finish_reason": None, "delta": {"role": "assistant", "content": part}}]}}
        for part in text.split(" ")]
    body = {"model": MODEL, "messages": QUESTION, "stream": stream, **extra}
    return {
        "test_id": "tests/integration/x.py::test_x",
        "request": {"method": "POST", "url": "http://0.0.0.0:11434/v1/v1/chat/completions",
                    "headers": {}, "body": body, "endpoint": "/v1/chat/completions", "model": MODEL},
        "response": {"body": chunks if stream else {"__type__": "ChatCompletion", "__data__": completion},
                     "is_streaming": stream},
    }


RECORDINGS = {
    "plain.json": chat_recording(False, "Humans live on Earth."),
    "streamed.json": chat_recording(True, "Humans live on Earth."),
    "streamed-usage.json": chat_recording(True, "With usage.", stream_options={"include_usage": True}),
    # One first turn recorded twice with different answers; only the second one's
    # conversation goes on in a recorded later turn.
    "turn1-a.json": chat_recording(False, "Hi!", temperature=0.1) | {
        "request": chat_recording(False, "", temperature=0.1)["request"]},
    "turn1-b.json": chat_recording(False, "Hello there.", temperature=0.1),
    "turn2.json": {
        "request": {"method": "POST", "url": "http://0.0.0.0:11434/v1/v1/chat/completions",
                    "body": {"model": MODEL, "messages": QUESTION + [
                        {"role": "assistant", "content": "Hello there."},
                        {"role": "user", "content": "And the Moon?"}]},
                    "endpoint": "/v1/chat/completions", "model": MODEL},
        "response": chat_recording(False, "Nobody lives there.")["response"]},
    "embeddings.json": {
        "request": {"method": "POST", "url": "http://0.0.0.0:11434/v1/v1/embeddings",
                    "body": {"model": "nomic-embed-text:v1.5", "input": "hello", "encoding_format": "float"},
                    "endpoint": "/v1/embeddings", "model": "nomic-embed-text:v1.5"},
        "response": {"body": {"__type__": "CreateEmbeddingResponse", "__data__": {
            "object": "list", "model": "nomic-embed-text:v1.5",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.25, 3.0]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1}}}, "is_streaming": False},
    },
    "refused.json": {
        "request": {"method": "POST", "url": "http://0.0.0.0:11434/v1/v1/chat/completions",
                    "body": {"model": MODEL, "messages": [{"role": "user", "content": "bad image"}]},
                    "endpoint": "/v1/chat/completions", "model": MODEL},
        "response": {"body": None, "is_streaming": False, "is_exception": True, "exception_data": {
            "status_code": 400, "body": {"message": "invalid image input", "type": "invalid_request_error"}}},
    },
    "models.json": {
        "request": {"method": "POST", "url": "http://0.0.0.0:11434/v1/v1/models", "body": {},
                    "endpoint": "/v1/models", "model": ""},
        "response": {"body": [{"__type__": "Model", "__data__": {"id": MODEL, "object": "model",
                                                                 "created": 0, "owned_by": "library"}}]},
    },
}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    root = tmp_path_factory.mktemp("ogx") / "inference"
    (root / "recordings").mkdir(parents=True)
    for name, data in RECORDINGS.items():
        (root / "recordings" / name).write_text(json.dumps(data))
    with RecordedUpstream(RecordingIndex.load([root])) as server:
        yield server


def client(upstream, family="ollama") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{upstream.url}/{family}/v1", api_key="x", max_retries=0)


def test_a_recorded_completion_is_answered_with_its_own_id_and_a_real_time(upstream):
    first = client(upstream).chat.completions.create(model=MODEL, messages=QUESTION)
    second = client(upstream).chat.completions.create(model=MODEL, messages=QUESTION)
    assert first.choices[0].message.content == "Humans live on Earth."
    assert first.id.startswith("rec-0123456789ab-") and first.id != second.id
    assert first.created > 1_700_000_000


def test_a_stream_is_answered_with_the_recorded_chunks(upstream):
    stream = client(upstream).chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
    parts = [c.choices[0].delta.content for c in stream]
    assert parts == ["Humans", "live", "on", "Earth."]


def test_fields_outside_the_input_pick_the_closest_recording(upstream):
    # No recording has max_tokens; the input matches, and the streamed one is still chosen.
    stream = client(upstream).chat.completions.create(model=MODEL, messages=QUESTION, stream=True,
                                                      max_tokens=50)
    assert "".join(c.choices[0].delta.content for c in stream) == "HumansliveonEarth."


def test_embeddings_as_base64_decode_to_the_recorded_floats(upstream):
    # The SDK asks for base64 by default and decodes it itself.
    answer = client(upstream).embeddings.create(model="nomic-embed-text:v1.5", input="hello")
    assert answer.data[0].embedding == [0.5, -1.25, 3.0]
    floats = client(upstream).embeddings.create(model="nomic-embed-text:v1.5", input="hello",
                                                encoding_format="float")
    assert floats.data[0].embedding == [0.5, -1.25, 3.0]


def test_a_recorded_upstream_error_is_answered_with_its_status(upstream):
    with pytest.raises(openai.BadRequestError, match="invalid image input"):
        client(upstream).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "bad image"}])


def test_an_unrecorded_request_is_a_500_naming_it(upstream):
    with pytest.raises(openai.InternalServerError, match="no OGX recording.*Mars"):
        client(upstream).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "And on Mars?"}])
    unmatched = requests.get(f"{upstream.url}/_unmatched", timeout=5).json()["unmatched"]
    assert any("Mars" in line for line in unmatched)


def test_each_family_lists_its_own_recorded_models(upstream):
    assert [m.id for m in client(upstream).models.list()] == [MODEL]
    assert [m.id for m in client(upstream, "openai").models.list()] == []


def test_a_model_the_upstream_does_not_list_is_a_404(upstream):
    with pytest.raises(openai.NotFoundError, match="model 'not-pulled' not found"):
        client(upstream).chat.completions.create(model="not-pulled", messages=QUESTION)


def test_a_field_only_the_recording_has_counts_against_it(upstream):
    # Two streamed recordings of one input; the request without stream_options gets the one
    # recorded without it, not the one with the extra field.
    stream = client(upstream).chat.completions.create(model=MODEL, messages=QUESTION, stream=True)
    assert [c.choices[0].delta.content for c in stream] == ["Humans", "live", "on", "Earth."]


def test_of_two_answers_to_one_turn_the_one_a_recorded_turn_continues_is_chosen(upstream):
    first = client(upstream).chat.completions.create(model=MODEL, messages=QUESTION, temperature=0.1)
    assert first.choices[0].message.content == "Hello there."
    history = QUESTION + [{"role": "assistant", "content": first.choices[0].message.content},
                          {"role": "user", "content": "And the Moon?"}]
    second = client(upstream).chat.completions.create(model=MODEL, messages=history)
    assert second.choices[0].message.content == "Nobody lives there."
