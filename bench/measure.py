"""What bench/run.py measures with: the targets a load goes to, the processes it starts and
stops, their CPU time and RSS from /proc, one `oha` load and its summary, the time to a
stream's first event, and the check that a target answers before it is measured.

Standard library only. `Processes` stops (SIGTERM, then SIGKILL) every child it started; a
failed check raises RuntimeError with the status and the start of the body."""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from paths import BenchPath, Request

# Seconds a server has to answer its first 200; OGX_BENCH_STARTUP_TIMEOUT raises it (an
# unoptimised ogx compiles its plugins slowly on a busy machine).
STARTUP_TIMEOUT_S = float(os.environ.get("OGX_BENCH_STARTUP_TIMEOUT", "60"))
RSS_SAMPLE_INTERVAL_S = 0.05
# SIGTERM, then SIGKILL after this long.
STOP_TIMEOUT_S = 15.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Target kinds.
UPSTREAM, FLOOR, OGX, PEER = "upstream", "floor", "ogx", "peer"


@dataclass(frozen=True)
class Target:
    """What one load goes to: a server (by key), the request and model it is sent, and where its
    row goes: its kind, its path (None for the upstream and the floor, which serve every path
    with the same floor request) and the floor request (its key) it is compared with. `name`
    is unique in a run; `label` is what the tables call it beside its path."""
    name: str
    label: str
    server: str
    kind: str
    request: Request
    model: str
    floor: str
    path: BenchPath | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def request_label(self) -> str:
        return self.request.label

    def body(self) -> str:
        return self.request.json(self.model)

    def all_headers(self) -> tuple[tuple[str, str], ...]:
        return self.request.headers + self.headers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Every child started, stopped (SIGTERM, then SIGKILL) by `stop` or `stop_all`. A child
    started with `group=True` leads its own process group (a Python server may fork workers):
    the signals go to the whole group, and whatever is left of it is killed."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []
        self.groups: set[int] = set()

    def start(self, argv: list[str], group: bool = False, **kwargs) -> subprocess.Popen:
        child = subprocess.Popen(argv, start_new_session=group, **kwargs)
        self.children.append(child)
        if group:
            self.groups.add(child.pid)
        return child

    def stop(self, child: subprocess.Popen) -> None:
        group = child.pid in self.groups
        if child.poll() is None:
            self._signal(child, signal.SIGTERM, group)
            try:
                child.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._signal(child, signal.SIGKILL, group)
                child.wait()
        if group:
            self._signal(child, signal.SIGKILL, group)
            self.groups.discard(child.pid)
        if child in self.children:
            self.children.remove(child)

    @staticmethod
    def _signal(child: subprocess.Popen, sig: int, group: bool) -> None:
        try:
            if group:
                os.killpg(child.pid, sig)
            else:
                child.send_signal(sig)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for child in reversed(list(self.children)):
            self.stop(child)


def wait_for_200(url: str, deadline: float, child: subprocess.Popen | None = None,
                 headers: dict[str, str] | None = None) -> float:
    """Polls GET `url` until a 200; returns the time it came. Fails if `child` exits."""
    host, port, path = split_url(url)
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {child.returncode}")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", path, headers=headers or {})
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.001)
    raise RuntimeError(f"{url} did not answer 200 within {STARTUP_TIMEOUT_S}s")


def split_url(url: str) -> tuple[str, int, str]:
    rest = url.removeprefix("http://")
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    return host, int(port), "/" + path


def stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def read_proc(pid: int) -> tuple[float, int]:
    """(CPU seconds user+system, RSS KiB) of `pid`; zeros when it is gone."""
    try:
        fields = stat_fields(pid)
        rss = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK, rss


