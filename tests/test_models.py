"""Listing and looking up models: `GET /v1/models` and `GET /v1/models/{id}`."""

from __future__ import annotations

import openai
import pytest

from ogx_harness import RegisteredModel, vllm_config, wait_until

REGISTERED = [
    # (model_id in the config, provider_model_id) -> the id clients use is "vllm/<model_id>"
    ("my-model", "upstream-model"),
    ("family/chat:v1", "upstream-chat-v1"),
]


@pytest.fixture(scope="module")
def server(module_mock_upstream, module_ogx_server):
    return module_ogx_server(vllm_config(
        module_mock_upstream.base_url, distro_name="models-e2e",
        extra_provider_config={"refresh_models": True},
        models=[RegisteredModel(model_id, provider_model_id, "llm")
                for model_id, provider_model_id in REGISTERED]))


def listed_ids(server) -> list[str]:
    return [m["id"] for m in server.get("/v1/models").json()["data"]]


def test_models_list_has_the_ogx_shape(server):
    response = server.get("/v1/models")

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    first = body["data"][0]
    assert first["id"] == "vllm/my-model"
    assert first["object"] == "model"
    assert first["owned_by"] == "ogx"
    assert isinstance(first["created"], int)
    assert first["custom_metadata"]["model_type"] == "llm"
    assert first["custom_metadata"]["provider_id"] == "vllm"
    assert first["custom_metadata"]["provider_resource_id"] == "upstream-model"


def test_registered_models_come_first_in_config_order_then_the_listed_ones(server, module_mock_upstream):
    expected_listed = {f"vllm/{m}" for m in module_mock_upstream.models}
    # Models listed from the provider (refresh_models: true) may arrive just after start-up.
    wait_until(lambda: expected_listed <= set(listed_ids(server)), timeout=15,
               what=f"{sorted(expected_listed)} in /v1/models")

    ids = listed_ids(server)
    assert ids[:2] == [f"vllm/{model_id}" for model_id, _ in REGISTERED]
    assert set(ids[2:]) == expected_listed
    assert module_mock_upstream.requests_to("/v1/models"), "the provider never listed upstream models"


def test_the_sdk_sees_the_same_list(server):
    models = server.client().models.list()

    assert [m.id for m in models.data][:2] == ["vllm/my-model", "vllm/family/chat:v1"]


def test_one_model_by_an_id_with_slashes_and_a_colon(server):
    response = server.get("/v1/models/vllm/family/chat:v1")

    assert response.status_code == 200, response.text
    model = response.json()
    assert model["identifier"] == model["id"] == "vllm/family/chat:v1"
    assert model["provider_resource_id"] == "upstream-chat-v1"
    assert model["provider_id"] == "vllm"
    assert model["type"] == "model"
    assert model["model_type"] == "llm"
    assert model["object"] == "model"
    assert model["owned_by"] == "ogx"
    assert isinstance(model["metadata"], dict)
    assert isinstance(model["created"], int)


def test_the_sdk_retrieves_a_model_by_its_percent_encoded_id(server):
    # The SDK sends /v1/models/vllm%2Ffamily%2Fchat:v1.
    model = server.client().models.retrieve("vllm/family/chat:v1")

    assert model.id == "vllm/family/chat:v1"


def test_an_unknown_model_is_a_404_with_the_ogx_message(server):
    response = server.get("/v1/models/vllm/no-such-model")

    assert response.status_code == 404
    assert response.json() == {"error": {"message":
        "Model 'vllm/no-such-model' not found. Use 'client.models.list()' to list available Models."}}


def test_the_sdk_raises_not_found_for_an_unknown_model(server):
    with pytest.raises(openai.NotFoundError) as raised:
        server.client().models.retrieve("nobody/nothing")

    assert raised.value.status_code == 404
    assert "Model 'nobody/nothing' not found" in str(raised.value)
