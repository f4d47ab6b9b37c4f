"""The load benchmark behind `scripts/bench.sh`: ogx's added latency, throughput, CPU and memory
against a fast upstream (the floor), measured in the same rounds.

Starts `ogx-bench-upstream` and `ogx` (release) on 127.0.0.1 with two providers in front of
it: `vllm` (the OpenAI-compatible plugin) and `bedrock` (the Bedrock plugin, SigV4 with static
keys, the upstream reached through AWS_ENDPOINT_URL_BEDROCK_RUNTIME). Then, per round, for each
rate and for saturation, runs `oha` against each target in turn (upstream, ogx→vllm,
ogx→bedrock), so the floor and ogx see the same machine conditions. Prints one table of
medians over the rounds. Also: one-at-a-time latency, streaming time to the first event,
start-up time to the first 200 on /v1/models (cold and warm plugin cache), idle and peak RSS,
CPU time of the ogx process per request (from /proc).

With `--peer-ogx` / `--peer-litellm` (scripts/bench.sh --peers installs them), OGX (Python) and
the LiteLLM proxy are started in each round against the same upstream (see bench/peers.py) and
measured in the same rounds, interleaved with the other targets: one at a time, at the rates up
to `--peer-max-rate` (past their saturation a fixed rate only queues) and at saturation. Their start-up
time, idle RSS and CPU per request are measured too (their whole process group), and the table
gives ogx's saturation over theirs.

Standard library only. Every process it starts is stopped on exit, also on Ctrl-C or an error.
Paths come from the environment scripts/bench.sh sets (see `Paths`)."""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import peers
from peers import SQLITE_STORAGE, UPSTREAM_MODEL, VLLM_PROVIDER, PeerSpec

DEFAULT_RATES = (100, 500, 1000, 2000, 5000)
DEFAULT_ROUNDS = 3
DEFAULT_SECONDS = 10.0
QUICK_SECONDS = 3.0
# Connections oha keeps open for the fixed-rate runs: enough that a slow answer never holds
# back the schedule (oha's --latency-correction counts the wait from the scheduled time).
FIXED_RATE_CONNECTIONS = 64
SATURATION_CONNECTIONS = 256
SERIAL_REQUESTS = 2000
TTFB_REQUESTS = 300
STARTUP_TIMEOUT_S = 60.0
RSS_SAMPLE_INTERVAL_S = 0.05
# After the first 200, before idle RSS is read.
IDLE_SETTLE_S = 0.5
# SIGTERM, then SIGKILL after this long.
STOP_TIMEOUT_S = 15.0
# Peers (Python servers, a few hundred requests/s at best): the highest fixed rate they are run
# at, one-at-a-time requests and warm-up requests per round.
PEER_MAX_RATE = 500
PEER_SERIAL_REQUESTS = 300
PEER_WARMUP_REQUESTS = 100
# The warm-up before each round's loads.
WARMUP_REQUESTS = 500
WARMUP_CONNECTIONS = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")

CHAT_BODY = {"messages": [{"role": "user", "content": "What is the answer?"}],
             "max_tokens": 16}


@dataclass(frozen=True)
class Target:
    """What one load goes to: a server (by key) and the model and headers each request sends."""
    name: str
    server: str
    model: str
    headers: tuple[tuple[str, str], ...] = ()
    peer: bool = False


FLOOR = "upstream"
OGX_TARGETS = (Target("ogx vllm", "ogx", f"vllm/{UPSTREAM_MODEL}"),
               Target("ogx bedrock", "ogx", f"bedrock/{UPSTREAM_MODEL}"))
BASE_TARGETS = (Target(FLOOR, "upstream", UPSTREAM_MODEL),) + OGX_TARGETS

CONFIG = """\
version: 2
distro_name: ogx-bench
apis: [inference, models]
providers:
  inference:
""" + VLLM_PROVIDER + """\
    - provider_id: bedrock
      provider_type: remote::bedrock
      config:
        region_name: us-west-2
        aws_access_key_id: AKIAOGXBENCHMARK0001
        aws_secret_access_key: bench/secret/key/not/checked
""" + SQLITE_STORAGE + """\
registered_resources:
  models:
    - {{model_id: {model}, provider_id: vllm, provider_model_id: {model}, model_type: llm}}
    - {{model_id: {model}, provider_id: bedrock, provider_model_id: {model}, model_type: llm}}
"""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Paths:
    ogx: Path
    plugins: Path
    upstream: Path
    oha: Path

    @staticmethod
    def from_env() -> "Paths":
        try:
            return Paths(Path(os.environ["OGX_BENCH_OGX"]), Path(os.environ["OGX_BENCH_PLUGINS"]),
                         Path(os.environ["OGX_BENCH_UPSTREAM"]), Path(os.environ["OGX_BENCH_OHA"]))
        except KeyError as e:
            sys.exit(f"bench/run.py: {e.args[0]} is not set; run it through scripts/bench.sh")


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


