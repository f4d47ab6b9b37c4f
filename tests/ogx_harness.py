"""Starting and stopping the real `ogx` binary for the end-to-end tests.

Where things are (override with environment variables):
  OGX_BIN          the binary; default ${CARGO_TARGET_DIR:-<repo>/target}/debug/ogx
  OGX_PLUGINS_DIR  the compiled plugins (the test fixtures included);
                   default ${CARGO_TARGET_DIR:-<repo>/target}/debug/plugins
  OGX_TEST_STARTUP_TIMEOUT  seconds to wait for /v1/health (default 120: a cold plugin cache
                            compiles every plugin, slow in a debug build on a loaded machine)

Every process runs in its own process group, with a clean environment: no OGX_*, AWS_* or proxy
variables from the caller, HOME pointing into the test's temporary directory, NO_PROXY for
loopback, and the EC2 metadata lookup switched off, so the only traffic is to 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import requests
from openai import OpenAI

REPO = Path(__file__).resolve().parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target").resolve()
OGX_BIN = Path(os.environ.get("OGX_BIN") or TARGET_DIR / "debug" / "ogx").resolve()
PLUGINS_DIR = Path(os.environ.get("OGX_PLUGINS_DIR") or TARGET_DIR / "debug" / "plugins").resolve()
STARTUP_TIMEOUT = float(os.environ.get("OGX_TEST_STARTUP_TIMEOUT", "120"))
COMMAND_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0
# Starts of a server whose port another process took between choice and bind.
PORT_ATTEMPTS = 3

# The test process itself talks to 127.0.0.1 only; make sure no proxy is involved.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

# `plugins_dir=DEFAULT` means PLUGINS_DIR; `plugins_dir=None` leaves OGX_PLUGINS_DIR unset.
DEFAULT = object()

_DROPPED_ENV = re.compile(r"^(OGX_|LLAMA_STACK_|AWS_|SQLITE_STORE_DIR$|(?i:(https?|all|no)_proxy)$)")


def require_binary() -> Path:
    if not OGX_BIN.is_file():
        raise AssertionError(
            f"the ogx binary is not at {OGX_BIN}: build it with `cargo build` or set OGX_BIN")
    return OGX_BIN


# Compiled plugins, shared by every `ogx` the tests start (and by tests/ogx_suite/run.py, and
# by later runs on the same machine): the cache is keyed by the wasm's sha256 and wasmtime's
# settings, so a plugin is compiled once per build instead of once per test session. A test
# can still pass its own OGX_PLUGIN_CACHE_DIR in `extra`.
PLUGIN_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
    / "ogx-tests" / "plugin-cache"


def ogx_env(home: Path, plugins_dir: object = DEFAULT,
            extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment an `ogx` process gets."""
    env = {k: v for k, v in os.environ.items() if not _DROPPED_ENV.match(k)}
    env.update(HOME=str(home), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               AWS_EC2_METADATA_DISABLED="true", RUST_BACKTRACE="1",
               OGX_PLUGIN_CACHE_DIR=str(PLUGIN_CACHE_DIR))
    if plugins_dir is DEFAULT:
        plugins_dir = PLUGINS_DIR
    if plugins_dir is not None:
        env["OGX_PLUGINS_DIR"] = str(plugins_dir)
    env.update(extra or {})
    return env


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_EPHEMERAL_LOW, _EPHEMERAL_HIGH = _ephemeral_range()
# Ports for servers the tests start come from below the kernel's ephemeral range: a port the
# kernel picks for an outgoing connection can never be one of them, so the gap between choosing
# a port and the server binding it is not a race with the tests' own clients.
_TEST_PORTS = range(max(1024, _EPHEMERAL_LOW - 12000), _EPHEMERAL_LOW)
_handed_out: set[int] = set()


