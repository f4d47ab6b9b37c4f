"""Bearer tokens next to SigV4, as the seed post's migration section promises: the config token
under every name it has had, the environment variables, per-request overrides in
`x-ogx-provider-data` under both field names, blank overrides falling back to SigV4, bad
overrides failing only their own request, and requests with different identities running
side by side without mixing them up."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from aws_fixtures import (REGION, STATIC_KEYS, bedrock_mock, endpoint_env,  # noqa: F401
                          started_mock, static_keys_env)
from bedrock_session import (POST_CONFIG, QUESTION, config_with, content_of, curl_chat,
                             first_model_id, listed_ids_once_refreshed, openai_session,
                             streamed_chunks)
from mock_bedrock import REASONING_TEXT, answer_for
from ogx_harness import error_message_of

BEARER_EXPIRED = ("Authentication failed because the provided request credential has expired. "
                  "Please refresh the credential and try again, or remove it so the server can "
                  "use its configured cloud credentials.")
BEARER_REJECTED = ("Authentication failed because the provided request credential was rejected. "
                   "Please verify that the credential is valid, unexpired, and authorized for "
                   "this request.")
COMPLETIONS_UNSUPPORTED = (
    "Bedrock's OpenAI-compatible API does not support /v1/completions endpoint. Only "
    "/v1/chat/completions is supported. See "
    "https://docs.aws.amazon.com/bedrock/latest/userguide/inference-chat-completions.html")
FORBIDDEN_IN_MESSAGES = ("Bedrock", "x-ogx-provider-data", "AWS_ROLE_ARN",
                         "AWS_BEARER_TOKEN_BEDROCK")

CONFIG_TOKEN = "config-bearer-token"
GOOD_TOKEN = "request-bearer-token"
EXPIRED_TOKEN = "expired-bearer-token"
EAST_TOKEN = "bearer-token-of-us-east-2"
EMBEDDING_MODEL = """\
  - metadata: {embedding_dimension: 8}
    model_id: amazon.titan-embed-text-v2:0
    provider_id: bedrock-inference
    provider_model_id: amazon.titan-embed-text-v2:0
    model_type: embedding
"""


@pytest.fixture(scope="module")
def module_mock():
    with started_mock() as mock:
        for token in (CONFIG_TOKEN, GOOD_TOKEN):
            mock.add_bearer(token)
        mock.add_bearer(EXPIRED_TOKEN, expired=True)
        mock.add_bearer(EAST_TOKEN, region="us-east-2")
        yield mock


@pytest.fixture(scope="module")
def sigv4_server(module_mock, module_ogx_server):
    """The post's server (SigV4 with static keys), shared by the override tests."""
    return module_ogx_server(
        POST_CONFIG.replace("    model_type: llm\n", "    model_type: llm\n" + EMBEDDING_MODEL),
        env={"AWS_DEFAULT_REGION": REGION, **endpoint_env(module_mock), **static_keys_env()})


@pytest.fixture
def mock(module_mock):
    module_mock.clear()
    return module_mock


def seen_for(mock, text: str):
    """What the mock Bedrock saw for the chat request whose user message is `text`."""
    matching = [r for r in mock.chat_requests()
                if (r.json or {}).get("messages", [{}])[-1].get("content") == text]
    assert len(matching) == 1, f"{len(matching)} upstream requests for {text!r}"
    return matching[0]


def ask(server, text: str, provider_data=None):
    return curl_chat(server.url, first_model_id(server.url), text, provider_data=provider_data)


# -- the configured token ------------------------------------------------------------------

@pytest.mark.parametrize("key", ["aws_bedrock_bearer_token", "api_key",
                                 "aws_bearer_token_bedrock"])
def test_a_config_token_under_each_name_is_sent_as_bearer(ogx_server, bedrock_mock, key):
    bedrock_mock.add_bearer(CONFIG_TOKEN)
    server = ogx_server(config_with({key: CONFIG_TOKEN, "region_name": REGION}),
                        env={**endpoint_env(bedrock_mock), **static_keys_env()})
    assert openai_session(server.url) == answer_for(QUESTION)
    seen = bedrock_mock.last_chat_request()
    assert (seen.auth, seen.bearer_token) == ("bearer", CONFIG_TOKEN)
    shown = str(server.get("/v1/providers").json())
    assert CONFIG_TOKEN not in shown