def check_chat(url: str, target: Target) -> None:
    """One non-streaming chat completion through `target`; fails unless it is a 200."""
    host, port, _ = split_url(url)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions",
                     body=json.dumps({"model": target.model, **CHAT_BODY}),
                     headers={"Content-Type": "application/json", **dict(target.headers)})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"POST /v1/chat/completions as {target.model!r}: HTTP "
                           f"{response.status}: {body[:300].decode(errors='replace')}")


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
    body = json.dumps({"model": target.model, **CHAT_BODY})
    argv = [str(oha), "--no-tui", "--output-format", "json", "-m", "POST",
            "-H", "Content-Type: application/json", "-d", body, "-c", str(connections)]
    for name, value in target.headers:
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
    url = server.url + "/v1/chat/completions"
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


def stream_first_event_ms(url: str, model: str, count: int) -> list[float]:
    """Time from sending a streaming request to reading its first `data:` line, one at a
    time over one keep-alive connection; each stream is read to its end."""
    host, port, _ = split_url(url)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    body = json.dumps({"model": model, "stream": True, **CHAT_BODY})
    headers = {"Content-Type": "application/json"}
    times = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            raise RuntimeError(f"stream through {url}: HTTP {response.status}")
        while not response.readline().startswith(b"data:"):
            pass
        times.append((time.perf_counter() - started) * 1000)
        response.read()
    conn.close()
    return times


@dataclass
class Startup:
    cold_ms: float
    warm_ms: float
    idle_rss_mib: float


@dataclass
class PeerStartup:
    """A peer's start to the first 200 on /v1/models, and its RSS idle just after."""
    ms: float
    idle_rss_mib: float


@dataclass
class Results:
    loads: dict[tuple[str, str], list[Load]] = field(default_factory=dict)
    added: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    ttfb: dict[str, list[float]] = field(default_factory=dict)
    startups: list[Startup] = field(default_factory=list)
    peer_startups: dict[str, list[PeerStartup]] = field(default_factory=dict)
    # (ogx target, peer) -> ogx's saturation QPS over the peer's, one per round.
    saturation_ratios: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    # Lines printed under the table (peers skipped or failed).
    notes: list[str] = field(default_factory=list)

    def add(self, target: str, case: str, load: Load) -> None:
        self.loads.setdefault((target, case), []).append(load)


