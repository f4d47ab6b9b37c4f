"""The benchmark's optional peers: OGX (the Python server ogx re-builds, PyPI package `ogx`), the
LiteLLM proxy (`litellm[proxy]`) and Portkey's gateway (npm `@portkey-ai/gateway`, on Node),
each configured against the same upstream as ogx, so the tables compare gateways under the same
load and the same machine conditions.

`scripts/bench.sh --peers` installs them (a venv each for the Python ones, an npm prefix for
Portkey, outside the repo) and passes their executables to bench/run.py; this module says how
each one is configured and launched: its config file, command line, environment, the model name
a request sends, the headers it needs and the route that says it is up. bench/run.py starts,
checks, measures and stops them.

They listen on 127.0.0.1 (Portkey: on every address, it has no option) with one worker or process (their default), log as they do by default
(to a file in the run's work dir), and reach nothing but the upstream: the environment is built
from scratch (no proxies, no database URL, no API keys of the caller), and LiteLLM is told to
use its bundled model price map instead of fetching it. A peer that does not start is reported
under the tables with its log's last lines; the run goes on without it.

Standard library only."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import paths
from paths import UPSTREAM_MODEL

# Environment variables passed through to a peer; everything else is left out.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
KINDS = ("ogx", "litellm", "portkey")

# OGX reads ogx's config format (ogx re-builds it): the vllm path's config, one worker.
OGX_SERVER = {"distro_name": "ogx-bench-peer", "server": {"host": "127.0.0.1", "workers": 1}}

LITELLM_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {upstream}/v1
      api_key: bench-upstream-does-not-check-keys
litellm_settings:
  telemetry: false
general_settings:
  master_key: {master_key}
"""


@dataclass(frozen=True)
class PeerSpec:
    """An installed peer: which server it is, its executable (for Portkey: its start-server.js)
    and the version installed."""
    kind: str  # one of KINDS
    executable: Path
    version: str | None = None

    @property
    def name(self) -> str:
        """Its name in the tables."""
        version = f" {self.version}" if self.version else ""
        return {"ogx": f"OGX{version} (Python)", "litellm": f"LiteLLM{version}",
                "portkey": f"Portkey{version} (Node)"}[self.kind]


@dataclass
class PeerLaunch:
    """How to start a peer and talk to it."""
    argv: list[str]
    env: dict[str, str]
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    # A GET that answers 200 once it serves.
    ready_path: str = "/v1/models"


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in PASSED_ENV}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
                "PYTHONUNBUFFERED": "1"})
    return env


def launch(spec: PeerSpec, upstream: str, port: int, state: Path) -> PeerLaunch:
    """Writes the peer's config under `state` and returns how to start it on `port`."""
    state.mkdir(parents=True, exist_ok=True)
    config = state / "config.yaml"
    env = base_env()
    if spec.kind == "ogx":
        vllm = next(p for p in paths.PATHS if p.peers)
        ogx_config = paths.merge(paths.ogx_config(vllm.fragments), OGX_SERVER)
        paths.write_config(ogx_config, config, upstream, str(state))
        # `ogx run` serves plain HTTP only with --insecure (TLS is required otherwise).
        argv = [str(spec.executable), "run", "--insecure", "--port", str(port), str(config)]
        # OGX names a registered model <provider_id>/<model_id>, as ogx does.
        return PeerLaunch(argv, env, model=vllm.model)
    if spec.kind == "litellm":
        # The proxy refuses to start without a master key; a fresh one per start.
        master_key = "sk-bench-" + secrets.token_hex(16)
        config.write_text(LITELLM_CONFIG.format(upstream=upstream, model=UPSTREAM_MODEL,
                                                master_key=master_key))
        env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        argv = [str(spec.executable), "--config", str(config), "--host", "127.0.0.1",
                "--port", str(port), "--num_workers", "1"]
        return PeerLaunch(argv, env, model=UPSTREAM_MODEL,
                          headers={"Authorization": f"Bearer {master_key}"})
    if spec.kind == "portkey":
        # The gateway takes its route per request: the OpenAI provider with a custom host (the
        # upstream; 127.0.0.1 is among its default trusted custom hosts). --headless: no web UI.
        # It has no option for the address and listens on all of them; only 127.0.0.1 is used.
        argv = ["node", str(spec.executable), f"--port={port}", "--headless"]
        return PeerLaunch(argv, env, model=UPSTREAM_MODEL, ready_path="/",
                          headers={"x-portkey-provider": "openai",
                                   "x-portkey-custom-host": f"{upstream}/v1",
                                   "Authorization": "Bearer bench-upstream-does-not-check-keys"})
    raise ValueError(f"unknown peer kind {spec.kind!r}")
