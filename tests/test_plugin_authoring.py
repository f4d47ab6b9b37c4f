"""Plugin authoring from a scratch directory outside the repository: `ogx plugins new` →
cargo builds → `ogx plugins validate` / `call` → the plugin serving chat through the real ogx
binary against a loopback upstream; broken plugins refused by `validate` naming the stage; and
the SDK's packaged `.crate`, unpacked alone, building a plugin.

Builds are offline (CARGO_NET_OFFLINE=true: dependencies come from the local cargo registry
cache, which building plugins/ populated) and share one target directory for dependency
artifacts: OGX_AUTHORING_TARGET_DIR, default ${CARGO_TARGET_DIR:-<repo>/target}/plugin-authoring
(a build cache only; the crates built never refer to it or to the repository). Each step's
duration is printed (`pytest -s` shows it); nothing is timed against a limit.

`cargo component build` runs when cargo-component is installed (skipped otherwise, failed
under CI=1 only if OGX_TEST_CARGO_COMPONENT=1 is set too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from mock_openai import MockOpenAI, answer_for
from ogx_harness import PLUGINS_DIR, REPO, TARGET_DIR

SHARED_TARGET = Path(os.environ.get("OGX_AUTHORING_TARGET_DIR")
                     or TARGET_DIR / "plugin-authoring").resolve()
BUILD_TIMEOUT = float(os.environ.get("OGX_TEST_BUILD_TIMEOUT", "1800"))
WASM = Path("wasm32-wasip2") / "release" / "acme.wasm"
TIMINGS: dict[str, float] = {}


def cargo_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CARGO_", "RUST")) or k in ("CARGO_HOME", "RUSTUP_HOME")}
    env["CARGO_NET_OFFLINE"] = "true"
    env["CARGO_TARGET_DIR"] = str(SHARED_TARGET)
    return env


def timed(step: str, cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
          timeout: float = BUILD_TIMEOUT) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
    TIMINGS[step] = time.monotonic() - started
    print(f"[plugin authoring] {step}: {TIMINGS[step]:.1f}s (exit {result.returncode})")
    return result


def ogx(run_ogx, *args: object, env: dict[str, str] | None = None):
    started = time.monotonic()
    result = run_ogx(["plugins", *args], env=env, plugins_dir=None, timeout=600)
    step = f"ogx plugins {args[0]}"
    TIMINGS[step] = time.monotonic() - started
    print(f"[plugin authoring] {step}: {TIMINGS[step]:.1f}s (exit {result.returncode})")
    return result


def assert_outside_repo(path: Path) -> None:
    assert not path.resolve().is_relative_to(REPO), f"{path} is inside the repository"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("authoring")
    assert_outside_repo(directory)
    return directory


@pytest.fixture(scope="module")
def new_crate(scratch, ogx_home) -> Path:
    from ogx_harness import run_ogx as raw_run
    result = raw_run(["plugins", "new", "acme", "--dir", scratch], ogx_home, plugins_dir=None,
                     cwd=scratch)
    assert result.returncode == 0, result.output
    crate = scratch / "acme"
    assert (crate / "Cargo.toml").is_file(), result.output
    return crate


@pytest.fixture(scope="module")
def built_plugin(new_crate) -> Path:
    """The new crate built for wasm32-wasip2, copied into a plugins directory of its own."""
    result = timed("cargo build --target wasm32-wasip2 --release",
                   ["cargo", "build", "--target", "wasm32-wasip2", "--release"],
                   new_crate, cargo_env())
    assert result.returncode == 0, result.stderr[-4000:]
    wasm = SHARED_TARGET / WASM
    assert wasm.is_file(), f"no {wasm} after the build"
    plugins = new_crate.parent / "plugins"
    plugins.mkdir(exist_ok=True)
    shutil.copy(wasm, plugins / "acme.wasm")
    return plugins / "acme.wasm"


def test_the_new_crate_refers_to_nothing_outside_itself(new_crate):
    text_files = [p for p in new_crate.rglob("*") if p.is_file()]
    assert any(p.name == "lib.rs" for p in text_files)
    for path in text_files:
        text = path.read_text()
        assert str(REPO) not in text, f"{path} names the repository"
        if "vendor" not in path.parts:
            assert "../" not in text, f"{path} refers outside the crate"
    manifest = (new_crate / "Cargo.toml").read_text()
    assert 'path = "vendor/ogx-provider-sdk"' in manifest
    assert (new_crate / "vendor/ogx-provider-sdk/wit/ogx-provider@0.2.0/world.wit").is_file()


def test_native_unit_tests_pass_with_the_fake_host(new_crate):
    result = timed("cargo test (native)", ["cargo", "test"], new_crate, cargo_env())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "test result: ok. 6 passed" in result.stdout, result.stdout


def test_validate_runs_every_stage_and_describes_the_plugin(built_plugin, run_ogx, scratch):
    config = scratch / "acme-provider.yaml"
    config.write_text("base_url: http://127.0.0.1:9/v1\napi_key: ${env.ACME_TEST_KEY:=}\n")

    result = ogx(run_ogx, "validate", built_plugin, "--config", config)

    assert result.returncode == 0, result.output
    for stage in ["component", "interface version", "imports", "exports", "describe", "init"]:
        assert f"✓ {stage}" in result.stdout, result.output
    assert "plugin: acme 0.1.0 (ogx:provider@0.2.0" in result.stdout
    assert "provider types: remote::acme" in result.stdout
    assert "outbound hosts: *" in result.stdout
    assert "secret config keys: api_key" in result.stdout
    assert "memory" in result.stdout and "link-local" in result.stdout


def test_call_runs_one_chat_against_a_loopback_upstream(built_plugin, run_ogx, scratch):
    with MockOpenAI(require_key="sk-acme") as mock:
        config = scratch / "call-provider.json"
        config.write_text(json.dumps({"base_url": mock.base_url, "api_key": "sk-acme"}))
        request = scratch / "chat.json"
        request.write_text(json.dumps({"model": "mock-alpha",
                                       "messages": [{"role": "user", "content": "hello"}]}))

        result = ogx(run_ogx, "call", built_plugin, "--config", config, "--request", request)

        assert result.returncode == 0, result.output
        answer = json.loads(result.stdout)
        assert answer["choices"][0]["message"]["content"] == answer_for("hello")
        sent = mock.last_request("/v1/chat/completions")
        assert sent.headers["authorization"] == "Bearer sk-acme"
        assert sent.json["messages"][0]["content"] == "hello"

        listing = ogx(run_ogx, "call", built_plugin, "--config", config)
        assert listing.returncode == 0, listing.output
        assert [m["id"] for m in json.loads(listing.stdout)] == list(mock.models)

        wrong_key = scratch / "wrong-key.json"
        wrong_key.write_text(json.dumps({"base_url": mock.base_url, "api_key": "sk-wrong"}))
        refused = ogx(run_ogx, "call", built_plugin, "--config", wrong_key, "--request", request)
        assert refused.returncode == 1, refused.output
        assert "the provider answered 401" in refused.stderr, refused.output
        assert "sk-wrong" not in refused.output


def test_the_plugin_serves_chat_through_ogx(built_plugin, module_ogx_server):
    with MockOpenAI(require_key="sk-acme") as mock:
        config = (
            "version: 2\n"
            "distro_name: plugin-authoring\n"
            "apis: [inference, models]\n"
            "providers:\n"
            "  inference:\n"
            "  - provider_id: acme\n"
            "    provider_type: remote::acme\n"
            "    config:\n"
            f"      base_url: {json.dumps(mock.base_url)}\n"
            "      api_key: sk-acme\n"
            "registered_resources:\n"
            "  models:\n"
            "  - model_id: acme-model\n"
            "    provider_id: acme\n"
            "    provider_model_id: mock-alpha\n"
        )
        started = time.monotonic()
        server = module_ogx_server(config, plugins_dir=None,
                                   args=["--plugins-dir", built_plugin.parent])
        TIMINGS["ogx run (until healthy)"] = time.monotonic() - started
        print(f"[plugin authoring] ogx run (until healthy): "
              f"{TIMINGS['ogx run (until healthy)']:.1f}s")
        client = server.client()

        answer = client.chat.completions.create(
            model="acme/acme-model", messages=[{"role": "user", "content": "served?"}])
        assert answer.choices[0].message.content == answer_for("served?")
        assert mock.last_request("/v1/chat/completions").json["model"] == "mock-alpha"

        stream = client.chat.completions.create(
            model="acme/acme-model", messages=[{"role": "user", "content": "stream it"}],
            stream=True)
        text = "".join(chunk.choices[0].delta.content or ""
                       for chunk in stream if chunk.choices)
        assert text == answer_for("stream it")
        assert mock.last_request("/v1/chat/completions").json["stream"] is True


@pytest.mark.parametrize("fixture, stage, words", [
    ("ogx_fixture_bad_import.wasm", "imports", "ogx-test:forbidden/secrets"),
    ("ogx_fixture_other_version.wasm", "interface version", "0.9.0"),
])
def test_validate_refuses_broken_plugins_naming_the_stage(run_ogx, fixture, stage, words):
    plugin = PLUGINS_DIR / fixture
    assert plugin.is_file(), f"{plugin} missing: run scripts/build-plugins.sh --with-fixtures"

    result = ogx(run_ogx, "validate", plugin)

    assert result.returncode == 1, result.output
    assert f"✗ {stage}" in result.stdout, result.output
    assert f"fails the `{stage}` stage" in result.stderr, result.output
    assert words in result.stderr, result.output


def test_validate_refuses_a_config_init_rejects(built_plugin, run_ogx, scratch):
    config = scratch / "bad-provider.yaml"
    config.write_text("base_url: ftp://example.invalid\n")
    result = ogx(run_ogx, "validate", built_plugin, "--config", config)
    assert result.returncode == 1, result.output
    assert "✓ describe" in result.stdout and "✗ init" in result.stdout, result.output
    assert "fails the `init` stage" in result.stderr
    assert "config.base_url must be an http:// or https:// URL" in result.stderr

    fixture = PLUGINS_DIR / "ogx_fixture_init_fails.wasm"
    refused = scratch / "refused.yaml"
    refused.write_text("accept: false\n")
    result = ogx(run_ogx, "validate", fixture, "--config", refused)
    assert result.returncode == 1, result.output
    assert "fails the `init` stage" in result.stderr and "set `accept: true`" in result.stderr


def test_cargo_component_builds_the_new_crate(new_crate, run_ogx):
    if shutil.which("cargo-component") is None:
        if os.environ.get("CI") and os.environ.get("OGX_TEST_CARGO_COMPONENT") == "1":
            pytest.fail("OGX_TEST_CARGO_COMPONENT=1 but cargo-component is not installed")
        pytest.skip("cargo-component is not installed")
    result = timed("cargo component build --release", ["cargo", "component", "build", "--release"],
                   new_crate, cargo_env())
    assert result.returncode == 0, result.stderr[-4000:]
    wasm = SHARED_TARGET / "wasm32-wasip1" / "release" / "acme.wasm"
    assert wasm.is_file(), result.stderr[-2000:]
    validated = ogx(run_ogx, "validate", wasm)
    assert validated.returncode == 0, validated.output
    assert "provider types: remote::acme" in validated.stdout


def test_the_packaged_sdk_builds_a_plugin_alone(scratch, run_ogx):
    """`cargo package` the SDK, unpack the .crate into the scratch directory, and build a new
    plugin against it (as a registry dependency would be), without the vendored copy."""
    package_target = scratch / "package-target"
    env = cargo_env() | {"CARGO_TARGET_DIR": str(package_target)}
    packaged = timed("cargo package -p ogx-provider-sdk --no-verify",
                     ["cargo", "package", "-p", "ogx-provider-sdk", "--no-verify",
                      "--allow-dirty"], REPO / "plugins", env)
    assert packaged.returncode == 0, packaged.stderr[-3000:]
    crates = list((package_target / "package").glob("ogx-provider-sdk-*.crate"))
    assert len(crates) == 1, crates
    unpacked = scratch / "registry"
    with tarfile.open(crates[0]) as archive:
        archive.extractall(unpacked, filter="data")
    sdk_dir = next(unpacked.glob("ogx-provider-sdk-*"))
    assert (sdk_dir / "wit" / "ogx-provider@0.2.0" / "world.wit").is_file()

    made = run_ogx(["plugins", "new", "packaged", "--dir", scratch / "from-crate"],
                   plugins_dir=None)
    assert made.returncode == 0, made.output
    crate = scratch / "from-crate" / "packaged"
    shutil.rmtree(crate / "vendor")
    manifest = crate / "Cargo.toml"
    text = manifest.read_text()
    assert 'ogx-provider-sdk = { path = "vendor/ogx-provider-sdk" }' in text
    manifest.write_text(text.replace('path = "vendor/ogx-provider-sdk"', f'path = "{sdk_dir}"'))

    result = timed("cargo build (packaged SDK)",
                   ["cargo", "build", "--target", "wasm32-wasip2", "--release"], crate,
                   cargo_env())
    assert result.returncode == 0, result.stderr[-4000:]
    validated = ogx(run_ogx, "validate", SHARED_TARGET / "wasm32-wasip2/release/packaged.wasm")
    assert validated.returncode == 0, validated.output
    assert "provider types: remote::packaged" in validated.stdout