def free_port() -> int:
    """A port that is free on 127.0.0.1 now, outside the ephemeral range, and not given to
    any other server of this test run."""
    for _ in range(500):
        port = random.choice(_TEST_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lost_port_race(output: str) -> bool:
    """True when a server's output says its port was taken before it could bind."""
    return "Address already in use" in output or "is in use by another program" in output


def wait_until(condition: Callable[[], object], timeout: float, what: str,
               interval: float = 0.1) -> object:
    """Polls `condition` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after STOP_TIMEOUT."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers in the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=STOP_TIMEOUT)


# -- commands that exit --------------------------------------------------------------------

@dataclass
class OgxResult:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_ogx(args: Sequence[str], home: Path, env: Mapping[str, str] | None = None,
            plugins_dir: object = DEFAULT, timeout: float = COMMAND_TIMEOUT,
            cwd: Path | None = None) -> OgxResult:
    """Runs `ogx <args>` to completion (e.g. `plugins list`, or a `run` that must fail)."""
    cmd = [str(require_binary()), *map(str, args)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ogx_env(home, plugins_dir, env), cwd=cwd,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(proc)
        stdout, stderr = proc.communicate()
        raise AssertionError(f"`ogx {' '.join(map(str, args))}` did not exit within {timeout:.0f}s;"
                             f" output:\n{stdout}{stderr}")
    return OgxResult(cmd[1:], proc.returncode, stdout, stderr)


# -- run configs ---------------------------------------------------------------------------

@dataclass(frozen=True)
class RegisteredModel:
    """One entry of `registered_resources.models`; clients call it `vllm/<model_id>`."""
    model_id: str
    provider_model_id: str
    model_type: str | None = None


MY_MODEL = RegisteredModel("my-model", "upstream-model")

# The Messages API enabled as OGX 1.5's starter config does: a `more_providers` block.
MESSAGES_PROVIDER = """
  messages:
  - provider_id: builtin
    provider_type: inline::builtin
    config:
      kvstore:
        backend: kv_default
        namespace: message_batches
"""


def vllm_config(upstream_url: str, *, distro_name: str | None, api_token: str | None = "fake-token",
                apis: Sequence[str] | None = ("inference", "models"),
                extra_provider_config: Mapping[str, object] | None = None,
                models: Sequence[RegisteredModel] = (MY_MODEL,),
                more_providers: str = "", more_sections: str = "") -> str:
    """A run config with one `remote::vllm` provider, id `vllm`, pointed at `upstream_url`.

    `None` leaves `distro_name`, `api_token` or `apis` out; `extra_provider_config` adds keys to
    the provider's `config`; `more_providers` (YAML text) adds items to `providers.inference`
    after it, and `more_sections` (YAML text) adds top-level keys.
    """
    config = {"base_url": upstream_url}
    if api_token is not None:
        config["api_token"] = api_token
    config.update(extra_provider_config or {})

    text = "\nversion: 2\n"
    if distro_name is not None:
        text += f"distro_name: {_yaml_scalar(distro_name)}\n"
    if apis is not None:
        text += f"apis: [{', '.join(apis)}]\n"
    text += ("providers:\n"
             "  inference:\n"
             "  - provider_id: vllm\n"
             "    provider_type: remote::vllm\n"
             "    config:\n")
    text += "".join(f"      {key}: {_yaml_scalar(v)}\n" for key, v in config.items())
    text += _yaml_block(more_providers)
    if models:
        text += "registered_resources:\n  models:\n"
        for model in models:
            text += (f"  - model_id: {_yaml_scalar(model.model_id)}\n"
                     f"    provider_id: vllm\n"
                     f"    provider_model_id: {_yaml_scalar(model.provider_model_id)}\n")
            if model.model_type is not None:
                text += f"    model_type: {_yaml_scalar(model.model_type)}\n"
    return text + _yaml_block(more_sections)


def _yaml_scalar(value: object) -> str:
    """A JSON scalar, which YAML reads as the same string, number or boolean."""
    return json.dumps(value)


def _yaml_block(text: str) -> str:
    """YAML lines given as text, without the blank lines around them."""
    text = text.strip("\n")
    return text + "\n" if text else ""


# -- servers -------------------------------------------------------------------------------

def default_storage_yaml(directory: Path) -> str:
    return f"""
storage:
  backends:
    kv_default:
      type: kv_sqlite
      db_path: {directory / "kvstore.db"}
    sql_default:
      type: sql_sqlite
      db_path: {directory / "sql_store.db"}
  stores:
    metadata:
      backend: kv_default
      namespace: registry
    inference:
      backend: sql_default
      table_name: inference_store
"""


class OgxServer:
    """A running `ogx run`. `output()` is everything it printed so far (stdout + stderr)."""

    def __init__(self, proc: subprocess.Popen, url: str, log_path: Path, config_path: Path,
                 verify: bool | str = True):
        self.proc = proc
        self.url = url
        self.log_path = log_path
        self.config_path = config_path
        # For HTTPS servers: the CA file their certificate is checked against.
        self.verify = verify

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs) -> OpenAI:
        return openai_client(self.url, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("verify", self.verify)
        return requests.get(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("verify", self.verify)
        return requests.post(self.url + path, timeout=kwargs.pop("timeout", 30), **kwargs)

    def stop(self) -> None:
        _stop_group(self.proc)


class OgxLauncher:
    """Starts servers in numbered sub-directories of `base`, and stops them all at the end."""

    def __init__(self, base: Path, home: Path):
        self.base = base
        self.home = home
        self.servers: list[OgxServer] = []

    def start(self, config_text: str, env: Mapping[str, str] | None = None,
              plugins_dir: object = DEFAULT, args: Sequence[str] = (),
              config_dir: Path | None = None, config_name: str = "config.yaml",
              add_storage: bool = True, tls_ca: Path | None = None,
              health_cert: tuple[str, str] | None = None) -> OgxServer:
        """Writes the config, runs `ogx run --port P [args] CONFIG`, waits for /v1/health.

        A config without a top-level `storage:` gets SQLite stores next to it unless
        `add_storage` is False (for configs that must be used verbatim). `tls_ca` makes the
        server's URL https, checked against that CA; `health_cert` is the client certificate
        (cert, key) the readiness check presents to a server that requires one.
        """
        binary = require_binary()
        workdir = self.base / f"ogx-{len(self.servers) + 1}"
        workdir.mkdir(parents=True, exist_ok=True)
        config_dir = config_dir or workdir
        config_dir.mkdir(parents=True, exist_ok=True)
        if add_storage and not re.search(r"^storage:", config_text, re.MULTILINE):
            config_text = config_text.rstrip("\n") + "\n" + default_storage_yaml(workdir)
        config_path = config_dir / config_name
        config_path.write_text(config_text)
        log_path = workdir / "ogx.log"
        for attempt in range(PORT_ATTEMPTS):
            port = free_port()
            cmd = [str(binary), "run", "--port", str(port), *map(str, args), str(config_path)]
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, cwd=workdir,
                                        env=ogx_env(self.home, plugins_dir, env),
                                        start_new_session=True)
            scheme = "https" if tls_ca else "http"
            server = OgxServer(proc, f"{scheme}://127.0.0.1:{port}", log_path, config_path,
                               verify=str(tls_ca) if tls_ca else True)
            self.servers.append(server)
            try:
                self._wait_healthy(server, cmd, health_cert)
                return server
            except AssertionError:
                if attempt + 1 < PORT_ATTEMPTS and server.proc.poll() is not None \
                        and lost_port_race(server.output()):
                    continue
                raise
        raise AssertionError("unreachable")

    @staticmethod
    def _wait_healthy(server: OgxServer, cmd: list[str],
                      cert: tuple[str, str] | None = None) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if server.proc.poll() is not None:
                raise AssertionError(
                    f"ogx exited with status {server.proc.returncode} before becoming healthy\n"
                    f"command: {' '.join(cmd)}\noutput:\n{server.output()}")
            try:
                if server.get("/v1/health", timeout=2, cert=cert).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                output = server.output()
                server.stop()
                raise AssertionError(
                    f"ogx did not answer 200 on /v1/health within {STARTUP_TIMEOUT:.0f}s\n"
                    f"command: {' '.join(cmd)}\noutput:\n{output}")
            time.sleep(0.1)

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()


# -- clients -------------------------------------------------------------------------------

def openai_client(url: str, **kwargs) -> OpenAI:
    """The client a user points at ogx."""
    options = dict(base_url=f"{url}/v1", api_key="ogx", max_retries=0, timeout=30)
    options.update(kwargs)
    return OpenAI(**options)


def sse_events(response: requests.Response) -> Iterator[str]:
    """The `data:` payloads of a server-sent-event stream, in order."""
    data: list[str] = []
    for line in response.iter_lines(decode_unicode=True):
        if line == "":
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    if data:
        yield "\n".join(data)


def error_message_of(response: requests.Response) -> str:
    """The `error.message` of an OpenAI error body (fails if the body has another shape)."""
    body = response.json()
    assert isinstance(body.get("error"), dict), f"not an OpenAI error body: {body}"
    message = body["error"].get("message")
    assert isinstance(message, str) and message, f"error body without a message: {body}"
    return message


def plugin_serving(provider_type: str, listing: str) -> str | None:
    """The `.wasm` (as printed) that serves `provider_type` in an `ogx plugins list` output: the
    file named on the same line, or on the closest line above."""
    current: str | None = None
    for line in listing.splitlines():
        files = re.findall(r"[^\s'\"`:()\[\]]+\.wasm", line)
        if files:
            current = files[0]
        if current and re.search(rf"(?<![\w:]){re.escape(provider_type)}(?![\w:-])", line):
            return current
    return None


def plugin_file_for(provider_type: str, home: Path, plugins_dir: Path = PLUGINS_DIR) -> Path | None:
    """The `.wasm` in `plugins_dir` that serves `provider_type`, according to `ogx plugins list`."""
    result = run_ogx(["plugins", "list", "--plugins-dir", plugins_dir], home, plugins_dir=None)
    printed = plugin_serving(provider_type, result.output)
    if printed is None:
        return None
    path = Path(printed)
    return path if path.is_absolute() else plugins_dir / path.name
