"""What an operator uses: /v1/health, /v1/version, /v1/providers (secrets redacted everywhere,
the log included) and /v1/inspect/routes."""

from __future__ import annotations

import pytest

from mock_openai import MockOpenAI, answer_for
from ogx_harness import error_message_of, vllm_config

SECRET = "secret-value-123"


@pytest.fixture(scope="module")
def upstream():
    # The upstream only answers with the configured secret, so the secret is really in use.
    with MockOpenAI(require_key=SECRET) as mock:
        yield mock


@pytest.fixture(scope="module")
def server(upstream, module_ogx_server):
    return module_ogx_server(vllm_config(upstream.base_url, distro_name="ops-e2e", api_token=SECRET,
                                         extra_provider_config={"max_tokens": 4096}))


def test_health(server):
    response = server.get("/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "OK"}


def test_version(server):
    response = server.get("/v1/version")

    assert response.status_code == 200
    version = response.json()["version"]
    assert isinstance(version, str) and version


def test_the_configured_secret_is_used_upstream(server):
    answer = server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "authorised?"}])

    assert answer.choices[0].message.content == answer_for("authorised?")


def test_providers_lists_the_provider_with_its_secrets_redacted(server, upstream):
    response = server.get("/v1/providers")

    assert response.status_code == 200
    assert SECRET not in response.text
    [vllm] = [p for p in response.json()["data"] if p["provider_id"] == "vllm"]
    assert vllm["api"] == "inference"
    assert vllm["provider_type"] == "remote::vllm"
    assert vllm["config"]["api_token"] == "********"
    assert vllm["config"]["base_url"] == upstream.base_url
    assert vllm["config"]["max_tokens"] == 4096
    assert "status" in vllm["health"]


def test_one_provider_with_its_secrets_redacted(server):
    response = server.get("/v1/providers/vllm")

    assert response.status_code == 200
    assert SECRET not in response.text
    provider = response.json()
    assert provider["provider_id"] == "vllm"
    assert provider["config"]["api_token"] == "********"


def test_an_unknown_provider_is_an_error_with_the_ogx_message(server):
    response = server.get("/v1/providers/nonexistent")

    assert response.status_code == 404
    assert error_message_of(response) == "Provider nonexistent not found"


def test_inspect_routes_lists_chat_completions(server):
    response = server.get("/v1/inspect/routes")

    assert response.status_code == 200
    routes = {(r["route"], r["method"]) for r in response.json()["data"]}
    assert ("/v1/chat/completions", "POST") in routes
    assert ("/v1/models", "GET") in routes


def test_the_secret_never_appears_in_the_server_output(server):
    # Run after the requests above, so their logging is included; stopping flushes everything.
    server.get("/v1/providers")
    server.stop()

    output = server.output()
    assert output, "the server printed nothing at all"
    assert SECRET not in output
