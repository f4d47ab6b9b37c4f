"""Claude Code itself through ogx: `claude -p` with ANTHROPIC_BASE_URL pointing at ogx, which
translates its Messages requests to the mock OpenAI-compatible upstream. The upstream is
scripted to call Claude Code's `Read` tool on a file; Claude Code runs it and sends the result
back; the upstream answers with the secret word it read. Everything runs in a private network
namespace (claude_code.py) where only 127.0.0.1 exists.

Needs root (for `unshare --net`) and the pinned Claude Code from `scripts/setup.sh
claude-code`; skipped without either, except under CI, where a missing install fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import claude_code

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="needs root: Claude Code runs in a private network namespace (unshare --net)")


@pytest.fixture(scope="module")
def claude_binary() -> Path:
    found = claude_code.binary()
    if found is None:
        message = (f"Claude Code {claude_code.VERSION} is not installed in "
                   f"{claude_code.install_dir()}: run `bash scripts/setup.sh claude-code`")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs util-linux's unshare and iproute2's ip")
    return found


def test_claude_code_answers_through_ogx_with_a_tool_round_trip(claude_binary, tmp_path):
    driver = subprocess.run(
        ["unshare", "--net", "--", sys.executable, str(Path(claude_code.__file__)),
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=claude_code.RUN_TIMEOUT_SECONDS + 60,
        stdin=subprocess.DEVNULL)
    assert driver.returncode == 0, driver.stderr[-4000:]
    run = json.loads(driver.stdout.strip().splitlines()[-1])
    context = json.dumps({k: run[k] for k in ("stdout", "stderr", "ogx_output")}, indent=1)
    assert run["outside_reachable"] is False
    assert run["returncode"] == 0, context
    result = run["result"]
    assert result["type"] == "result" and result["subtype"] == "success", context
    assert result["is_error"] is False
    assert run["secret"] in result["result"]
    assert result["num_turns"] >= 2
    assert run["model"] in result["modelUsage"], result["modelUsage"]

    chats = run["chat_requests"]
    loop = [c for c in chats if claude_code.main_loop(c)]
    assert len(loop) >= 2, [c.get("messages", [])[-1:] for c in chats]
    first, answered = loop[0], [c for c in loop if claude_code.answers_the_read(c)][0]
    # Claude Code's system blocks arrive as the system message, its tools as functions.
    assert first["messages"][0]["role"] == "system" and first["messages"][0]["content"]
    assert first["model"] == "upstream-model"
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    # Claude Code asks for adaptive thinking with `output_config.effort`.
    assert first["reasoning_effort"] in ("low", "medium", "high")
    names = {tool["function"]["name"] for tool in first["tools"]}
    assert {"Read", "Bash", "Edit"} <= names
    # The tool round trip: the assistant's call, then Claude Code's result in a tool message.
    calls = [m for m in answered["messages"] if m.get("tool_calls")]
    [call] = calls[-1]["tool_calls"]
    assert call["function"]["name"] == "Read"
    assert json.loads(call["function"]["arguments"]) == {"file_path": run["notes"]}
    [tool] = [m for m in answered["messages"] if m.get("role") == "tool"]
    assert tool["tool_call_id"] == call["id"]
    assert run["secret"] in tool["content"]
