"""Live changes: SIGHUP reloads the run config and the plugin directory is watched, while the
server keeps serving; requests in flight finish on what they started with.

One `ogx run` serves the whole module (each test writes the config it needs and reloads). Its
binary is a link to the built one in a directory of its own, so that the plugins installed next
to the built binary are not on its search path: its only plugin directory is the module's, with
a copy of the OpenAI-compatible plugin as `openai.wasm`, which the tests replace (by renaming
a new file into place, as an operator should) with the same plugin built for interface 0.1.0
(plugins/fixtures/v0.1.0), a current build, or garbage. The watcher polls every 200 ms.

The load test runs `wrk` (Debian's package, installed by scripts/setup.sh) against chat
completions during a config reload and a plugin swap, and reads wrk's own count of failed
requests (non-2xx answers and socket errors).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

import ogx_harness
from mock_openai import MockOpenAI, answer_for
from ogx_harness import OgxLauncher, OgxServer, PLUGINS_DIR, REPO, sse_events, wait_until

CURRENT_BUILD = PLUGINS_DIR / "ogx_plugin_openai.wasm"
V0_1_BUILD = REPO / "plugins" / "fixtures" / "v0.1.0" / "ogx_plugin_openai.wasm"
# A change is applied within two watch intervals; compiling a new plugin in a debug build on a
# busy machine takes longer.
CHANGE_TIMEOUT = 300.0
WATCH_INTERVAL_MS = "200"


@dataclass
class Live:
    server: OgxServer
    plugins: Path
    storage: str
    upstream: MockOpenAI
    second: MockOpenAI

    @property
    def plugin(self) -> Path:
        return self.plugins / "openai.wasm"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config(live: Live, *, key: str = "key-1", second: bool = False,
           models: tuple[tuple[str, str], ...] = (("vllm", "alpha"),),
           bogus: str = "") -> str:
    """The module's run config: provider `vllm` on the first mock with `key`, optionally
    provider `vllm2` on the second mock with key `key-b`, and `models` as (provider, model)."""
    text = f"""
version: 2
distro_name: live
apis: [inference, models]
providers:
  inference:
  - provider_id: vllm
    provider_type: remote::vllm
    config:
      base_url: {live.upstream.base_url}
      api_token: {key}
"""
    if second:
        text += f"""  - provider_id: vllm2
    provider_type: remote::vllm
    config:
      base_url: {live.second.base_url}
      api_token: key-b
