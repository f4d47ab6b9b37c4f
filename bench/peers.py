"""The benchmark's optional peers: OGX (the Python server ogx re-builds, PyPI package `ogx`) and
the LiteLLM proxy (`litellm[proxy]`), each configured against the same upstream as ogx, so the
table compares gateways under the same load and the same machine conditions.

`scripts/bench.sh --peers` installs them (a venv each, outside the repo) and passes their
executables to bench/run.py; this module says how each one is configured and launched: its
config file, command line, environment, the model name a request sends and the headers it
needs. bench/run.py starts, checks, measures and stops them.

Both listen on 127.0.0.1 with one worker (their default), log as they do by default (to a file
in the run's work dir), and reach nothing but the upstream: the environment is built from
scratch (no proxies, no database URL, no API keys of the caller), and LiteLLM is told to use its
bundled model price map instead of fetching it. A peer that does not start is reported under
the table with its log's last lines; the run goes on without it.

Standard library only."""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

# The upstream's one model (bench/upstream's MODEL_ID).
UPSTREAM_MODEL = "bench-model"
# Environment variables passed through to a peer; everything else is left out.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")

# Pieces of a run config (format templates: {upstream} a URL, {state} a directory) in OGX's
# format, which ogx reads too, so bench/run.py's config for ogx is made of them as well.
# The OpenAI-compatible provider in front of the upstream, an item of `providers: inference:`.
VLLM_PROVIDER = """\
    - provider_id: vllm
      provider_type: remote::vllm
      config:
        base_url: {upstream}/v1
"""
# The storage section: SQLite files under {state}.
SQLITE_STORAGE = """\
storage:
  backends:
    kv_default: {{type: kv_sqlite, db_path: {state}/kvstore.db}}
    sql_default: {{type: sql_sqlite, db_path: {state}/sql_store.db}}
  stores:
    metadata: {{namespace: registry, backend: kv_default}}
    inference: {{table_name: inference_store, backend: sql_default}}
    prompts: {{namespace: prompts, backend: kv_default}}
"""

OGX_CONFIG = """\
version: 2
distro_name: ogx-bench-peer
apis: [inference, models]
server:
  host: 127.0.0.1
  workers: 1
providers:
  inference:
""" + VLLM_PROVIDER + SQLITE_STORAGE + """\
registered_resources:
  models:
    - {{model_id: {model}, provider_id: vllm, provider_model_id: {model}, model_type: llm}}
"""

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
    """An installed peer: which server it is, its executable and the version installed."""
    kind: str  # "ogx" or "litellm"
    executable: Path
    version: str | None = None

    @property
    def name(self) -> str:
        """Its name in the table."""
        version = f" {self.version}" if self.version else ""
        return {"ogx": f"OGX{version} (Python)", "litellm": f"LiteLLM{version}"}[self.kind]


@dataclass
class PeerLaunch:
    """How to start a peer and talk to it."""
    argv: list[str]
    env: dict[str, str]
    model: str
    headers: dict[str, str] = field(default_factory=dict)


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
        config.write_text(OGX_CONFIG.format(upstream=upstream, state=state, model=UPSTREAM_MODEL))
        # `ogx run` serves plain HTTP only with --insecure (TLS is required otherwise).
        argv = [str(spec.executable), "run", "--insecure", "--port", str(port), str(config)]
        # OGX names a registered model <provider_id>/<model_id>, as ogx does.
        return PeerLaunch(argv, env, model=f"vllm/{UPSTREAM_MODEL}")
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
    raise ValueError(f"unknown peer kind {spec.kind!r}")
