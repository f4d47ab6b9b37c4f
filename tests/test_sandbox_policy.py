"""`plugins.policy`: the sandbox policy the operator sets, globally and per provider. A host the
policy does not allow, an address in a denied CIDR block and a link-local address are refused
with an error naming the config key; memory and time limits from the policy take effect (on the `test::echo` and `test::spin`
fixture plugins);
`ogx plugins list --config` shows the effective policy of every provider; mistakes in the
policy stop the server with the key and the fix.

Only 127.0.0.1 is contacted: the link-local provider points at 169.254.169.254, which the
policy refuses before anything is sent (the allowing side is a unit test)."""

from __future__ import annotations

import re

import pytest
import requests

from mock_openai import answer_for
from ogx_harness import error_message_of, free_port, vllm_config

PROVIDERS = """
  - provider_id: fenced
    provider_type: remote::vllm
    config: {base_url: "%(url)s", api_token: token-of-fenced}
  - provider_id: walled
    provider_type: remote::vllm
    config: {base_url: "%(url)s", api_token: token-of-walled}
  - provider_id: metadata
    provider_type: remote::vllm
    config: {base_url: "http://169.254.169.254/v1", api_token: fake-token}
  - provider_id: roomy
    provider_type: test::echo
    config: {}
  - provider_id: tiny
    provider_type: test::echo
    config: {}
  - provider_id: spin
    provider_type: test::spin
    config: {}
"""

POLICY = """
plugins:
  policy:
    denied_cidrs: ["192.0.2.0/24"]
    providers:
      fenced:
        allowed_hosts: ["api.example.com"]
      walled:
        denied_cidrs: ["127.0.0.0/8"]
      tiny:
        memory_mb: 16
      spin:
        call_timeout_ms: 1500
"""


def _config(url: str) -> str:
    return vllm_config(url, distro_name="policy-e2e", more_providers=PROVIDERS % {"url": url},
                       more_sections=POLICY)


@pytest.fixture(scope="module")
def server(module_mock_upstream, module_ogx_server):
    return module_ogx_server(_config(module_mock_upstream.base_url))


def _chat(server, model: str, **kwargs) -> requests.Response:
    return server.post("/v1/chat/completions", timeout=kwargs.pop("timeout", 60), json={
        "model": model, "messages": [{"role": "user", "content": "hello"}]})


def _works(server) -> bool:
    answer = server.client().chat.completions.create(
        model="vllm/my-model", messages=[{"role": "user", "content": "are you well?"}])
    return answer.choices[0].message.content == answer_for("are you well?")


@pytest.mark.parametrize("provider, key", [
    ("fenced", "plugins.policy.providers.fenced.allowed_hosts"),
    ("walled", "plugins.policy.providers.walled.denied_cidrs"),
    ("metadata", "plugins.policy.allow_link_local"),
])
def test_a_refused_destination_names_the_config_key(server, module_mock_upstream, provider, key):
    response = _chat(server, f"{provider}/some-model")

    assert response.status_code == 502, response.text
    message = error_message_of(response)
    assert "denied" in message and key in message, message
    # Nothing of the refused providers ever reached the upstream (start-up included).
    tokens = [r.headers.get("authorization", "") for r in module_mock_upstream.requests]
    assert not [t for t in tokens if "token-of-fenced" in t or "token-of-walled" in t]
    assert _works(server)


def test_the_policy_memory_limit_applies_to_its_provider_only(server):
    # The echo fixture holds the request, its parse and its answer: some 30 MB for this one,
    # within the runtime's 64 MiB but not within tiny's 16 MiB.
    big = {"model": "", "messages": [{"role": "user", "content": "x" * (6 * 1024 * 1024)}]}

    roomy = server.post("/v1/chat/completions", timeout=120, json={**big, "model": "roomy/m"})
    tiny = server.post("/v1/chat/completions", timeout=120, json={**big, "model": "tiny/m"})

    assert roomy.status_code == 200, roomy.text[:500]
    assert tiny.status_code == 500, tiny.text[:500]
    log = server.output()
    crash = log[log.rindex("provider plugin crashed"):]
    assert "memory" in crash or "grow" in crash, crash[:3000]
    assert _chat(server, "tiny/m").status_code == 200
    assert _works(server)


def test_the_policy_call_timeout_stops_a_plugin_that_never_returns(server):
    # The runtime's own call timeout is the default five minutes; the policy's 1.5 s applies.
    try:
        response = _chat(server, "spin/anything", timeout=60)
    except requests.Timeout:
        pytest.fail("the policy's call_timeout_ms did not stop the plugin")

    assert response.status_code == 504, response.text
    assert _works(server)


def test_plugins_list_shows_the_effective_policy_per_provider(server, run_ogx):
    result = run_ogx(["plugins", "list", "--config", server.config_path])

    assert result.returncode == 0, result.output
    out = result.output
    section = out[out.index("Sandbox policy per provider"):]
    blocks = {}
    for block in re.split(r"\n  (?=\S)", section)[1:]:
        name = block.split(" ", 1)[0]
        blocks[name] = block
    assert "plugins.policy.providers.fenced.allowed_hosts [api.example.com]" in blocks["fenced"]
    assert "127.0.0.0/8 (plugins.policy.providers.walled.denied_cidrs)" in blocks["walled"]
    # The global block applies to every provider.
    for name in ("vllm", "fenced", "walled", "metadata", "roomy", "tiny", "spin"):
        assert "192.0.2.0/24 (plugins.policy.denied_cidrs)" in blocks[name], blocks[name]
        assert "link-local and metadata addresses: refused" in blocks[name]
    assert "memory: 16 MiB (plugins.policy.providers.tiny.memory_mb)" in blocks["tiny"]
    assert "memory: 64 MiB (runtime)" in blocks["vllm"]
    assert "call timeout: 1500 ms (plugins.policy.providers.spin.call_timeout_ms)" in blocks["spin"]


def test_allow_link_local_is_shown_when_set(module_mock_upstream, run_ogx, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(_config(module_mock_upstream.base_url).replace(
        "    providers:\n", "    providers:\n      metadata:\n        allow_link_local: true\n", 1))

    result = run_ogx(["plugins", "list", "--config", config])

    assert result.returncode == 0, result.output
    assert ("link-local and metadata addresses: allowed "
            "(plugins.policy.providers.metadata.allow_link_local)") in result.output


@pytest.mark.parametrize("policy, key, fix", [
    ("    allow_link_locals: true\n", "plugins.policy.allow_link_locals", "allow_link_local"),
    ("    denied_cidrs: [10.0.0.0/40]\n", "plugins.policy.denied_cidrs[0]", "prefix"),
    ("    providers:\n      nobody: {memory_mb: 8}\n", "plugins.policy.providers.nobody",
     "provider_id"),
    ("    memory_mb: 4096\n", "plugins.policy.memory_mb", "plugins.limits.memory_mb"),
    ("    allowed_hosts: [\"api.example.com/v1\"]\n", "plugins.policy.allowed_hosts",
     "`host`, `*.domain` or `*`"),
])
def test_policy_mistakes_stop_the_server_naming_the_key_and_the_fix(
        module_mock_upstream, run_ogx, tmp_path, policy, key, fix):
    config = tmp_path / "config.yaml"
    config.write_text(vllm_config(module_mock_upstream.base_url, distro_name="policy-bad",
                                  more_sections="plugins:\n  policy:\n" + policy))

    result = run_ogx(["run", "--port", free_port(), config])

    assert result.returncode != 0
    assert key in result.output and fix in result.output, result.output
