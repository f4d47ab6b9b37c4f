"""Runs OGX 1.5.0's own integration tests, unmodified, over HTTP against the real `ogx`.

    .venv/bin/python tests/ogx_suite/run.py [-k EXPR] [--group NAME] [PYTEST_ARG...]

1. Python >= 3.12 for OGX's tests (its `requires-python`): $OGX_SUITE_PYTHON, `python3.12` or
   `python3.13` on PATH, pyenv's ~/.pyenv/versions/3.12.* (then later ones), `uv python
   find/install 3.12`; else it stops, saying what to install.
2. A virtualenv of that Python with tests/ogx_suite/requirements.txt (OGX 1.5.0, its client,
   and the test dependencies the selected tests import), in the cache, reused while the
   requirements and the Python are the same.
3. OGX 1.5.0's sdist from PyPI (`pip download --no-deps --no-binary :all: ogx==1.5.0`, checked
   against SDIST_SHA256), unpacked in the cache: its tests/ and their recordings.
4. The recorded upstream (recorded_upstream.py) on 127.0.0.1, answering with OGX's recordings,
   and `ogx run` with tests/ogx_suite/config.yaml (OGX_BIN, OGX_PLUGINS_DIR as for the e2e
   tests), in a fresh state folder.
5. pytest in the sdist, once per group of selection.GROUPS, with
   `--stack-config=http://127.0.0.1:PORT --inference-mode=live` and the group's models;
   ogx_suite_plugin.py deselects and marks what selection.py lists.
6. A summary per test file (passed / failed / xfailed / skipped / deselected), each failure
   and expected failure with its reason, and one last line with the totals. Exit status 0
   only when no test failed or errored and some test passed.

Cache: $OGX_SUITE_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/ogx-tests (also ogx's compiled
plugins, OGX_PLUGIN_CACHE_DIR, so only the first start compiles them). Everything it starts
(the upstream, ogx) is stopped at the end, also on failure or Ctrl-C.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
# A cold plugin cache compiles every plugin in the debug build: minutes on a loaded machine.
os.environ.setdefault("OGX_TEST_STARTUP_TIMEOUT", "600")

from ogx_harness import OgxLauncher, require_binary  # noqa: E402
from recorded_upstream import RecordedUpstream, RecordingIndex  # noqa: E402
from selection import DESELECTED, GROUPS, KNOWN_GAPS, RECORDED_MODELS  # noqa: E402

OGX_VERSION = "1.5.0"
# sha256 of ogx-1.5.0.tar.gz as published on PyPI.
SDIST_SHA256 = "fd218259c926857e6fd91025b53cc724faa78fcba5dcfc2aa1a1e420d1ded2e3"
MIN_PYTHON = (3, 12)
REQUIREMENTS = HERE / "requirements.txt"
PIP_TIMEOUT = 1800  # seconds for one pip command: a cold venv downloads about 300 MB
RECORDING_DIRS = ("inference", "messages", "responses", "common")
OUTCOMES = ("passed", "failed", "error", "xfailed", "xpassed", "skipped", "deselected")


def say(message: str) -> None:
    print(f"==> ogx-suite: {message}", flush=True)


def die(message: str) -> None:
    print(f"ogx-suite: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def cache_dir() -> Path:
    base = os.environ.get("OGX_SUITE_CACHE")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "ogx-tests"


# ---------------------------------------------------------------- Python ----------------------

def python_version(candidate: str) -> tuple[int, int] | None:
    """(major, minor) of a Python that runs and has venv and ensurepip, else None."""
    try:
        out = subprocess.run(
            [candidate, "-c", "import sys, venv, ensurepip; print(*sys.version_info[:2])"],
            capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python(cache: Path) -> str:
    candidates: list[str] = []
    if os.environ.get("OGX_SUITE_PYTHON"):
        candidates.append(os.environ["OGX_SUITE_PYTHON"])
    # 3.12 first: the version OGX's own CI runs its tests with.
    candidates += [p for p in (shutil.which("python3.12"), shutil.which("python3.13")) if p]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    candidates += sorted(glob.glob(str(pyenv / "3.1[2-9].*/bin/python")))
    for candidate in candidates:
        version = python_version(candidate)
        if version and version >= MIN_PYTHON:
            return candidate
    uv = shutil.which("uv")
    if uv:
        uv_dir = cache / "uv-python"
        env = {**os.environ, "UV_PYTHON_INSTALL_DIR": str(uv_dir)}
        for args in (["python", "find", "3.12"], ["python", "install", "3.12"]):
            if args[1] == "install":
                say(f"installing Python 3.12 with uv into {uv_dir}")
                subprocess.run([uv, *args], env=env, timeout=PIP_TIMEOUT)
                args = ["python", "find", "3.12"]
            found = subprocess.run([uv, *args], env=env, capture_output=True, text=True)
            path = found.stdout.strip()
            if found.returncode == 0 and path and (python_version(path) or (0, 0)) >= MIN_PYTHON:
                return path
    die("OGX 1.5.0's tests need Python >= 3.12 and none was found (looked at "
        "$OGX_SUITE_PYTHON, python3.13/python3.12 on PATH, ~/.pyenv/versions/3.12.*, uv). "
        "Install one: `apt-get install python3.12 python3.12-venv` where Debian has it, "
        "`pyenv install 3.12`, or uv (`pip install uv`; the runner then runs "
        "`uv python install 3.12`), or point OGX_SUITE_PYTHON at one.")
    raise AssertionError("unreachable")


def suite_venv(cache: Path, python: str) -> Path:
    """The cached virtualenv with the requirements, (re)built when they or the Python changed."""
    version = ".".join(map(str, python_version(python) or ()))
    venv = cache / f"venv-py{version}"
    wanted = f"{Path(python).resolve()}\n{REQUIREMENTS.read_text()}"
    stamp = venv / ".ogx-suite-requirements"
    if stamp.is_file() and stamp.read_text() == wanted and (venv / "bin" / "python").is_file():
        say(f"virtualenv {venv}: up to date")
        return venv
    if python_version(str(venv / "bin" / "python")) is None:
        say(f"virtualenv {venv} with Python {version} (installing takes a few minutes, once)")
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    else:
        say(f"virtualenv {venv}: installing the changed {REQUIREMENTS.name}")
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
                   check=True, timeout=PIP_TIMEOUT)
    stamp.write_text(wanted)
    return venv


# ---------------------------------------------------------------- OGX's sdist -----------------

def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ogx_sdist(cache: Path, venv: Path) -> Path:
    """OGX's sdist unpacked (the folder holding its tests/), downloaded once and checked."""
    root = cache / f"ogx-{OGX_VERSION}"
    marker = root / ".ogx-suite-sha256"
    if marker.is_file() and marker.read_text() == SDIST_SHA256:
        say(f"OGX {OGX_VERSION} sources: {root}")
        return root
    downloads = cache / "sdist"
    archive = downloads / f"ogx-{OGX_VERSION}.tar.gz"
    if not archive.is_file() or sha256_of(archive) != SDIST_SHA256:
        say(f"pip download --no-deps --no-binary :all: ogx=={OGX_VERSION} (checked against its sha256)")
        downloads.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as req:
            req.write(f"ogx=={OGX_VERSION} --hash=sha256:{SDIST_SHA256}\n")
        try:
            subprocess.run([str(venv / "bin/python"), "-m", "pip", "download", "-q",
                            "--disable-pip-version-check", "--no-deps", "--no-binary", ":all:",
                            "--require-hashes", "-r", req.name, "-d", str(downloads)],
                           check=True, timeout=PIP_TIMEOUT)
        finally:
            os.unlink(req.name)
    actual = sha256_of(archive)
    if actual != SDIST_SHA256:
        die(f"{archive} has sha256 {actual}, not OGX {OGX_VERSION}'s {SDIST_SHA256}: delete it and retry")
    if root.exists():
        shutil.rmtree(root)
    unpack = cache / f"ogx-{OGX_VERSION}.unpacking"
    shutil.rmtree(unpack, ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(unpack, filter="data")
    (unpack / f"ogx-{OGX_VERSION}").rename(root)
    unpack.rmdir()
    marker.write_text(SDIST_SHA256)
    say(f"OGX {OGX_VERSION} sources unpacked in {root}")
    return root


# ---------------------------------------------------------------- the run ---------------------

def run_group(group, sdist: Path, venv: Path, ogx_url: str, work: Path,
              extra: list[str]) -> dict:
    report = work / f"report-{group.name}.json"
    paths = [p for p in group.paths if (sdist / p).exists()]
    cmd = [str(venv / "bin/python"), "-m", "pytest", *paths, f"--stack-config={ogx_url}",
           "--inference-mode=live", *group.options, "-p", "ogx_suite_plugin",
           "-p", "no:cacheprovider", "-o", "addopts=", "-rfEX", "-q", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OGX_", "LLAMA_STACK_"))}
    env.update(PYTHONPATH=str(HERE), OGX_SUITE_REPORT=str(report),
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               SQLITE_STORE_DIR=str(work / "client-state"), OGX_TEST_LOG_STDERR="0")
    say(f"group {group.name}: pytest {' '.join(paths)} {' '.join(group.options)}")
    started = time.monotonic()
    rc = subprocess.run(cmd, cwd=sdist, env=env).returncode
    say(f"group {group.name}: pytest exit status {rc} in {time.monotonic() - started:.0f}s")
    data = json.loads(report.read_text()) if report.is_file() else {"results": {}, "deselected": {}}
    data["rc"] = rc
    return data


def file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].removeprefix("tests/integration/")


def summarize(reports: list[dict], elapsed: float) -> int:
    per_file: dict[str, Counter] = defaultdict(Counter)
    notes: list[str] = []
    for report in reports:
        for nodeid, result in report["results"].items():
            per_file[file_of(nodeid)][result["outcome"]] += 1
            if result["outcome"] in ("failed", "error", "xfailed", "xpassed"):
                notes.append(f"{result['outcome'].upper():8} {nodeid.removeprefix('tests/integration/')}"
                             f"\n           {result['message']}")
        for nodeid in report["deselected"]:
            per_file[file_of(nodeid)]["deselected"] += 1
    print("\n==> ogx-suite: OGX 1.5.0 integration tests against ogx, per file")
    header = f"{'file':58} " + " ".join(f"{o[:6]:>6}" for o in OUTCOMES)
    print(header)
    totals: Counter = Counter()
    for name in sorted(per_file):
        counts = per_file[name]
        totals.update(counts)
        print(f"{name:58} " + " ".join(f"{counts[o]:6}" for o in OUTCOMES))
    print(f"{'total':58} " + " ".join(f"{totals[o]:6}" for o in OUTCOMES))
    if notes:
        print("\n==> ogx-suite: failures and expected failures")
        print("\n".join(notes))
    bad = totals["failed"] + totals["error"] + totals["xpassed"]
    broken = [r["rc"] for r in reports if r["rc"] not in (0, 1)]
    ok = bad == 0 and totals["passed"] > 0 and not broken
    summary = ", ".join(f"{totals[o]} {o}" for o in OUTCOMES if totals[o])
    verdict = "OK" if ok else "FAILED"
    if broken:
        summary += f"; pytest exit status {broken} (not a test failure: see above)"
    print(f"\nogx-suite {verdict}: OGX {OGX_VERSION} integration tests: {summary or 'nothing ran'} "
          f"in {elapsed:.0f}s")
    # The plain closing line CI reads (failures: failed, errors and unexpected passes).
    print(f"ogx-suite: {totals['passed']} passed, {bad} failed, {totals['skipped']} skipped")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description="OGX 1.5.0's integration tests against ogx")
    parser.add_argument("--group", action="append", choices=[g.name for g in GROUPS],
                        help="run only this group (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the state folder (logs, databases)")
    args, extra = parser.parse_known_args()
    started = time.monotonic()
    require_binary()
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    python = find_python(cache)
    say(f"Python for OGX's tests: {python}")
    venv = suite_venv(cache, python)
    sdist = ogx_sdist(cache, venv)
    groups = [g for g in GROUPS if not args.group or g.name in args.group]
    say(f"{len(DESELECTED)} deselection entries, {len(KNOWN_GAPS)} known-gap entries (selection.py)")

    work = Path(tempfile.mkdtemp(prefix="ogx-suite-"))
    index = RecordingIndex.load([sdist / "tests/integration" / d for d in RECORDING_DIRS],
                                set(RECORDED_MODELS))
    upstream = RecordedUpstream(index).start()
    say(f"recorded upstream on {upstream.url}: {index.files} recordings of {', '.join(RECORDED_MODELS)}")
    launcher = OgxLauncher(work, work / "home")
    (work / "home").mkdir()
    (work / "state").mkdir()
    reports = []
    try:
        server = launcher.start((HERE / "config.yaml").read_text(), add_storage=False,
                                env={"OGX_SUITE_UPSTREAM": upstream.url,
                                     "OGX_SUITE_STATE": str(work / "state"),
                                     # compiled plugins, keyed by the wasm's sha256: reused
                                     "OGX_PLUGIN_CACHE_DIR": str(cache / "plugin-cache")})
        say(f"ogx serving on {server.url} (log: {server.log_path})")
        for group in groups:
            reports.append(run_group(group, sdist, venv, server.url, work, extra))
        if upstream.unmatched:
            say(f"{len(upstream.unmatched)} upstream requests had no recording:")
            for line in upstream.unmatched:
                print(f"    {line[:400]}")
    finally:
        launcher.stop_all()
        upstream.stop()
        if args.keep:
            say(f"state kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return summarize(reports, time.monotonic() - started)


if __name__ == "__main__":
    sys.exit(main())
