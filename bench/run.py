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
CLK_TCK = os.sysconf("SC_CLK_TCK")

CHAT_BODY = {"messages": [{"role": "user", "content": "What is the answer?"}],
             "max_tokens": 16}
UPSTREAM_MODEL = "bench-model"
TARGETS = {  # name -> (which server, model sent)
    "upstream": ("upstream", UPSTREAM_MODEL),
    "ogx vllm": ("ogx", f"vllm/{UPSTREAM_MODEL}"),
    "ogx bedrock": ("ogx", f"bedrock/{UPSTREAM_MODEL}"),
}

CONFIG = """\
version: 2
distro_name: ogx-bench
apis: [inference, models]
providers:
  inference:
    - provider_id: vllm
      provider_type: remote::vllm
      config:
        base_url: {upstream}/v1
    - provider_id: bedrock
      provider_type: remote::bedrock
      config:
        region_name: us-west-2
        aws_access_key_id: AKIAOGXBENCHMARK0001
        aws_secret_access_key: bench/secret/key/not/checked
storage:
  backends:
    kv_default: {{type: kv_sqlite, db_path: {state}/kvstore.db}}
    sql_default: {{type: sql_sqlite, db_path: {state}/sql_store.db}}
  stores:
    metadata: {{namespace: registry, backend: kv_default}}
    inference: {{table_name: inference_store, backend: sql_default}}
    prompts: {{namespace: prompts, backend: kv_default}}
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
    """Every child started, stopped (SIGTERM, then SIGKILL) by `stop_all`."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen] = []

    def start(self, argv: list[str], **kwargs) -> subprocess.Popen:
        child = subprocess.Popen(argv, **kwargs)
        self.children.append(child)
        return child

    @staticmethod
    def stop(child: subprocess.Popen) -> None:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def stop_all(self) -> None:
        for child in reversed(self.children):
            self.stop(child)
        self.children.clear()


def wait_for_200(url: str, deadline: float, child: subprocess.Popen | None = None) -> float:
    """Polls GET `url` until a 200; returns the time it came. Fails if `child` exits."""
    host, port, path = split_url(url)
    while time.monotonic() < deadline:
        if child is not None and child.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {child.returncode}")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", path)
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


def read_proc(pid: int) -> tuple[float, int, int]:
    """(CPU seconds user+system, RSS KiB, peak RSS KiB) of `pid`."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return cpu, rss, hwm


class RssSampler:
    """The largest RSS of `pid` while in the `with` block."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, read_proc(self.pid)[1])
            self._stop.wait(RSS_SAMPLE_INTERVAL_S)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, read_proc(self.pid)[1])


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


def run_oha(oha: Path, url: str, model: str, *, rate: int | None, connections: int,
            seconds: float | None = None, requests: int | None = None) -> dict:
    body = json.dumps({"model": model, **CHAT_BODY})
    argv = [str(oha), "--no-tui", "--output-format", "json", "-m", "POST",
            "-H", "Content-Type: application/json", "-d", body, "-c", str(connections)]
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


def measured(oha: Path, target: str, urls: dict[str, str], ogx_pid: int, **load) -> Load:
    server, model = TARGETS[target]
    url = urls[server] + "/v1/chat/completions"
    if server != "ogx":
        return summarize(run_oha(oha, url, model, **load))
    cpu_before = read_proc(ogx_pid)[0]
    with RssSampler(ogx_pid) as rss:
        result = summarize(run_oha(oha, url, model, **load))
    cpu = read_proc(ogx_pid)[0] - cpu_before
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
class Results:
    loads: dict[tuple[str, str], list[Load]] = field(default_factory=dict)
    added: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    ttfb: dict[str, list[float]] = field(default_factory=dict)
    startups: list[Startup] = field(default_factory=list)

    def add(self, target: str, case: str, load: Load) -> None:
        self.loads.setdefault((target, case), []).append(load)


class Bench:
    def __init__(self, paths: Paths, args: argparse.Namespace) -> None:
        self.paths, self.args = paths, args
        self.procs = Processes()
        self.work = Path(tempfile.mkdtemp(prefix="ogx-bench-"))
        self.results = Results()

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

    def measure_startup(self, upstream: str, round_no: int) -> Startup:
        cache = self.work / f"cache-{round_no}"
        cold_child, _, cold = self.start_ogx(upstream, cache, self.work / f"cold-{round_no}")
        Processes.stop(cold_child)
        warm_child, _, warm = self.start_ogx(upstream, cache, self.work / f"warm-{round_no}")
        time.sleep(0.5)
        idle = read_proc(warm_child.pid)[1] / 1024
        Processes.stop(warm_child)
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
            urls = {"upstream": upstream, "ogx": ogx_url}
            # Warm the connection pools and the allocator before measuring.
            for target in TARGETS:
                measured(self.paths.oha, target, urls, ogx.pid, rate=None, connections=8,
                         requests=500)
            self.round(round_no, urls, ogx.pid)
            Processes.stop(ogx)

    def round(self, round_no: int, urls: dict[str, str], ogx_pid: int) -> None:
        args = self.args
        oha = self.paths.oha
        cases: list[tuple[str, dict]] = [
            ("serial", dict(rate=None, connections=1, requests=args.serial_requests))]
        cases += [(f"{rate}/s", dict(rate=rate, connections=FIXED_RATE_CONNECTIONS,
                                     seconds=args.seconds)) for rate in args.rates]
        cases.append(("saturation", dict(rate=None, connections=SATURATION_CONNECTIONS,
                                         seconds=args.seconds)))
        for case, load in cases:
            floor = None
            for target in TARGETS:
                log(f"round {round_no}: {case:>10} -> {target}")
                result = measured(oha, target, urls, ogx_pid, **load)
                self.results.add(target, case, result)
                if target == "upstream":
                    floor = result
                elif floor is not None:
                    self.results.added.setdefault((target, case), []).append(
                        (result.p50_ms - floor.p50_ms, result.p99_ms - floor.p99_ms))
        log(f"round {round_no}: streaming time to the first event ({args.ttfb_requests} each)")
        floor = None
        for target, (server, model) in TARGETS.items():
            times = stream_first_event_ms(urls[server], model, args.ttfb_requests)
            p50 = statistics.median(times)
            if target == "upstream":
                floor = p50
            else:
                self.results.ttfb.setdefault(target, []).append(p50 - floor)

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
    for case in cases:
        for target in TARGETS:
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
    for peer in args.peer_notes:
        print(f"- peer {peer}")


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
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r]
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