@pytest.mark.parametrize("variable", ["AWS_BEDROCK_BEARER_TOKEN", "AWS_BEARER_TOKEN_BEDROCK"])
def test_a_token_from_either_environment_variable(ogx_server, bedrock_mock, variable):
    bedrock_mock.add_bearer(CONFIG_TOKEN)
    server = ogx_server(POST_CONFIG, env={"AWS_DEFAULT_REGION": REGION,
                                          **endpoint_env(bedrock_mock), variable: CONFIG_TOKEN})
    assert openai_session(server.url) == answer_for(QUESTION)
    seen = bedrock_mock.last_chat_request()
    assert (seen.auth, seen.bearer_token) == ("bearer", CONFIG_TOKEN)


def test_a_request_token_overrides_the_config_token(ogx_server, bedrock_mock):
    for token in (CONFIG_TOKEN, GOOD_TOKEN):
        bedrock_mock.add_bearer(token)
    server = ogx_server(config_with({"aws_bedrock_bearer_token": CONFIG_TOKEN,
                                     "region_name": REGION}), env=endpoint_env(bedrock_mock))
    content_of(ask(server, "mine", {"aws_bedrock_bearer_token": GOOD_TOKEN}))
    content_of(ask(server, "blank", {"aws_bedrock_bearer_token": "  "}))
    content_of(ask(server, "server's"))
    assert seen_for(bedrock_mock, "mine").bearer_token == GOOD_TOKEN
    assert seen_for(bedrock_mock, "blank").bearer_token == CONFIG_TOKEN
    assert seen_for(bedrock_mock, "server's").bearer_token == CONFIG_TOKEN


def test_refresh_models_with_a_bearer_token_lists_the_mantle_models(ogx_server, bedrock_mock):
    bedrock_mock.add_bearer(CONFIG_TOKEN)
    server = ogx_server(config_with({"aws_bedrock_bearer_token": CONFIG_TOKEN,
                                     "region_name": REGION, "refresh_models": True}),
                        env=endpoint_env(bedrock_mock))
    ids = listed_ids_once_refreshed(server)
    [listing] = bedrock_mock.requests_to("/v1/models")
    assert (listing.auth, listing.bearer_token) == ("bearer", CONFIG_TOKEN)


# -- per-request overrides on a SigV4 server -----------------------------------------------

@pytest.mark.parametrize("field", ["aws_bedrock_bearer_token", "aws_bearer_token_bedrock"])
def test_an_override_under_either_name_is_used_for_that_request(sigv4_server, mock, field):
    content_of(ask(sigv4_server, f"override via {field}", {field: f"  {GOOD_TOKEN} "}))
    content_of(ask(sigv4_server, f"after override via {field}"))
    overridden = seen_for(mock, f"override via {field}")
    assert (overridden.auth, overridden.bearer_token) == ("bearer", GOOD_TOKEN)
    after = seen_for(mock, f"after override via {field}")
    assert (after.auth, after.access_key_id) == ("sigv4", STATIC_KEYS.access_key_id)


@pytest.mark.parametrize("blank", ["", "   ", "\t\n", None])
def test_empty_and_whitespace_overrides_fall_back_to_sigv4(sigv4_server, mock, blank):
    text = f"blank override {blank!r}"
    answer = content_of(ask(sigv4_server, text, {"aws_bedrock_bearer_token": blank,
                                                 "aws_bearer_token_bedrock": blank}))
    assert answer == answer_for(text)
    seen = seen_for(mock, text)
    assert (seen.auth, seen.access_key_id, seen.bearer_token) == \
        ("sigv4", STATIC_KEYS.access_key_id, None)


def test_an_invalid_override_fails_that_request_only(sigv4_server, mock):
    bad = ask(sigv4_server, "with a bad token", {"aws_bedrock_bearer_token": "not-a-real-token"})
    assert bad.status_code == 500
    message = error_message_of(bad)
    assert message == BEARER_REJECTED
    assert "not-a-real-token" not in message
    assert not any(word in message for word in FORBIDDEN_IN_MESSAGES)

    good = ask(sigv4_server, "right after")
    assert content_of(good) == answer_for("right after")
    assert seen_for(mock, "right after").auth == "sigv4"


def test_an_expired_override(sigv4_server, mock):
    response = ask(sigv4_server, "expired", {"aws_bearer_token_bedrock": EXPIRED_TOKEN})
    assert (response.status_code, error_message_of(response)) == (500, BEARER_EXPIRED)


def test_a_token_from_another_region_says_so(sigv4_server, mock):
    response = ask(sigv4_server, "east token", {"aws_bedrock_bearer_token": EAST_TOKEN})
    assert response.status_code == 500
    message = error_message_of(response)
    assert message.startswith(BEARER_REJECTED)
    assert f"({REGION})" in message
    assert EAST_TOKEN not in message
    assert not any(word in message for word in FORBIDDEN_IN_MESSAGES)
    assert seen_for(mock, "east token").status == 403


