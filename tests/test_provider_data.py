"""Per-request credentials through the `x-ogx-provider-data` header."""

from __future__ import annotations

import json
import re
import threading

import pytest

from mock_openai import answer_for
from ogx_harness import vllm_config, wait_until

CONFIG_TOKEN = "config-token"


@pytest.fixture(scope="module")
def server(module_mock_upstream, module_ogx_server):
    return module_ogx_server(vllm_config(module_mock_upstream.base_url,
                                         distro_name="provider-data-e2e", api_token=CONFIG_TOKEN))


@pytest.fixture
def mock(module_mock_upstream):
    module_mock_upstream.clear()
    return module_mock_upstream


def ask(server, text: str, provider_data: str | None = None) -> str:
    headers = {} if provider_data is None else {"x-ogx-provider-data": provider_data}
    answer = server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": text}],
        extra_headers=headers)
    return answer.choices[0].message.content


def upstream_authorization(mock, text: str) -> str:
    [request] = [r for r in mock.requests_to("/v1/chat/completions")
                 if r.json["messages"][-1]["content"] == text]
    return request.headers.get("authorization")


def test_a_per_request_key_replaces_the_configured_one_for_that_request_only(server, mock):
    ask(server, "with my own key", json.dumps({"vllm_api_token": "k1"}))
    ask(server, "with the server's key")

    assert upstream_authorization(mock, "with my own key") == "Bearer k1"
    assert upstream_authorization(mock, "with the server's key") == f"Bearer {CONFIG_TOKEN}"


def test_unknown_and_reserved_keys_in_the_header_are_tolerated(server, mock):
    data = {"__test_id": "tests/test_x.py::test_y", "some_other_provider_key": "x",
            "vllm_api_token": "k2"}

    assert ask(server, "tolerant", json.dumps(data)) == answer_for("tolerant")
    assert upstream_authorization(mock, "tolerant") == "Bearer k2"


def test_concurrent_requests_keep_their_own_keys(server, mock):
    texts = {f"[mock:slow=0.05] user {n} asks": f"key-of-user-{n}" for n in range(4)}
    errors: list[BaseException] = []

    def converse(text: str, key: str) -> None:
        try:
            stream = server.client().chat.completions.create(
                model="vllm/my-model", stream=True,
                messages=[{"role": "user", "content": text}],
                extra_headers={"x-ogx-provider-data": json.dumps({"vllm_api_token": key})})
            for _ in stream:
                pass
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=converse, args=item) for item in texts.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert not errors, errors
    assert {text: upstream_authorization(mock, text) for text in texts} == \
        {text: f"Bearer {key}" for text, key in texts.items()}


def provider_data_mentions(output: str) -> int:
    return len(re.findall(r"provider[-_ ]data", output, re.IGNORECASE))


@pytest.mark.parametrize("case, header_value, secret_part", [
    pytest.param("not-json", "not json at all marker-8d1f", "marker-8d1f", id="not-json"),
    pytest.param("a-list", json.dumps(["marker-2b7c"]), "marker-2b7c", id="a-list"),
    pytest.param("a-string", json.dumps("marker-5e90"), "marker-5e90", id="a-string"),
])
def test_a_malformed_header_is_ignored_with_a_warning_that_hides_its_value(
        server, mock, case, header_value, secret_part):
    question = f"malformed provider data, case {case}"
    mentions_before = provider_data_mentions(server.output())

    assert ask(server, question, header_value) == answer_for(question)

    assert upstream_authorization(mock, question) == f"Bearer {CONFIG_TOKEN}"
    wait_until(lambda: provider_data_mentions(server.output()) > mentions_before, timeout=10,
               what="a warning about the malformed x-ogx-provider-data header in the log")
    assert secret_part not in server.output()
