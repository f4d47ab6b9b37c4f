"""A broken run config stops `ogx run` at start-up with a message that names the file, the key and
the fix."""

from __future__ import annotations

from ogx_harness import PLUGINS_DIR, free_port, vllm_config

# Port 9 (discard): nothing answers there, and these configs never get far enough to try.
UNREACHABLE_URL = "http://127.0.0.1:9/v1"


def write(tmp_path, text: str):
    path = tmp_path / "broken-config.yaml"
    path.write_text(text)
    return path


def test_an_unset_environment_variable_names_the_variable_and_the_key(run_ogx, tmp_path):
    config = write(tmp_path, vllm_config(UNREACHABLE_URL, distro_name="broken",
                                         api_token="${env.OGX_E2E_MISSING_VAR}", models=()))

    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert "broken-config.yaml" in result.output
    assert ("Environment variable 'OGX_E2E_MISSING_VAR' not set or empty at "
            "providers.inference[0].config.api_token. Use ${env.OGX_E2E_MISSING_VAR:=default_value}"
            " to provide a default value, ${env.OGX_E2E_MISSING_VAR:+value_if_set} to make the "
            "field conditional, or ensure the environment variable is set.") in result.output


def test_an_empty_environment_variable_counts_as_unset(run_ogx, tmp_path):
    config = write(tmp_path, vllm_config("${env.OGX_E2E_EMPTY_URL}", distro_name="broken",
                                         apis=None, api_token=None, models=()))

    result = run_ogx(["run", "--port", free_port(), config], env={"OGX_E2E_EMPTY_URL": ""})

    assert result.returncode != 0
    assert "OGX_E2E_EMPTY_URL" in result.output
    assert "providers.inference[0].config.base_url" in result.output


def test_a_provider_type_that_no_plugin_serves_names_the_type_and_the_search_path(run_ogx, tmp_path):
    config = write(tmp_path, """
version: 2
distro_name: broken
apis: [inference, models]
providers:
  inference:
  - provider_id: mystery
    provider_type: remote::does-not-exist
    config: {}
""")

    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert "remote::does-not-exist" in result.output
    assert str(PLUGINS_DIR) in result.output, "the message should say where plugins were searched"


def test_a_config_without_distro_name_gives_the_ogx_message(run_ogx, tmp_path):
    config = write(tmp_path, vllm_config(UNREACHABLE_URL, distro_name=None, apis=None,
                                         api_token=None, models=()))

    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert "Either 'distro_name' or 'image_name' must be provided" in result.output


def test_a_missing_config_file_is_named(run_ogx, tmp_path):
    missing = tmp_path / "nowhere" / "config.yaml"

    result = run_ogx(["run", "--port", free_port(), missing])

    assert result.returncode != 0
    assert str(missing) in result.output