def test_an_invalid_override_while_streaming(sigv4_server, mock):
    response = curl_chat(sigv4_server.url, first_model_id(sigv4_server.url), "bad stream",
                         stream=True, provider_data={"aws_bedrock_bearer_token": "bogus"})
    assert (response.status_code, error_message_of(response)) == (500, BEARER_REJECTED)


def test_provider_data_that_is_not_json_is_ignored(sigv4_server, mock):
    content_of(ask(sigv4_server, "not json", "aws_bedrock_bearer_token=oops"))
    assert seen_for(mock, "not json").auth == "sigv4"


def test_fifty_concurrent_requests_with_mixed_identities(sigv4_server, mock):
    tokens = {}
    for i in range(50):
        if i % 5 == 0:
            tokens[i] = None  # no header
        elif i % 5 == 1:
            tokens[i] = {"aws_bedrock_bearer_token": "   "}
        else:
            token = f"concurrent-token-{i}"
            mock.add_bearer(token)
            field = "aws_bedrock_bearer_token" if i % 2 else "aws_bearer_token_bedrock"
            tokens[i] = {field: token}
    model_id = first_model_id(sigv4_server.url)

    def one(i: int) -> str:
        return content_of(curl_chat(sigv4_server.url, model_id, f"concurrent request {i}",
                                    provider_data=tokens[i]))

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    assert answers == [answer_for(f"concurrent request {i}") for i in range(50)]
    for i, provider_data in tokens.items():
        seen = seen_for(mock, f"concurrent request {i}")
        token = next(iter(provider_data.values())).strip() if provider_data else ""
        if token:
            assert (seen.auth, seen.bearer_token) == ("bearer", token), i
        else:
            assert (seen.auth, seen.access_key_id) == ("sigv4", STATIC_KEYS.access_key_id), i


def test_one_hundred_repeated_requests(sigv4_server, mock):
    model_id = first_model_id(sigv4_server.url)
    for i in range(100):
        assert content_of(curl_chat(sigv4_server.url, model_id, f"repeat {i}")) == \
            answer_for(f"repeat {i}")
    seen = mock.chat_requests()
    assert len(seen) == 100
    assert {(r.auth, r.access_key_id, r.status) for r in seen} == \
        {("sigv4", STATIC_KEYS.access_key_id, 200)}


def test_streaming_with_an_override_keeps_reasoning(sigv4_server, mock):
    response = curl_chat(sigv4_server.url, first_model_id(sigv4_server.url), "stream it",
                         stream=True, provider_data={"aws_bedrock_bearer_token": GOOD_TOKEN})
    chunks = streamed_chunks(response)
    assert any(c["choices"] and c["choices"][0]["delta"].get("reasoning") == REASONING_TEXT
               for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == answer_for("stream it")
    assert seen_for(mock, "stream it").bearer_token == GOOD_TOKEN


def test_the_openai_client_streams(sigv4_server, mock):
    client = sigv4_server.client()
    model_id = first_model_id(sigv4_server.url)
    stream = client.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": QUESTION}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == answer_for(QUESTION)


def test_other_upstream_errors_pass_through(sigv4_server, mock):
    response = ask(sigv4_server, "[mock:error=429]")
    assert response.status_code == 429
    assert error_message_of(response).startswith("Error code: 429 - ")


def test_completions_are_not_offered_and_embeddings_go_to_invoke_model(sigv4_server, mock):
    model_id = first_model_id(sigv4_server.url)
    completions = sigv4_server.post("/v1/completions", json={"model": model_id, "prompt": "hi"})
    assert (completions.status_code, error_message_of(completions)) == \
        (501, COMPLETIONS_UNSUPPORTED)
    embedding_model = next(m["id"] for m in sigv4_server.get("/v1/models").json()["data"]
                           if m["id"].endswith("amazon.titan-embed-text-v2:0"))
    embeddings = sigv4_server.post("/v1/embeddings", json={"model": embedding_model,
                                                           "input": "hi"})
    assert embeddings.status_code == 200, embeddings.text
    assert len(embeddings.json()["data"][0]["embedding"]) == 1024
    [invoke] = mock.requests_to("/model/amazon.titan-embed-text-v2%3A0/invoke")
    assert (invoke.auth, invoke.status, invoke.json) == \
        ("sigv4", 200, {"inputText": "hi", "normalize": True})
    assert not mock.chat_requests()