"""
    text += bogus
    text += "registered_resources:\n  models:\n"
    for provider, model in models:
        text += (f"  - model_id: {model}\n    provider_id: {provider}\n"
                 f"    provider_model_id: upstream-{model}\n")
    return text + live.storage


def outcomes(server: OgxServer) -> int:
    """How many config reloads the server has logged as applied or refused."""
    return len(re.findall(r"config reload( applied|: config refused)", server.output()))


def reload(live: Live, text: str) -> str:
    """Writes `text` as the config, sends SIGHUP, waits for the outcome; returns its log line."""
    before = outcomes(live.server)
    live.server.config_path.write_text(text)
    live.server.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: outcomes(live.server) > before, CHANGE_TIMEOUT, "the reload's outcome")
    return re.findall(r"config reload(?: applied|: config refused).*", live.server.output())[-1]


def put_plugin(live: Live, source: Path | bytes) -> None:
    """Replaces openai.wasm by renaming a complete file into place."""
    staged = live.plugins.parent / "openai.wasm.new"
    if isinstance(source, bytes):
        staged.write_bytes(source)
    else:
        shutil.copyfile(source, staged)
    os.replace(staged, live.plugin)


def live_plugin(live: Live) -> dict:
    answer = live.server.get("/v1/inspect/plugins")
    assert answer.status_code == 200, answer.text
    [item] = [i for i in answer.json()["data"] if i["path"] == str(live.plugin)]
    return item


def swap_plugin(live: Live, source: Path, interface: str) -> dict:
    """Swaps openai.wasm for `source` and waits until it serves."""
    put_plugin(live, source)
    digest = sha256(source)
    return wait_until(
        lambda: (lambda item: item if item["sha256"] == digest else None)(live_plugin(live)),
        CHANGE_TIMEOUT, f"{source.name} ({interface}) to serve")


def chat(live: Live, model: str, text: str = "hello") -> requests.Response:
    return live.server.post("/v1/chat/completions", json={
        "model": model, "messages": [{"role": "user", "content": text}]})


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, ogx_home: Path) -> Iterator[Live]:
    assert V0_1_BUILD.is_file() and CURRENT_BUILD.is_file(), "build the plugins first"
    assert sha256(V0_1_BUILD) != sha256(CURRENT_BUILD), (
        f"{CURRENT_BUILD} is the 0.1.0 build: rebuild the plugins (scripts/build-plugins.sh)")
    base = tmp_path_factory.mktemp("live")
    binary = base / "bin" / "ogx"
    binary.parent.mkdir()
    try:
        os.link(ogx_harness.require_binary(), binary)
    except OSError:
        shutil.copy2(ogx_harness.require_binary(), binary)
    plugins = base / "plugins"
    plugins.mkdir()
    shutil.copyfile(CURRENT_BUILD, plugins / "openai.wasm")
    storage = ogx_harness.default_storage_yaml(base)
    with MockOpenAI() as upstream, MockOpenAI() as second, pytest.MonkeyPatch.context() as patch:
        patch.setattr(ogx_harness, "OGX_BIN", binary)
        launcher = OgxLauncher(base, ogx_home)
        state = Live(None, plugins, storage, upstream, second)  # type: ignore[arg-type]
        try:
            state.server = launcher.start(
                config(state), plugins_dir=None, args=["--plugins-dir", plugins],
                env={"OGX_PLUGINS_WATCH_INTERVAL_MS": WATCH_INTERVAL_MS})
            yield state
        finally:
            launcher.stop_all()


def test_sighup_adds_a_provider_and_a_model_and_changes_a_key(live: Live) -> None:
    assert chat(live, "vllm/alpha").status_code == 200
    assert live.upstream.last_request("/v1/chat/completions").headers["authorization"] == \
        "Bearer key-1"
    assert chat(live, "vllm2/beta").status_code == 404

    line = reload(live, config(live, key="key-2", second=True,
                               models=(("vllm", "alpha"), ("vllm2", "beta"))))
    assert "config reload applied" in line, line

    ids = [m["id"] for m in live.server.get("/v1/models").json()["data"]]
    assert "vllm/alpha" in ids and "vllm2/beta" in ids, ids
    answer = chat(live, "vllm2/beta", "to the new provider")
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == answer_for("to the new provider")
    seen = live.second.last_request("/v1/chat/completions")
    assert seen.headers["authorization"] == "Bearer key-b"
    assert seen.json["model"] == "upstream-beta"
    assert chat(live, "vllm/alpha").status_code == 200
    assert live.upstream.last_request("/v1/chat/completions").headers["authorization"] == \
        "Bearer key-2"
    providers = [p["provider_id"] for p in live.server.get("/v1/providers").json()["data"]]
    assert providers == ["vllm", "vllm2"]


def test_sighup_removes_a_model_and_a_provider(live: Live) -> None:
    reload(live, config(live, second=True, models=(("vllm", "alpha"), ("vllm2", "beta"))))
    assert live.server.get("/v1/models/vllm2/beta").status_code == 200

    line = reload(live, config(live))
    assert "config reload applied" in line, line
    assert "vllm2/beta" in line  # named among the unregistered models

    answer = live.server.get("/v1/models/vllm2/beta")
    assert answer.status_code == 404
    assert "Model 'vllm2/beta' not found" in answer.json()["error"]["message"]
    assert chat(live, "vllm2/beta").status_code == 404
    ids = [m["id"] for m in live.server.get("/v1/models").json()["data"]]
    assert "vllm2/beta" not in ids and "vllm/alpha" in ids


@pytest.mark.parametrize("bogus, expected", [
    ("  - provider_id: broken\n    provider_type: remote::no-such-type\n    config: {}\n",
     "no plugin serves provider type `remote::no-such-type`"),
    ("  - provider_id: [unclosed\n", "is not valid YAML"),
], ids=["unknown-type", "bad-yaml"])
def test_an_invalid_config_is_refused_with_the_start_up_message(
        live: Live, run_ogx, bogus: str, expected: str) -> None:
    reload(live, config(live))
    invalid = config(live, bogus=bogus)
    line = reload(live, invalid)
    assert "config refused, the running config stays" in line, line

    # `ogx run --dry-run` of the same file refuses it with the same message.
    checked = run_ogx(["run", "--dry-run", "--plugins-dir", live.plugins,
                       live.server.config_path], plugins_dir=None)
    assert checked.returncode != 0
    start_up = checked.stderr.strip().removeprefix("error: ")
    assert expected in start_up, start_up
    assert start_up in line, f"start-up: {start_up}\nreload: {line}"

    answer = chat(live, "vllm/alpha")
    assert answer.status_code == 200, answer.text
    assert live.upstream.last_request("/v1/chat/completions").headers["authorization"] == \
        "Bearer key-1"


def test_a_stream_in_flight_finishes_on_the_config_it_started_with(live: Live) -> None:
    reload(live, config(live, second=True, models=(("vllm", "alpha"), ("vllm2", "beta"))))
    text = "[mock:slow=0.25] one two three four five six seven eight nine ten"
    response = live.server.post("/v1/chat/completions", stream=True, timeout=120, json={
        "model": "vllm2/beta", "stream": True,
        "messages": [{"role": "user", "content": text}]})
    assert response.status_code == 200, response.text
    events = sse_events(response)
    first = next(events)

    # vllm2 and its model go away while the answer streams.
    line = reload(live, config(live))
    assert "config reload applied" in line, line
    assert chat(live, "vllm2/beta").status_code == 404

    rest = list(events)
    assert rest and rest[-1] == "[DONE]", rest
    content = "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                      for e in [first, *rest[:-1]] if json.loads(e)["choices"])
    assert content == answer_for(text)


def test_a_swapped_plugin_file_is_served(live: Live, run_ogx) -> None:
    reload(live, config(live))
    before = live_plugin(live)
    assert before["sha256"] == sha256(CURRENT_BUILD) and before["interface"] == "0.2.0"
    assert before["providers"] == ["vllm"] and "remote::vllm" in before["provider_types"]

    after = swap_plugin(live, V0_1_BUILD, "0.1.0")
    assert after["interface"] == "0.1.0" and after["providers"] == ["vllm"]
    assert after["loaded_at"] >= before["loaded_at"]
    assert "plugin replaced: " + str(live.plugin) in live.server.output()
    answer = chat(live, "vllm/alpha", "served by the 0.1.0 build")
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == \
        answer_for("served by the 0.1.0 build")

    listing = run_ogx(["plugins", "list", "--server", live.server.url], plugins_dir=None)
    assert listing.returncode == 0, listing.output
    assert str(live.plugin) in listing.stdout and "ogx:provider@0.1.0" in listing.stdout
    assert sha256(V0_1_BUILD) in listing.stdout and "serving: vllm" in listing.stdout
    assert "key-1" not in listing.stdout and "key-1" not in str(live_plugin(live))

    back = swap_plugin(live, CURRENT_BUILD, "0.2.0")
    assert back["interface"] == "0.2.0"


def test_a_broken_plugin_file_is_refused_and_the_old_keeps_serving(live: Live) -> None:
    reload(live, config(live))
    good = live_plugin(live)
    put_plugin(live, b"\0asm this is not a component")
    refused = wait_until(lambda: (lambda i: i if i.get("last_refusal") else None)(live_plugin(live)),
                         CHANGE_TIMEOUT, "the broken file to be refused")
    assert refused["status"] == "loaded" and refused["sha256"] == good["sha256"]
    assert str(live.plugin) in refused["last_refusal"]["error"]
    assert "the version loaded before keeps serving" in live.server.output()
    answer = chat(live, "vllm/alpha", "still served")
    assert answer.status_code == 200, answer.text

    # A good file again: loaded as a new version, and the refusal is cleared.
    swapped = swap_plugin(live, V0_1_BUILD, "0.1.0")
    assert swapped["last_refusal"] is None
    swap_plugin(live, CURRENT_BUILD, "0.2.0")


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"model": "vllm/alpha", "messages": [{"role": "user", "content": "load"}]}'
wrk.headers["Content-Type"] = "application/json"
"""


