"""The run config from the seed post (config/seed-bedrock-sigv4.yaml) starts ogx unchanged, and
lists its Bedrock model first, without any AWS identity on the machine (credentials are only
resolved when a request needs them)."""

from __future__ import annotations

import pytest

from ogx_harness import REPO, plugin_file_for

SEED_CONFIG = REPO / "config" / "seed-bedrock-sigv4.yaml"


def test_the_seed_config_loads_and_lists_its_bedrock_model_first(ogx_server, ogx_home, request):
    if plugin_file_for("remote::bedrock", ogx_home) is None:
        request.applymarker(pytest.mark.xfail(
            strict=False, reason="remote::bedrock plugin arrives with the Bedrock issue"))
    assert SEED_CONFIG.is_file(), f"{SEED_CONFIG} is missing"

    server = ogx_server(SEED_CONFIG.read_text(), config_name=SEED_CONFIG.name, add_storage=False)
    models = server.client().models.list()

    assert models.data[0].id == "bedrock-inference/openai.gpt-oss-20b-1:0"