class Bench:
    def __init__(self, paths: Paths, args: argparse.Namespace) -> None:
        self.paths, self.args = paths, args
        self.procs = Processes()
        self.work = Path(tempfile.mkdtemp(prefix="ogx-bench-"))
        self.results = Results()
        self.peers: list[PeerSpec] = list(args.peers)

    def start_upstream(self) -> str:
        port = free_port()
        child = self.procs.start([str(self.paths.upstream), "--port", str(port)],
                                 stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_for_200(url + "/v1/models", time.monotonic() + STARTUP_TIMEOUT_S, child)
        return url

    def start_ogx(self, upstream: str, cache_dir: Path, state: Path) -> tuple[subprocess.Popen, str, float]:
        """Starts ogx; returns it, its URL and ms to the first 200 on /v1/models."""
        state.mkdir(parents=True, exist_ok=True)
        config = state / "config.yaml"
        config.write_text(CONFIG.format(upstream=upstream, state=state, model=UPSTREAM_MODEL))
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OGX_"))}
        env.update({"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": upstream,
                    "AWS_ENDPOINT_URL_BEDROCK": upstream,
                    "OGX_PLUGIN_CACHE_DIR": str(cache_dir),
                    "AWS_CONFIG_FILE": str(state / "no-aws-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(state / "no-aws-credentials"),
                    "RUST_LOG": "warn"})
        started = time.monotonic()
        log_file = state / "ogx.log"
        with open(log_file, "w") as stderr:
            child = self.procs.start([str(self.paths.ogx), "run", "--port", str(port),
                                      "--plugins-dir", str(self.paths.plugins), str(config)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        url = f"http://127.0.0.1:{port}"
        try:
            ready = wait_for_200(url + "/v1/models", started + STARTUP_TIMEOUT_S, child)
        except RuntimeError:
            sys.stderr.write(log_file.read_text()[-4000:])
            raise
        return child, url, (ready - started) * 1000

    def start_peer(self, spec: PeerSpec, upstream: str, state: Path) -> tuple[Target, Server]:
        """Starts a peer in its own process group, waits for its first 200 on /v1/models,
        reads its idle RSS, checks one chat completion; fails with its log's last lines."""
        port = free_port()
        launch = peers.launch(spec, upstream, port, state)
        target = Target(spec.name, spec.name, launch.model, tuple(launch.headers.items()),
                        peer=True)
        log_file = state / "server.log"
        started = time.monotonic()
        with open(log_file, "w") as out:
            child = self.procs.start(launch.argv, group=True, env=launch.env, cwd=state,
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT)
        server = Server(f"http://127.0.0.1:{port}", child, group=True)
        try:
            ready = wait_for_200(server.url + "/v1/models", started + STARTUP_TIMEOUT_S, child,
                                 launch.headers)
            time.sleep(IDLE_SETTLE_S)
            idle_kib = server.usage()[1]
            check_chat(server.url, target)
        except (RuntimeError, OSError) as e:
            self.procs.stop(child)
            last = log_file.read_text(errors="replace").strip().splitlines()[-15:]
            sys.stderr.write("\n".join(last) + "\n")
            said = f" (its log ends: {last[-1].strip()[:200]})" if last else ""
            raise RuntimeError(f"{e}{said}") from e
        self.results.peer_startups.setdefault(spec.name, []).append(
            PeerStartup((ready - started) * 1000, idle_kib / 1024))
        return target, server

    def start_peers(self, upstream: str, round_no: int) -> tuple[list[Target], dict[str, Server]]:
        """Starts every peer still in the run; one that fails is reported and left out."""
        targets, servers = [], {}
        for spec in list(self.peers):
            log(f"round {round_no}: starting {spec.name}")
            try:
                target, server = self.start_peer(spec, upstream,
                                                 self.work / f"{spec.kind}-{round_no}")
            except RuntimeError as e:
                log(f"  {e}; left out of the rest of the run")
                self.results.notes.append(f"{spec.name}: left out from round {round_no}: {e}")
                self.peers.remove(spec)
                continue
            startup = self.results.peer_startups[spec.name][-1]
            log(f"  first 200 after {startup.ms:.0f} ms, idle RSS {startup.idle_rss_mib:.1f} MiB")
            targets.append(target)
            servers[target.server] = server
        return targets, servers

    def measure_startup(self, upstream: str, round_no: int) -> Startup:
        cache = self.work / f"cache-{round_no}"
        cold_child, _, cold = self.start_ogx(upstream, cache, self.work / f"cold-{round_no}")
        self.procs.stop(cold_child)
        warm_child, _, warm = self.start_ogx(upstream, cache, self.work / f"warm-{round_no}")
        time.sleep(IDLE_SETTLE_S)
        idle = read_proc(warm_child.pid)[1] / 1024
        self.procs.stop(warm_child)
        return Startup(cold, warm, idle)

    def run(self) -> None:
        args = self.args
        log(f"work dir {self.work}")
        upstream = self.start_upstream()
        log(f"upstream on {upstream}")
        for round_no in range(1, args.rounds + 1):
            log(f"round {round_no}/{args.rounds}: start-up (cold and warm plugin cache)")
            startup = self.measure_startup(upstream, round_no)
            self.results.startups.append(startup)
            log(f"  cold {startup.cold_ms:.0f} ms, warm {startup.warm_ms:.0f} ms, "
                f"idle RSS {startup.idle_rss_mib:.1f} MiB")
            ogx, ogx_url, _ = self.start_ogx(upstream, self.work / "cache-load",
                                             self.work / f"load-{round_no}")
            peer_targets, servers = self.start_peers(upstream, round_no)
            servers.update({"upstream": Server(upstream), "ogx": Server(ogx_url, ogx)})
            targets = list(BASE_TARGETS) + peer_targets
            # Warm the connection pools and the allocator before measuring.
            for target in targets:
                requests = PEER_WARMUP_REQUESTS if target.peer else WARMUP_REQUESTS
                measured(self.paths.oha, target, servers[target.server], rate=None,
                         connections=WARMUP_CONNECTIONS, requests=requests)
            self.round(round_no, targets, servers)
            for server in servers.values():
                if server.process is not None:
                    self.procs.stop(server.process)

    def cases(self) -> list[tuple[str, int | None, dict]]:
        """(case, its fixed rate or None, oha's load) in the order they run."""
        args = self.args
        cases: list[tuple[str, int | None, dict]] = [
            ("serial", None, dict(rate=None, connections=1, requests=args.serial_requests))]
        cases += [(f"{rate}/s", rate, dict(rate=rate, connections=FIXED_RATE_CONNECTIONS,
                                           seconds=args.seconds)) for rate in args.rates]
        cases.append(("saturation", None, dict(rate=None, connections=SATURATION_CONNECTIONS,
                                               seconds=args.seconds)))
        return cases

    def round(self, round_no: int, targets: list[Target], servers: dict[str, Server]) -> None:
        args = self.args
        oha = self.paths.oha
        for case, rate, load in self.cases():
            floor = None
            results: dict[str, Load] = {}
            for target in targets:
                if target.peer and rate is not None and rate > args.peer_max_rate:
                    continue
                peer_load = dict(load)
                if target.peer and case == "serial":
                    peer_load["requests"] = min(load["requests"], PEER_SERIAL_REQUESTS)
                log(f"round {round_no}: {case:>10} -> {target.name}")
                try:
                    result = measured(oha, target, servers[target.server], **peer_load)
                except RuntimeError as e:
                    if not target.peer:
                        raise
                    log(f"  {e}")
                    self.results.notes.append(f"{target.name}, round {round_no}, {case}: {e}")
                    continue
                self.results.add(target.name, case, result)
                results[target.name] = result
                if target.name == FLOOR:
                    floor = result
                elif floor is not None:
                    self.results.added.setdefault((target.name, case), []).append(
                        (result.p50_ms - floor.p50_ms, result.p99_ms - floor.p99_ms))
            if case == "saturation":
                self.record_saturation_ratios(targets, results)
        log(f"round {round_no}: streaming time to the first event ({args.ttfb_requests} each)")
        floor = None
        for target in BASE_TARGETS:
            times = stream_first_event_ms(servers[target.server].url, target.model,
                                          args.ttfb_requests)
            p50 = statistics.median(times)
            if target.name == FLOOR:
                floor = p50
            else:
                self.results.ttfb.setdefault(target.name, []).append(p50 - floor)

    def record_saturation_ratios(self, targets: list[Target], results: dict[str, Load]) -> None:
        """ogx's saturation QPS over each peer's, from this round's saturation loads."""
        for peer in (t for t in targets if t.peer):
            theirs = results.get(peer.name)
            for ours in OGX_TARGETS:
                mine = results.get(ours.name)
                if theirs and mine and theirs.qps > 0:
                    self.results.saturation_ratios.setdefault((ours.name, peer.name), []).append(
                        mine.qps / theirs.qps)

    def cleanup(self) -> None:
        self.procs.stop_all()
        shutil.rmtree(self.work, ignore_errors=True)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec: str = ".2f", unit: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{unit}"


def print_table(results: Results, args: argparse.Namespace) -> None:
    rounds = args.rounds
    print()
    print(f"ogx benchmark: medians of {rounds} round(s), {args.seconds:g} s per load, "
          f"{os.cpu_count()} CPUs ({platform_note()})")
    print()
    print("| target | load | QPS | errors | p50 ms | p90 ms | p99 ms | added p50 ms | "
          "added p99 ms | CPU µs/req | peak RSS MiB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    cases = ["serial"] + [f"{r}/s" for r in args.rates] + ["saturation"]
    names = [t.name for t in BASE_TARGETS] + [p.name for p in args.peers]
    for case in cases:
        for target in names:
            loads = results.loads.get((target, case), [])
            if not loads:
                continue
            added = results.added.get((target, case), [])
            print(f"| {target} | {case} | {fmt(median(l.qps for l in loads), '.0f')} | "
                  f"{fmt(median(l.error_rate * 100 for l in loads), '.2f', '%')} | "
                  f"{fmt(median(l.p50_ms for l in loads), '.3f')} | "
                  f"{fmt(median(l.p90_ms for l in loads), '.3f')} | "
                  f"{fmt(median(l.p99_ms for l in loads), '.3f')} | "
                  f"{fmt(median(a[0] for a in added), '.3f')} | "
                  f"{fmt(median(a[1] for a in added), '.3f')} | "
                  f"{fmt(median(l.cpu_us_per_request for l in loads), '.0f')} | "
                  f"{fmt(median(l.peak_rss_mib for l in loads), '.1f')} |")
    print()
    s = results.startups
    print("| ogx | median |")
    print("| --- | ---: |")
    print(f"| start-up to first 200 on /v1/models, cold plugin cache | "
          f"{fmt(median(x.cold_ms for x in s), '.0f', ' ms')} |")
    print(f"| start-up to first 200 on /v1/models, warm plugin cache | "
          f"{fmt(median(x.warm_ms for x in s), '.0f', ' ms')} |")
    print(f"| idle RSS, both plugins loaded | {fmt(median(x.idle_rss_mib for x in s), '.1f', ' MiB')} |")
    for target, added in results.ttfb.items():
        print(f"| streaming: added time to the first event, {target} (p50) | "
              f"{fmt(median(added), '.3f', ' ms')} |")
    print()
    print_peers(results, args)


def print_peers(results: Results, args: argparse.Namespace) -> None:
    measured_peers = [p.name for p in args.peers if p.name in results.peer_startups]
    if measured_peers:
        print("| peers (median) | " + " | ".join(measured_peers) + " |")
        print("| --- |" + " ---: |" * len(measured_peers))
        rows = [("start-up to first 200 on /v1/models",
                 lambda p: fmt(median(x.ms for x in results.peer_startups[p]), '.0f', ' ms')),
                ("idle RSS", lambda p: fmt(median(x.idle_rss_mib for x in results.peer_startups[p]),
                                           '.1f', ' MiB'))]
        rows += [(f"saturation: {ours.name} ÷ this peer",
                  lambda p, o=ours.name: fmt(median(results.saturation_ratios.get((o, p), [])),
                                             '.1f', '×'))
                 for ours in OGX_TARGETS]
        for label, cell in rows:
            print(f"| {label} | " + " | ".join(cell(p) for p in measured_peers) + " |")
        print()
        skipped = [r for r in args.rates if r > args.peer_max_rate]
        ran = [f"{r}/s" for r in args.rates if r <= args.peer_max_rate]
        print(f"- peers ran one at a time ({min(args.serial_requests, PEER_SERIAL_REQUESTS)} "
              f"requests), at {', '.join(ran) or 'no fixed rate'} and at saturation "
              f"({SATURATION_CONNECTIONS} connections), in the same rounds as ogx"
              + (f"; not at {', '.join(f'{r}/s' for r in skipped)} (above --peer-max-rate "
                 f"{args.peer_max_rate}: beyond their saturation a fixed rate only queues)"
                 if skipped else "")
              + "; no streaming row for them")
    for note in results.notes + args.peer_notes:
        print(f"- peer {note}")


def platform_note() -> str:
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "unknown CPU")
        return f"{model}; load average at the end {' '.join(load)}"
    except OSError:
        return "unknown machine"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help="duration of each fixed-rate and saturation load")
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)),
                        help="comma-separated requests per second")
    parser.add_argument("--quick", action="store_true",
                        help=f"one round of {QUICK_SECONDS:g} s loads")
    parser.add_argument("--peer-note", dest="peer_notes", action="append", default=[],
                        help="a line about an optional peer, printed under the table")
    for kind, what in (("ogx", "OGX's `ogx` (Python, PyPI `ogx`)"),
                       ("litellm", "LiteLLM's `litellm` (PyPI `litellm[proxy]`)")):
        parser.add_argument(f"--peer-{kind}", type=Path, metavar="EXECUTABLE",
                            help=f"measure {what} as a peer")
        parser.add_argument(f"--peer-{kind}-version", metavar="VERSION",
                            help="its version, for the table")
    parser.add_argument("--peer-max-rate", type=int, default=PEER_MAX_RATE,
                        help="the highest fixed rate (requests/s) the peers are run at")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r]
    args.peers = [PeerSpec(kind, executable, getattr(args, f"peer_{kind}_version"))
                  for kind in ("ogx", "litellm")
                  if (executable := getattr(args, f"peer_{kind}")) is not None]
    for peer in args.peers:
        if not os.access(peer.executable, os.X_OK):
            parser.error(f"--peer-{peer.kind} {peer.executable}: not an executable file")
    args.serial_requests, args.ttfb_requests = SERIAL_REQUESTS, TTFB_REQUESTS
    if args.quick:
        args.rounds, args.seconds = 1, QUICK_SECONDS
        args.serial_requests, args.ttfb_requests = SERIAL_REQUESTS // 4, TTFB_REQUESTS // 3
    bench = Bench(Paths.from_env(), args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    finally:
        bench.cleanup()
    print_table(bench.results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