def test_no_request_fails_during_a_reload_and_a_plugin_swap(live: Live, tmp_path: Path) -> None:
    wrk = shutil.which("wrk")
    assert wrk, "wrk is not installed: run scripts/setup.sh (it installs Debian's wrk)"
    reload(live, config(live))
    # Both builds compiled (and cached) before the load starts.
    swap_plugin(live, V0_1_BUILD, "0.1.0")
    swap_plugin(live, CURRENT_BUILD, "0.2.0")
    script = tmp_path / "chat.lua"
    script.write_text(WRK_SCRIPT)
    load = subprocess.Popen([wrk, "-t1", "-c2", "-d6s", "--timeout", "10s", "-s", str(script),
                             live.server.url + "/v1/chat/completions"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        time.sleep(1.0)
        line = reload(live, config(live, key="key-under-load"))
        assert "config reload applied" in line, line
        swap_plugin(live, V0_1_BUILD, "0.1.0")
        assert load.poll() is None, "the load ended before the reload and the swap were applied"
        report, _ = load.communicate(timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    print(report)
    total = re.search(r"(\d+) requests in", report)
    assert total and int(total.group(1)) > 0, report
    assert "Non-2xx" not in report and "Socket errors" not in report, report
    assert live.upstream.last_request("/v1/chat/completions").headers["authorization"] == \
        "Bearer key-under-load"
    swap_plugin(live, CURRENT_BUILD, "0.2.0")
