"""OGX's Prompts API: create, list, get, update (new versions), versions, default version,
delete, and prompts surviving a restart."""

from __future__ import annotations

import re

import pytest
import requests

from ogx_harness import default_storage_yaml, error_message_of, vllm_config

PROMPT_ID = re.compile(r"^pmpt_[0-9a-f]{48}$")


@pytest.fixture
def server(ogx_server, mock_upstream):
    return ogx_server(vllm_config(mock_upstream.base_url, distro_name="prompts"))


def put(server, path: str, **kwargs) -> requests.Response:
    return requests.put(server.url + path, timeout=30, **kwargs)


def delete(server, path: str) -> requests.Response:
    return requests.delete(server.url + path, timeout=30)


def create(server, prompt: str, variables: list[str] | None = None) -> dict:
    body = {"prompt": prompt}
    if variables is not None:
        body["variables"] = variables
    response = server.post("/v1/prompts", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_create_get_and_list(server):
    created = create(server, "Hello {{ name }}, welcome to {{place}}", ["name", "place"])

    assert PROMPT_ID.match(created["prompt_id"])
    assert created["version"] == 1
    assert created["variables"] == ["name", "place"]
    assert created["is_default"] is True
    fetched = server.get(f"/v1/prompts/{created['prompt_id']}").json()
    assert fetched == created
    assert server.get(f"/v1/prompts/{created['prompt_id']}", params={"version": 1}).json() == created

    other = create(server, "No variables")
    assert other["variables"] == []
    listed = server.get("/v1/prompts").json()["data"]
    # OGX lists the default versions by prompt id, descending.
    assert [p["prompt_id"] for p in listed] == sorted(
        [created["prompt_id"], other["prompt_id"]], reverse=True)


def test_update_adds_versions_and_moves_the_default(server):
    prompt_id = create(server, "v1")["prompt_id"]

    second = put(server, f"/v1/prompts/{prompt_id}",
                 json={"prompt": "v2 {{ x }}", "version": 1, "variables": ["x"]})
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2
    assert server.get(f"/v1/prompts/{prompt_id}").json()["prompt"] == "v2 {{ x }}"

    third = put(server, f"/v1/prompts/{prompt_id}",
                json={"prompt": "v3", "version": 2, "set_as_default": False}).json()
    assert (third["version"], third["is_default"]) == (3, False)
    assert server.get(f"/v1/prompts/{prompt_id}").json()["version"] == 2

    stale = put(server, f"/v1/prompts/{prompt_id}", json={"prompt": "late", "version": 2})
    assert stale.status_code == 400
    assert error_message_of(stale) == \
        "Invalid value for 'version': 2. Must be the latest prompt version '3'."

    versions = server.get(f"/v1/prompts/{prompt_id}/versions").json()["data"]
    assert [(v["version"], v["prompt"], v["is_default"]) for v in versions] == [
        (1, "v1", False), (2, "v2 {{ x }}", True), (3, "v3", False)]

    chosen = put(server, f"/v1/prompts/{prompt_id}/set-default-version", json={"version": 1})
    assert chosen.status_code == 200, chosen.text
    assert (chosen.json()["version"], chosen.json()["is_default"]) == (1, True)
    assert server.get(f"/v1/prompts/{prompt_id}").json()["prompt"] == "v1"
    assert server.get(f"/v1/prompts/{prompt_id}", params={"version": 3}).json()["prompt"] == "v3"


def test_delete_removes_every_version(server):
    prompt_id = create(server, "doomed")["prompt_id"]
    put(server, f"/v1/prompts/{prompt_id}", json={"prompt": "doomed 2", "version": 1})

    response = delete(server, f"/v1/prompts/{prompt_id}")
    assert response.status_code == 200
    assert response.json() is None
    for path in (f"/v1/prompts/{prompt_id}", f"/v1/prompts/{prompt_id}/versions"):
        gone = server.get(path)
        assert gone.status_code == 404
        assert error_message_of(gone) == (
            f"Prompt '{prompt_id}' not found. Use 'client.prompts.list()' to list available Prompts.")
    assert delete(server, f"/v1/prompts/{prompt_id}").status_code == 404
    assert server.get("/v1/prompts").json() == {"data": []}


def test_bad_input_is_a_400_naming_the_field(server):
    cases = [
        ({"variables": []}, "'prompt' is required"),
        ({"prompt": 3}, "'prompt' must be a string"),
        ({"prompt": "x", "variables": "name"}, "'variables' must be a list of strings"),
        ({"prompt": "Hi {{ name }} {{ age }}", "variables": ["name"]},
         "Prompt contains undeclared variables: ['age']"),
    ]
    for body, expected in cases:
        response = server.post("/v1/prompts", json=body)
        assert response.status_code == 400, (body, response.text)
        assert expected in error_message_of(response), body

    prompt_id = create(server, "x")["prompt_id"]
    for body, expected in [
        ({"prompt": "y"}, "'version' is required"),
        ({"prompt": "y", "version": 0}, "Invalid value for 'version': 0. Must be >= 1."),
        ({"prompt": "y", "version": 1, "set_as_default": "yes"}, "'set_as_default' must be true or false"),
    ]:
        response = put(server, f"/v1/prompts/{prompt_id}", json=body)
        assert response.status_code == 400, (body, response.text)
        assert expected in error_message_of(response), body
    assert server.get(f"/v1/prompts/{prompt_id}", params={"version": "two"}).status_code == 400


def test_unknown_prompts_and_versions_are_404(server):
    prompt_id = create(server, "x")["prompt_id"]
    missing = server.get(f"/v1/prompts/{prompt_id}", params={"version": 7})
    assert missing.status_code == 404
    assert error_message_of(missing) == (
        f"Prompt version '7' not found in prompt '{prompt_id}'. "
        f"Use 'client.prompts.list_versions(\"{prompt_id}\")' to list available prompt versions.")
    assert put(server, f"/v1/prompts/{prompt_id}/set-default-version",
               json={"version": 7}).status_code == 404
    assert server.get("/v1/prompts/pmpt_nope").status_code == 404
    assert put(server, "/v1/prompts/pmpt_nope", json={"prompt": "y", "version": 1}).status_code == 404


def test_prompt_routes_are_listed(server):
    routes = server.get("/v1/inspect/routes").json()["data"]
    listed = {(r["method"], r["route"]) for r in routes if r["route"].startswith("/v1/prompts")}
    assert listed == {
        ("POST", "/v1/prompts"), ("GET", "/v1/prompts"), ("GET", "/v1/prompts/{prompt_id}"),
        ("PUT", "/v1/prompts/{prompt_id}"), ("DELETE", "/v1/prompts/{prompt_id}"),
        ("GET", "/v1/prompts/{prompt_id}/versions"),
        ("PUT", "/v1/prompts/{prompt_id}/set-default-version"),
    }


def test_prompts_survive_a_restart(ogx_server, mock_upstream, tmp_path):
    storage = default_storage_yaml(tmp_path / "state")
    config = vllm_config(mock_upstream.base_url, distro_name="prompts", more_sections=storage)
    first = ogx_server(config)
    prompt_id = create(first, "Remember {{ me }}", ["me"])["prompt_id"]
    put(first, f"/v1/prompts/{prompt_id}", json={"prompt": "Remember me too", "version": 1})
    first.stop()

    second = ogx_server(config)
    assert second.get(f"/v1/prompts/{prompt_id}").json()["prompt"] == "Remember me too"
    assert len(second.get(f"/v1/prompts/{prompt_id}/versions").json()["data"]) == 2
    assert [p["prompt_id"] for p in second.get("/v1/prompts").json()["data"]] == [prompt_id]
