"""The model registry persists in the `metadata` store across restarts, as OGX's does."""

from __future__ import annotations

from pathlib import Path

from ogx_harness import RegisteredModel, default_storage_yaml, free_port, vllm_config, wait_until


def storage_in(directory: Path, backend_type: str = "kv_sqlite") -> str:
    """A `storage:` section whose stores live in `directory`, shared by every start; its
    `kv_default` backend is of type `backend_type`."""
    return default_storage_yaml(directory).replace("type: kv_sqlite", f"type: {backend_type}")


def model_ids(server) -> list[str]:
    return [m["id"] for m in server.get("/v1/models").json()["data"]]


def test_a_model_removed_from_the_config_stays_registered_and_routable(
        ogx_server, mock_upstream, tmp_path):
    storage = storage_in(tmp_path / "state")
    first = ogx_server(vllm_config(
        mock_upstream.base_url, distro_name="persist",
        models=[RegisteredModel("kept", "upstream-kept"), RegisteredModel("gone", "upstream-gone")],
        more_sections=storage))
    assert model_ids(first)[:2] == ["vllm/kept", "vllm/gone"]
    first.stop()

    second = ogx_server(vllm_config(
        mock_upstream.base_url, distro_name="persist",
        models=[RegisteredModel("new", "upstream-new"), RegisteredModel("kept", "upstream-kept")],
        more_sections=storage))

    # The config's models first, in config order, then the one the config no longer names.
    assert model_ids(second)[:3] == ["vllm/new", "vllm/kept", "vllm/gone"]
    gone = second.get("/v1/models/vllm/gone").json()
    assert gone["provider_resource_id"] == "upstream-gone"
    answer = second.client().chat.completions.create(
        model="vllm/gone", messages=[{"role": "user", "content": "still there?"}])
    assert answer.choices[0].message.content
    assert mock_upstream.last_request("/v1/chat/completions").json["model"] == "upstream-gone"


def test_listed_models_are_persisted_and_served_after_a_restart(ogx_server, mock_upstream, tmp_path):
    storage = storage_in(tmp_path / "state")
    first = ogx_server(vllm_config(mock_upstream.base_url, distro_name="persist",
                                   more_sections=storage))
    listed = {f"vllm/{m}" for m in mock_upstream.models}
    wait_until(lambda: listed <= set(model_ids(first)), timeout=15, what="the listed models")
    first.stop()

    # Without an upstream to list, the stored listing is still served.
    second = ogx_server(vllm_config(f"http://127.0.0.1:{free_port()}", distro_name="persist",
                                    more_sections=storage))
    assert listed <= set(model_ids(second))


def test_a_conflicting_re_registration_stops_start_up_with_ogx_message(
        ogx_server, mock_upstream, run_ogx, tmp_path):
    storage = storage_in(tmp_path / "state")
    first = ogx_server(vllm_config(mock_upstream.base_url, distro_name="persist",
                                   models=[RegisteredModel("m", "upstream-one")],
                                   more_sections=storage))
    first.stop()

    config = tmp_path / "conflict.yaml"
    config.write_text(vllm_config(mock_upstream.base_url, distro_name="persist",
                                  models=[RegisteredModel("m", "upstream-two")],
                                  more_sections=storage))
    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert ("Object of type 'model' and identifier 'vllm/m' already exists with conflicting "
            "field values: {'provider_resource_id': ('upstream-two', 'upstream-one')}. "
            "Unregister it first if you want to replace it.") in result.output
    assert str(config) in result.output


def test_a_metadata_store_on_another_backend_type_is_refused(run_ogx, mock_upstream, tmp_path):
    config = tmp_path / "redis.yaml"
    config.write_text(vllm_config(mock_upstream.base_url, distro_name="persist",
                                  more_sections=storage_in(tmp_path, "kv_redis")))
    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert "storage.stores.metadata" in result.output
    assert "kv_redis" in result.output
    assert "only kv_sqlite and kv_postgres backends are supported" in result.output