def group_pids(pgid: int) -> list[int]:
    """The processes in process group `pgid` (from /proc)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = stat_fields(entry)
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


@dataclass
class Server:
    """A server loads go to. With `process`, its CPU time and RSS are measured: of that process,
    or with `group`, summed over its process group (a peer's workers)."""
    url: str
    process: subprocess.Popen | None = None
    group: bool = False

    def pids(self) -> list[int]:
        if self.process is None:
            return []
        return group_pids(self.process.pid) if self.group else [self.process.pid]

    def usage(self) -> tuple[float, int]:
        """(CPU seconds, RSS KiB) summed over its processes."""
        samples = [read_proc(pid) for pid in self.pids()]
        return sum(s[0] for s in samples), sum(s[1] for s in samples)


class RssSampler:
    """The largest RSS of `server` while in the `with` block."""

    def __init__(self, server: Server) -> None:
        self.server, self.peak_kib = server, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.server.usage()[1])
            self._stop.wait(RSS_SAMPLE_INTERVAL_S)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, self.server.usage()[1])


@dataclass
class Load:
    """One oha run's result."""
    qps: float
    error_rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    cpu_us_per_request: float | None = None
    peak_rss_mib: float | None = None


def run_oha(oha: Path, url: str, target: Target, *, rate: int | None, connections: int,
            seconds: float | None = None, requests: int | None = None) -> dict:
    argv = [str(oha), "--no-tui", "--output-format", "json", "-m", "POST",
            "-H", "Content-Type: application/json", "-d", target.body(), "-c", str(connections)]
    for name, value in target.all_headers():
        argv += ["-H", f"{name}: {value}"]
    if seconds is not None:
        argv += ["-z", f"{seconds}s", "-w"]
    if requests is not None:
        argv += ["-n", str(requests)]
    if rate is not None:
        argv += ["-q", str(rate), "--latency-correction"]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"oha failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)


def summarize(report: dict) -> Load:
    summary = report["summary"]
    codes = {int(k): v for k, v in (report.get("statusCodeDistribution") or {}).items()}
    errors = sum((report.get("errorDistribution") or {}).values())
    total = sum(codes.values()) + errors
    bad = errors + sum(v for k, v in codes.items() if k != 200)
    pct = report.get("latencyPercentiles") or {}
    ms = lambda key: (pct.get(key) or 0.0) * 1000  # noqa: E731
    return Load(qps=summary.get("requestsPerSec") or 0.0,
                error_rate=(bad / total) if total else 1.0,
                p50_ms=ms("p50"), p90_ms=ms("p90"), p99_ms=ms("p99"),
                requests=sum(codes.values()))


def measured(oha: Path, target: Target, server: Server, **load) -> Load:
    url = server.url + target.request.route
    if server.process is None:
        return summarize(run_oha(oha, url, target, **load))
    cpu_before = server.usage()[0]
    with RssSampler(server) as rss:
        result = summarize(run_oha(oha, url, target, **load))
    cpu = server.usage()[0] - cpu_before
    if result.requests:
        result.cpu_us_per_request = cpu / result.requests * 1e6
    result.peak_rss_mib = rss.peak_kib / 1024
    return result


def first_event_ms(url: str, target: Target, count: int) -> list[float]:
    """Time from sending a streaming request to reading its first `data:` line, one at a
    time over one keep-alive connection; each stream is read to its end."""
    host, port, _ = split_url(url)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"Content-Type": "application/json", **dict(target.all_headers())}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", target.request.route, body=target.body(), headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"stream through {url}: HTTP {response.status}")
        while not response.readline().startswith(b"data:"):
            pass
        times.append((time.perf_counter() - started) * 1000)
        response.read()
    conn.close()
    return times


def check_request(url: str, target: Target) -> None:
    """One request through `target`, its answer read to the end; fails unless it is a 200."""
    host, port, _ = split_url(url)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", target.request.route, body=target.body(),
                     headers={"Content-Type": "application/json", **dict(target.all_headers())})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"POST {target.request.route} as {target.model!r}: HTTP "
                           f"{response.status}: {body[:300].decode(errors='replace')}")
