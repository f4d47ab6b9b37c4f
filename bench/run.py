"""The load benchmark behind `scripts/bench.sh`: ogx beside the floor proxy, on every path.

Starts on 127.0.0.1 `ogx-bench-upstream` (a fast OpenAI-compatible upstream), the floor proxy
`ogx-bench-floor` (the least a Rust gateway must do: parse the body, check and rewrite `model`,
forward over a pooled keep-alive client, stream the answer back) and ogx, with the paths of
bench/paths.py (vllm, bedrock, streaming, the Responses API, history off, ...). Then, per round,
for each load (one at a time, each fixed rate, saturation), runs `oha` against every target in
turn: for each floor request the upstream directly, the floor proxy, then ogx on each path that
has that floor (and the peers on theirs), so that all see the same machine conditions. Prints
ogx's figures as ratios to the floor proxy's (computed within each round), the goals, every
figure, the streaming time to the first event, start-up (cold and warm plugin cache) and RSS.

With `--also-ogx LABEL=BINARY` another ogx build (e.g. the `quick` profile) is measured on every
path in the same rounds. With `--peer-ogx` / `--peer-litellm` / `--peer-portkey`
(scripts/bench.sh --peers installs them), OGX (Python), the LiteLLM proxy and Portkey's gateway
run on the paths marked for peers, at the rates up to `--peer-max-rate` (past their saturation
a fixed rate only queues), in the same rounds (see bench/peers.py).

Standard library only. Every process it starts is stopped on exit, also on Ctrl-C or an error.
Binaries come from the environment scripts/bench.sh sets (see `Binaries`)."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import paths as bench_paths
import peers
import report
from measure import (FLOOR, OGX, PEER, UPSTREAM, STARTUP_TIMEOUT_S, Load, Processes, Server,
                     Target, check_request, first_event_ms, free_port, measured, read_proc,
                     wait_for_200)
from paths import UPSTREAM_MODEL, BenchPath
from peers import PeerSpec
from report import PeerStartup, Ratios, Results, Startup, ratio

DEFAULT_RATES = (100, 1000, 5000)
DEFAULT_ROUNDS = 3
DEFAULT_SECONDS = 10.0
QUICK_SECONDS = 3.0
# Connections oha keeps open for the fixed-rate runs: enough that a slow answer never holds
# back the schedule (oha's --latency-correction counts the wait from the scheduled time).
FIXED_RATE_CONNECTIONS = 64
SATURATION_CONNECTIONS = 256
SERIAL_REQUESTS = 2000
FIRST_EVENT_REQUESTS = 300
# After the first 200, before idle RSS is read.
IDLE_SETTLE_S = 0.5
# Peers (Python and Node servers, a few hundred requests/s at best): the highest fixed rate
# they are run at, one-at-a-time requests and warm-up requests per round.
PEER_MAX_RATE = 500
PEER_SERIAL_REQUESTS = 300
PEER_WARMUP_REQUESTS = 100
# The warm-up before each round's loads.
WARMUP_REQUESTS = 500
WARMUP_CONNECTIONS = 8
# What ogx prints for a config key it does not know (it goes on without it).
IGNORED_KEY_MARK = "unknown key"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Binaries:
    ogx: Path
    plugins: Path
    upstream: Path
    floor: Path
    oha: Path

    @staticmethod
    def from_env() -> "Binaries":
        try:
            return Binaries(*(Path(os.environ[f"OGX_BENCH_{name}"]) for name in
                              ("OGX", "PLUGINS", "UPSTREAM", "FLOOR", "OHA")))
        except KeyError as e:
            sys.exit(f"bench/run.py: {e.args[0]} is not set; run it through scripts/bench.sh")


class Bench:
    def __init__(self, binaries: Binaries, args: argparse.Namespace) -> None:
        self.bin, self.args = binaries, args
        self.procs = Processes()
        self.work = Path(tempfile.mkdtemp(prefix="ogx-bench-"))
        self.results = Results()
        self.peers: list[PeerSpec] = list(args.peers)
        # (label, binary) of each ogx build measured.
        self.builds: list[tuple[str, Path]] = [("ogx", binaries.ogx)] + args.also_ogx
        # The paths still measured (one whose check fails is left out, with a note).
        self.paths: list[BenchPath] = list(args.paths)

    def start_upstream(self) -> str:
        port = free_port()
        child = self.procs.start([str(self.bin.upstream), "--port", str(port)],
                                 stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_for_200(url + "/v1/models", time.monotonic() + STARTUP_TIMEOUT_S, child)
        return url

    def start_floor(self, upstream: str) -> Server:
        port = free_port()
        argv = [str(self.bin.floor), "--port", str(port), "--upstream", upstream]
        for model in bench_paths.FLOOR_MODELS:
            argv += ["--model", f"{model}={UPSTREAM_MODEL}"]
        child = self.procs.start(argv, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        wait_for_200(url + "/v1/models", time.monotonic() + STARTUP_TIMEOUT_S, child)
        return Server(url, child)

    def start_ogx(self, binary: Path, config: dict, upstream: str, cache_dir: Path,
                  state: Path) -> tuple[subprocess.Popen, str, float]:
        """Starts ogx; returns it, its URL and ms to the first 200 on /v1/models."""
        state.mkdir(parents=True, exist_ok=True)
        config_file = state / "config.yaml"
        bench_paths.write_config(config, config_file, upstream, str(state))
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
            child = self.procs.start([str(binary), "run", "--port", str(port),
                                      "--plugins-dir", str(self.bin.plugins), str(config_file)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        url = f"http://127.0.0.1:{port}"
        try:
            ready = wait_for_200(url + "/v1/models", started + STARTUP_TIMEOUT_S, child)
        except RuntimeError:
            sys.stderr.write(log_file.read_text()[-4000:])
            raise
        return child, url, (ready - started) * 1000

    def start_ogx_builds(self, upstream: str, round_no: int) -> dict[tuple[str, str], Server]:
        """One ogx per build and distinct path config: {(build label, config key): server}."""
        servers: dict[tuple[str, str], Server] = {}
        for label, binary in self.builds:
            for path in self.paths:
                config = bench_paths.ogx_config(path.fragments)
                key = bench_paths.config_key(config)
                if (label, key) in servers:
                    continue
                state = self.work / f"{label.replace(' ', '-')}-{len(servers)}-{round_no}"
                child, url, _ = self.start_ogx(binary, config, upstream,
                                               self.work / f"cache-{label.replace(' ', '-')}", state)
                servers[(label, key)] = Server(url, child)
                if round_no == 1:
                    self.note_ignored_keys(label, key, state / "ogx.log")
        return servers

    def note_ignored_keys(self, label: str, key: str, log_file: Path) -> None:
        """A note for each config key ogx said it ignored: those rows ran without it."""
        names = [p.name for p in self.paths
                 if bench_paths.config_key(bench_paths.ogx_config(p.fragments)) == key]
        for line in log_file.read_text(errors="replace").splitlines():
            if IGNORED_KEY_MARK in line:
                said = line[line.index(IGNORED_KEY_MARK):].strip()
                self.results.notes.append(f"{label} ran {', '.join(names)} without a setting "
                                          f"it does not know yet (it logged: {said})")

    def start_peer(self, spec: PeerSpec, upstream: str, state: Path,
                   path: BenchPath) -> tuple[Target, Server]:
        """Starts a peer in its own process group, waits for its first 200, reads its idle
        RSS, checks one request; fails with its log's last lines."""
        port = free_port()
        launch = peers.launch(spec, upstream, port, state)
        target = Target(f"{spec.name} | {path.name}", spec.name, spec.name, PEER, path.request,
                        launch.model, path.floor_request.key, path, tuple(launch.headers.items()))
        log_file = state / "server.log"
        started = time.monotonic()
        with open(log_file, "w") as out:
            child = self.procs.start(launch.argv, group=True, env=launch.env, cwd=state,
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT)
        server = Server(f"http://127.0.0.1:{port}", child, group=True)
        try:
            ready = wait_for_200(server.url + launch.ready_path, started + STARTUP_TIMEOUT_S,
                                 child, launch.headers)
            time.sleep(IDLE_SETTLE_S)
            idle_kib = server.usage()[1]
            check_request(server.url, target)
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
        """Starts every peer still in the run, on the first path marked for peers; one that
        fails is reported and left out."""
        targets, servers = [], {}
        path = next((p for p in self.paths if p.peers), None)
        if path is None:
            return targets, servers
        for spec in list(self.peers):
            log(f"round {round_no}: starting {spec.name}")
            try:
                target, server = self.start_peer(spec, upstream,
                                                 self.work / f"{spec.kind}-{round_no}", path)
            except RuntimeError as e:
                log(f"  {e}; left out of the rest of the run")
                self.results.notes.append(f"peer {spec.name}: left out from round {round_no}: {e}")
                self.peers.remove(spec)
                continue
            startup = self.results.peer_startups[spec.name][-1]
            log(f"  first 200 after {startup.ms:.0f} ms, idle RSS {startup.idle_rss_mib:.1f} MiB")
            targets.append(target)
            servers[target.server] = server
        return targets, servers

    def measure_startup(self, upstream: str, round_no: int) -> Startup:
        cache = self.work / f"cache-startup-{round_no}"
        config = bench_paths.ogx_config(bench_paths.STARTUP_FRAGMENTS)
        cold_child, _, cold = self.start_ogx(self.bin.ogx, config, upstream, cache,
                                             self.work / f"cold-{round_no}")
        self.procs.stop(cold_child)
        warm_child, _, warm = self.start_ogx(self.bin.ogx, config, upstream, cache,
                                             self.work / f"warm-{round_no}")
        time.sleep(IDLE_SETTLE_S)
        idle = read_proc(warm_child.pid)[1] / 1024
        self.procs.stop(warm_child)
        return Startup(cold, warm, idle)

    def targets(self, peer_targets: list[Target]) -> list[Target]:
        """In the order measured: per floor request, the upstream, the floor proxy, then each
        path with that floor (each ogx build, then the peers)."""
        targets: list[Target] = []
        floors: dict[str, list[BenchPath]] = {}
        for path in self.paths:
            floors.setdefault(path.floor_request.key, []).append(path)
        for key, on_floor in floors.items():
            request = on_floor[0].floor_request
            targets.append(Target(f"upstream ({request.label})", "upstream", "upstream",
                                  UPSTREAM, request, UPSTREAM_MODEL, key))
            targets.append(Target(f"floor proxy ({request.label})", "floor proxy", "floor",
                                  FLOOR, request, on_floor[0].model, key))
            for path in on_floor:
                config_key = bench_paths.config_key(bench_paths.ogx_config(path.fragments))
                for label, _ in self.builds:
                    targets.append(Target(f"{label} | {path.name}", label, f"{label}|{config_key}",
                                          OGX, path.request, path.model, key, path))
                targets += [t for t in peer_targets if t.path == path]
        return targets

    def check_targets(self, targets: list[Target], servers: dict[str, Server]) -> list[Target]:
        """One request through each target; an ogx path that fails is left out of the run (with
        a note), as is a peer; the upstream or the floor proxy failing stops the run."""
        kept = []
        for target in targets:
            try:
                check_request(servers[target.server].url, target)
            except (RuntimeError, OSError) as e:
                if target.kind in (UPSTREAM, FLOOR):
                    raise
                log(f"  {target.name}: {e}; left out of the rest of the run")
                self.results.notes.append(f"{target.name}: left out: {e}")
                if target.kind == PEER:
                    self.peers = [p for p in self.peers if p.name != target.label]
                elif target.path is not None:
                    self.paths = [p for p in self.paths if p != target.path]
                continue
            kept.append(target)
        return kept

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
            servers: dict[str, Server] = {"upstream": Server(upstream),
                                          "floor": self.start_floor(upstream)}
            for (label, key), server in self.start_ogx_builds(upstream, round_no).items():
                servers[f"{label}|{key}"] = server
            peer_targets, peer_servers = self.start_peers(upstream, round_no)
            servers.update(peer_servers)
            targets = self.check_targets(self.targets(peer_targets), servers)
            # Warm the connection pools and the allocator before measuring.
            for target in targets:
                requests = PEER_WARMUP_REQUESTS if target.kind == PEER else WARMUP_REQUESTS
                measured(self.bin.oha, target, servers[target.server], rate=None,
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
        for case, rate, load in self.cases():
            loads: dict[str, Load] = {}
            for target in targets:
                if target.kind == PEER and rate is not None and rate > args.peer_max_rate:
                    continue
                this_load = dict(load)
                if target.kind == PEER and case == "serial":
                    this_load["requests"] = min(load["requests"], args.peer_serial_requests)
                log(f"round {round_no}: {case:>10} -> {target.name}")
                try:
                    result = measured(self.bin.oha, target, servers[target.server], **this_load)
                except RuntimeError as e:
                    if target.kind != PEER:
                        raise
                    log(f"  {e}")
                    self.results.notes.append(f"{target.name}, round {round_no}, {case}: {e}")
                    continue
                self.results.add(target, case, result)
                loads[target.name] = result
            self.record_round(case, targets, loads)
        self.first_events(round_no, targets, servers)

    def record_round(self, case: str, targets: list[Target], loads: dict[str, Load]) -> None:
        """This round's added latency over the upstream and ratios to the floor proxy."""
        by_floor = {(t.kind, t.floor): loads.get(t.name) for t in targets
                    if t.kind in (UPSTREAM, FLOOR)}
        for target in targets:
            mine, up = loads.get(target.name), by_floor.get((UPSTREAM, target.floor))
            if mine is None or up is None or target.kind == UPSTREAM:
                continue
            self.results.added.setdefault((target.name, case), []).append(
                (mine.p50_ms - up.p50_ms, mine.p99_ms - up.p99_ms))
            floor = by_floor.get((FLOOR, target.floor))
            if target.kind == FLOOR or floor is None:
                continue
            self.results.ratios.setdefault((target.name, case), []).append(Ratios(
                qps=ratio(mine.qps, floor.qps),
                added_p50=ratio(mine.p50_ms - up.p50_ms, floor.p50_ms - up.p50_ms),
                added_p99=ratio(mine.p99_ms - up.p99_ms, floor.p99_ms - up.p99_ms),
                cpu=ratio(mine.cpu_us_per_request, floor.cpu_us_per_request)))
        if case == "saturation":
            for ours in (t for t in targets if t.kind == OGX):
                for peer in (t for t in targets if t.kind == PEER and t.path == ours.path):
                    value = ratio(loads[ours.name].qps if ours.name in loads else None,
                                  loads[peer.name].qps if peer.name in loads else None)
                    if value is not None:
                        self.results.saturation_vs_peer.setdefault(
                            (ours.name, peer.label), []).append(value)

    def first_events(self, round_no: int, targets: list[Target],
                     servers: dict[str, Server]) -> None:
        """Time to the first streamed event, one at a time, over the upstream's, for every
        streaming target (peers left out)."""
        streaming = [t for t in targets if t.request.stream and t.kind != PEER]
        if not streaming:
            return
        log(f"round {round_no}: streaming time to the first event "
            f"({self.args.first_event_requests} each)")
        upstream_p50: dict[str, float] = {}
        for target in streaming:
            p50 = statistics.median(first_event_ms(servers[target.server].url, target,
                                                   self.args.first_event_requests))
            if target.kind == UPSTREAM:
                upstream_p50[target.floor] = p50
            elif target.floor in upstream_p50:
                self.results.first_event.setdefault(target.name, []).append(
                    p50 - upstream_p50[target.floor])

    def cleanup(self) -> None:
        self.procs.stop_all()
        shutil.rmtree(self.work, ignore_errors=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help="duration of each fixed-rate and saturation load")
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)),
                        help="comma-separated requests per second")
    parser.add_argument("--quick", action="store_true",
                        help=f"one round of {QUICK_SECONDS:g} s loads")
    parser.add_argument("--paths", dest="path_names", metavar="NAMES",
                        help="comma-separated paths to measure (default: all of them: "
                             + ", ".join(p.name for p in bench_paths.PATHS) + ")")
    parser.add_argument("--also-ogx", action="append", default=[], metavar="LABEL=BINARY",
                        help="another ogx build measured on every path in the same rounds")
    parser.add_argument("--peer-note", dest="peer_notes", action="append", default=[],
                        help="a line about an optional peer, printed under the tables")
    for kind, what in (("ogx", "OGX's `ogx` (Python, PyPI `ogx`)"),
                       ("litellm", "LiteLLM's `litellm` (PyPI `litellm[proxy]`)"),
                       ("portkey", "Portkey's gateway (its build/start-server.js, run by node)")):
        parser.add_argument(f"--peer-{kind}", type=Path, metavar="EXECUTABLE",
                            help=f"measure {what} as a peer")
        parser.add_argument(f"--peer-{kind}-version", metavar="VERSION",
                            help="its version, for the tables")
    parser.add_argument("--peer-max-rate", type=int, default=PEER_MAX_RATE,
                        help="the highest fixed rate (requests/s) the peers are run at")
    args = parser.parse_args()
    args.rates = [int(r) for r in args.rates.split(",") if r]
    try:
        args.paths = bench_paths.select(args.path_names)
    except ValueError as e:
        parser.error(f"--paths: {e}")
    args.also_ogx = [parse_build(parser, value) for value in args.also_ogx]
    args.peers = [PeerSpec(kind, executable, getattr(args, f"peer_{kind}_version"))
                  for kind in peers.KINDS
                  if (executable := getattr(args, f"peer_{kind}")) is not None]
    for peer in args.peers:
        usable = peer.executable.is_file() if peer.kind == "portkey" else os.access(peer.executable, os.X_OK)
        if not usable:
            parser.error(f"--peer-{peer.kind} {peer.executable}: not an executable file")
    args.peer_paths = [p.name for p in args.paths if p.peers]
    args.serial_requests, args.first_event_requests = SERIAL_REQUESTS, FIRST_EVENT_REQUESTS
    args.peer_serial_requests = PEER_SERIAL_REQUESTS
    if args.quick:
        args.rounds, args.seconds = 1, QUICK_SECONDS
        args.serial_requests, args.first_event_requests = SERIAL_REQUESTS // 4, FIRST_EVENT_REQUESTS // 3
    return args


def parse_build(parser: argparse.ArgumentParser, value: str) -> tuple[str, Path]:
    label, sep, binary = value.partition("=")
    if not sep or not label or label == "ogx":
        parser.error(f"--also-ogx {value!r}: expected LABEL=BINARY with a label other than 'ogx'")
    if not os.access(binary, os.X_OK):
        parser.error(f"--also-ogx {value!r}: {binary} is not an executable file")
    return label, Path(binary)


def main() -> int:
    args = parse_args()
    bench = Bench(Binaries.from_env(), args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        bench.run()
    finally:
        bench.cleanup()
    args.paths = [p for p in args.paths if p in bench.paths]
    report.print_all(bench.results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
