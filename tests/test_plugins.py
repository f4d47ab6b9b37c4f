"""Plugins: discovery, `ogx plugins list`, broken files, plugins that trap or never return, and a
plugin dropped into a directory without rebuilding the host.

The fixture plugins (`test::trap`, `test::spin`) are built into the same directory as the real
ones (OGX_PLUGINS_DIR)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from mock_openai import answer_for
from ogx_harness import (PLUGINS_DIR, error_message_of, plugin_file_for, plugin_serving,
                         vllm_config)

# The 8-byte header of an empty WebAssembly core module: valid wasm, but not a component.
CORE_MODULE = b"\0asm\x01\0\0\0"
GARBAGE = b"this is not WebAssembly at all\n"


@pytest.fixture(scope="module")
def openai_plugin(ogx_home):
    assert PLUGINS_DIR.is_dir(), f"no plugins at {PLUGINS_DIR}: build them or set OGX_PLUGINS_DIR"
    path = plugin_file_for("remote::vllm", ogx_home)
    assert path is not None and path.is_file(), \
        f"`ogx plugins list` shows no .wasm in {PLUGINS_DIR} serving remote::vllm"
    return path


def plugins_config(mock, **options) -> str:
    return vllm_config(mock.base_url, distro_name="plugins-e2e", **options)


def lines_naming(output: str, name: str) -> list[str]:
    return [line for line in output.splitlines() if name in line]


def chat_works(server) -> bool:
    answer = server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "are you well?"}])
    return answer.choices[0].message.content == answer_for("are you well?")


def test_plugins_list_shows_every_plugin_and_its_provider_types(run_ogx, openai_plugin):
    result = run_ogx(["plugins", "list", "--plugins-dir", PLUGINS_DIR], plugins_dir=None)

    assert result.returncode == 0, result.output
    for wasm in sorted(PLUGINS_DIR.glob("*.wasm")):
        assert wasm.name in result.output
    for provider_type in ["remote::openai", "remote::vllm", "test::trap", "test::spin"]:
        assert provider_type in result.output


@pytest.fixture
def mixed_plugins_dir(tmp_path, openai_plugin):
    directory = tmp_path / "mixed-plugins"
    directory.mkdir()
    shutil.copy(openai_plugin, directory / openai_plugin.name)
    (directory / "empty-core-module.wasm").write_bytes(CORE_MODULE)
    (directory / "garbage.wasm").write_bytes(GARBAGE)
    return directory


def test_files_that_are_not_components_are_listed_with_an_error(run_ogx, mixed_plugins_dir,
                                                                  openai_plugin):
    result = run_ogx(["plugins", "list", "--plugins-dir", mixed_plugins_dir], plugins_dir=None)

    assert "remote::vllm" in result.output
    core_lines = lines_naming(result.output, "empty-core-module.wasm")
    assert core_lines, result.output
    assert any("component" in line.lower() for line in core_lines), result.output
    garbage_lines = lines_naming(result.output, "garbage.wasm")
    assert garbage_lines, result.output
    assert not any("remote::" in line for line in core_lines + garbage_lines)


def test_the_server_starts_and_serves_despite_broken_plugin_files(
        mock_upstream, ogx_server, mixed_plugins_dir):
    server = ogx_server(plugins_config(mock_upstream), plugins_dir=None,
                        args=["--plugins-dir", mixed_plugins_dir])

    assert chat_works(server)
    assert lines_naming(server.output(), "empty-core-module.wasm")
    assert lines_naming(server.output(), "garbage.wasm")


@pytest.fixture
def server_with_bad_plugins(mock_upstream, ogx_server):
    return ogx_server(plugins_config(mock_upstream, more_providers="""
  - provider_id: trap
    provider_type: test::trap
    config: {}
  - provider_id: spin
    provider_type: test::spin
    config: {}
""", more_sections="""
plugins:
  limits:
    call_timeout_ms: 2000
"""))


def test_a_plugin_that_traps_fails_only_its_own_request(server_with_bad_plugins):
    server = server_with_bad_plugins

    response = server.post("/v1/chat/completions", json={
        "model": "trap/anything", "messages": [{"role": "user", "content": "crash"}]})

    assert response.status_code == 500
    error_message_of(response)
    assert chat_works(server)
    assert server.post("/v1/chat/completions", json={
        "model": "trap/anything", "messages": [{"role": "user", "content": "again"}]}
    ).status_code == 500
    assert chat_works(server)


def test_a_plugin_that_never_returns_is_stopped_by_the_call_timeout(server_with_bad_plugins):
    server = server_with_bad_plugins

    # The client waits far longer than the configured 2 s limit: ogx must answer first.
    try:
        response = server.post("/v1/chat/completions", timeout=60, json={
            "model": "spin/anything", "messages": [{"role": "user", "content": "loop"}]})
    except requests.Timeout:
        pytest.fail("ogx never answered a request to a plugin that loops forever")

    assert response.status_code in (500, 504)
    error_message_of(response)
    assert server.get("/v1/health").json() == {"status": "OK"}
    assert chat_works(server)


def test_a_plugin_dropped_into_the_config_dirs_plugins_folder_is_served(
        mock_upstream, ogx_server, run_ogx, tmp_path, openai_plugin):
    config_dir = tmp_path / "my-deployment"
    (config_dir / "plugins").mkdir(parents=True)
    # A new name: plugins are found by what they describe, not by their file name.
    shutil.copy(openai_plugin, config_dir / "plugins" / "dropped-in-provider.wasm")

    server = ogx_server(plugins_config(mock_upstream), plugins_dir=None, config_dir=config_dir)

    assert chat_works(server)
    listing = run_ogx(["plugins", "list", "--config", server.config_path], plugins_dir=None)
    assert plugin_serving("remote::vllm", listing.output) is not None, listing.output
    assert Path(plugin_serving("remote::vllm", listing.output)).name == \
        "dropped-in-provider.wasm", listing.output
