#!/usr/bin/env python3
"""Claude Code through ogx, for the end-to-end test (test_claude_code.py): where the pinned
npm package is installed, the environment that makes it run offline and non-interactively, and
a driver that runs one session inside a private network namespace.

The driver is meant to run as `unshare --net -- python3 tests/claude_code.py --workdir DIR`
(as root): in the new namespace only `lo` exists, so the mock upstream, ogx and Claude Code all
run on 127.0.0.1 and nothing else can be reached. It brings `lo` up, starts `mock_openai.py`
scripted to call Claude Code's `Read` tool on a file and then answer with what it read, starts
`ogx` with the Messages API in front of it, runs `claude -p` against ogx, and prints one JSON
object: Claude Code's exit code and JSON result, the chat requests the upstream received,
and whether anything outside loopback answered.

Environment given to Claude Code (see `environment`):
  ANTHROPIC_BASE_URL         ogx (`http://127.0.0.1:<port>`)
  ANTHROPIC_API_KEY          a dummy key (ogx has no auth; Claude Code needs one to start)
  ANTHROPIC_MODEL, ANTHROPIC_SMALL_FAST_MODEL, ANTHROPIC_DEFAULT_{HAIKU,SONNET,OPUS}_MODEL
                             the ogx model id, for the main loop and the side calls alike
  CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1, DISABLE_AUTOUPDATER=1, DISABLE_TELEMETRY=1,
  DISABLE_ERROR_REPORTING=1, DISABLE_BUG_COMMAND=1, DISABLE_NON_ESSENTIAL_MODEL_CALLS=1
                             no update checks, telemetry, error reports or optional model calls
  HOME, CLAUDE_CONFIG_DIR    a fresh folder, so no user settings or credentials are read
and the flags `-p PROMPT --output-format json --allowedTools Read --max-turns 4`: print mode is
non-interactive, and `--allowedTools` grants the one tool the script calls without a prompt
(`--dangerously-skip-permissions` is refused when running as root).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# Keep in step with CLAUDE_CODE_VERSION in scripts/setup.sh.
VERSION = "2.1.332"
SECRET = "PAPAYA-7319"
MODEL = "vllm/my-model"
PROMPT = "Read the file notes.txt in the current directory and tell me the secret word in it."
RUN_TIMEOUT_SECONDS = 300



def install_dir() -> Path:
    """Where scripts/setup.sh installs the pinned Claude Code (OGX_CLAUDE_CODE_DIR moves it)."""
    if os.environ.get("OGX_CLAUDE_CODE_DIR"):
        return Path(os.environ["OGX_CLAUDE_CODE_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ogx-tests" / f"claude-code-{VERSION}"


def binary() -> Path | None:
    path = install_dir() / "node_modules" / ".bin" / "claude"
    return path if path.exists() else None


def environment(base_url: str, home: Path) -> dict[str, str]:
    """Claude Code's environment: only what it needs (PATH for node), nothing from the shell."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "CLAUDE_CONFIG_DIR": str(home / ".claude"), "ANTHROPIC_BASE_URL": base_url,
           "ANTHROPIC_API_KEY": "sk-ant-offline-test", "TERM": "dumb"}
    for name in ("ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL",
                 "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL"):
        env[name] = MODEL
    for name in ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_AUTOUPDATER",
                 "DISABLE_TELEMETRY", "DISABLE_ERROR_REPORTING", "DISABLE_BUG_COMMAND",
                 "DISABLE_NON_ESSENTIAL_MODEL_CALLS"):
        env[name] = "1"
    return env


def main_loop(request: dict) -> bool:
    """A request of Claude Code's agent loop (it offers the Read tool), not a side call."""
    return any((tool.get("function") or {}).get("name") == "Read"
               for tool in request.get("tools") or [])


def answers_the_read(request: dict) -> bool:
    return main_loop(request) and any(m.get("role") == "tool" for m in request["messages"])


def outside_reachable() -> bool:
    """Whether a connection to an address outside loopback gets anywhere."""
    try:
        with socket.create_connection(("192.0.2.1", 80), timeout=2):
            return True
    except OSError:
        return False


def run(workdir: Path) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from mock_openai import MockOpenAI
    from ogx_harness import MESSAGES_PROVIDER, OgxLauncher, vllm_config
    from scripted_turns import Turn

    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    project = workdir / "project"
    project.mkdir(parents=True)
    notes = project / "notes.txt"
    notes.write_text(f"Shopping list: apples.\nThe secret word is {SECRET}.\n")
    home = workdir / "home"
    home.mkdir()
    launcher = OgxLauncher(workdir / "ogx", Path(tempfile.mkdtemp(dir=workdir)))
    with MockOpenAI() as mock:
        mock.script(Turn(content="I will read the file.",
                         tool_calls=[("Read", {"file_path": str(notes)})], when=main_loop),
                    Turn(content=f"The secret word is {SECRET}.", when=answers_the_read))
        try:
            # The mock speaks chat completions only: the Messages API is served by translation.
            config = vllm_config(mock.base_url, distro_name="claude-code-e2e",
                                 apis=("inference", "models", "messages"),
                                 extra_provider_config={"native_messages": False},
                                 more_providers=MESSAGES_PROVIDER)
            server = launcher.start(config)
            claude = subprocess.run(
                [str(binary()), "-p", PROMPT, "--output-format", "json", "--model", MODEL,
                 "--allowedTools", "Read", "--max-turns", "4"],
                cwd=project, env=environment(server.url, home), capture_output=True, text=True,
                timeout=RUN_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
            ogx_output = server.output()
        finally:
            launcher.stop_all()
        chats = [r.json for r in mock.requests_to("/v1/chat/completions")]
    try:
        result = json.loads(claude.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        result = None
    return {"returncode": claude.returncode, "result": result, "stdout": claude.stdout[-4000:],
            "stderr": claude.stderr[-4000:], "chat_requests": chats, "notes": str(notes),
            "secret": SECRET, "model": MODEL, "outside_reachable": outside_reachable(),
            "ogx_output": ogx_output[-6000:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.workdir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
