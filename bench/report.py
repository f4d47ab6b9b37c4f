"""The results of a benchmark run and the tables bench/run.py prints from them (Markdown, on
stdout): the ratios to the floor proxy (the headline), the goals, every figure, the streaming
time to the first event, ogx's start-up and memory, the peers, and notes.

Every figure is a median over the rounds; a ratio is computed within each round (ogx and the
floor proxy measured minutes apart under the same machine conditions), then its median taken.
A cell whose figure is missing (a load not run, a floor too small to divide by) is "—".

Standard library only."""
from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import dataclass, field

from measure import FLOOR, OGX, PEER, Load, Target
from paths import BenchPath

# The issue's goals, as ratios to the floor proxy: the headline path within HEADLINE_FACTOR,
# every other path within OTHER_FACTOR; saturation at least HEADLINE_SATURATION (others:
# 1 / OTHER_FACTOR).
HEADLINE_PATH = "vllm"
HEADLINE_FACTOR = 1.3
HEADLINE_SATURATION = 0.8
OTHER_FACTOR = 1.5
GOAL_RATE = "1000/s"


@dataclass
class Ratios:
    """One round's figures of a target over the floor proxy's, for one load."""
    qps: float | None
    added_p50: float | None
    added_p99: float | None
    cpu: float | None


@dataclass
class Startup:
    cold_ms: float
    warm_ms: float
    idle_rss_mib: float


@dataclass
class PeerStartup:
    """A peer's start to its first 200, and its RSS idle just after."""
    ms: float
    idle_rss_mib: float


@dataclass
class Results:
    # Every target measured, by name, in the order first measured.
    targets: dict[str, Target] = field(default_factory=dict)
    loads: dict[tuple[str, str], list[Load]] = field(default_factory=dict)
    # (target, case) -> (p50, p99) over the upstream's, per round.
    added: dict[tuple[str, str], list[tuple[float, float]]] = field(default_factory=dict)
    ratios: dict[tuple[str, str], list[Ratios]] = field(default_factory=dict)
    # Target -> p50 of the time to the first streamed event over the upstream's, per round.
    first_event: dict[str, list[float]] = field(default_factory=dict)
    startups: list[Startup] = field(default_factory=list)
    peer_startups: dict[str, list[PeerStartup]] = field(default_factory=dict)
    # (ogx target, peer target) -> ogx's saturation QPS over the peer's, per round.
    saturation_vs_peer: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    # Lines printed under the tables (peers skipped or failed, settings ogx ignored).
    notes: list[str] = field(default_factory=list)

    def add(self, target: Target, case: str, load: Load) -> None:
        self.targets.setdefault(target.name, target)
        self.loads.setdefault((target.name, case), []).append(load)

    def median_load(self, name: str, case: str, attribute: str) -> float | None:
        return median(getattr(load, attribute) for load in self.loads.get((name, case), []))

    def median_ratio(self, name: str, case: str, attribute: str) -> float | None:
        return median(getattr(r, attribute) for r in self.ratios.get((name, case), []))

    def median_added(self, name: str, case: str, index: int) -> float | None:
        return median(a[index] for a in self.added.get((name, case), []))


def ratio(value: float | None, floor: float | None) -> float | None:
    """value ÷ floor, or None when either is missing or the floor is not above zero."""
    if value is None or floor is None or floor <= 0:
        return None
    return value / floor


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(value, spec: str = ".2f", unit: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{unit}"


def cases(args: argparse.Namespace) -> list[str]:
    return ["serial"] + [f"{r}/s" for r in args.rates] + ["saturation"]


def path_targets(results: Results, path: BenchPath) -> list[Target]:
    """The targets with a row of their own on `path`: ogx builds and peers."""
    return [t for t in results.targets.values() if t.path == path and t.kind in (OGX, PEER)]


def floor_target(results: Results, target: Target, kind: str) -> Target | None:
    return next((t for t in results.targets.values()
                 if t.kind == kind and t.floor == target.floor), None)


def print_all(results: Results, args: argparse.Namespace) -> None:
    print()
    print(f"ogx benchmark: medians of {args.rounds} round(s), {args.seconds:g} s per load, "
          f"{os.cpu_count()} CPUs ({platform_note()})")
    print_ratios(results, args)
    print_goals(results, args)
    print_figures(results, args)
    print_first_event(results, args)
    print_startup(results)
    print_peers(results, args)
    for note in results.notes + args.peer_notes:
        print(f"- {note}")


def print_ratios(results: Results, args: argparse.Namespace) -> None:
    print()
    print("Ratios to the floor proxy, measured in the same rounds (the floor's own figure in "
          "brackets; added = over the upstream directly):")
    print()
    print("| path | load | target | QPS (floor) | ÷ floor | added p50 ms (floor) | ÷ floor | "
          "added p99 ms (floor) | ÷ floor | CPU µs/req (floor) | ÷ floor | errors |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in args.paths:
        for case in cases(args):
            for target in path_targets(results, path):
                if (target.name, case) not in results.loads:
                    continue
                floor = floor_target(results, target, FLOOR)
                fname = floor.name if floor else ""

                def pair(value, floor_value, spec):
                    return f"{fmt(value, spec)} ({fmt(floor_value, spec)})"

                print(f"| {path.name} | {case} | {target.label} | "
                      f"{pair(results.median_load(target.name, case, 'qps'), results.median_load(fname, case, 'qps'), '.0f')} | "
                      f"{fmt(results.median_ratio(target.name, case, 'qps'), '.2f', '×')} | "
                      f"{pair(results.median_added(target.name, case, 0), results.median_added(fname, case, 0), '.3f')} | "
                      f"{fmt(results.median_ratio(target.name, case, 'added_p50'), '.2f', '×')} | "
                      f"{pair(results.median_added(target.name, case, 1), results.median_added(fname, case, 1), '.3f')} | "
                      f"{fmt(results.median_ratio(target.name, case, 'added_p99'), '.2f', '×')} | "
                      f"{pair(results.median_load(target.name, case, 'cpu_us_per_request'), results.median_load(fname, case, 'cpu_us_per_request'), '.0f')} | "
                      f"{fmt(results.median_ratio(target.name, case, 'cpu'), '.2f', '×')} | "
                      f"{fmt(median(l.error_rate * 100 for l in results.loads[(target.name, case)]), '.2f', '%')} |")


def print_goals(results: Results, args: argparse.Namespace) -> None:
    """The goals, checked on ogx's rows (not the peers', nor a second ogx build's): one row per
    path, each cell the median ratio, the goal and whether it is met."""
    checks = [("saturation QPS", "saturation", "qps", True),
              (f"added p50 at {GOAL_RATE}", GOAL_RATE, "added_p50", False),
              ("added p50 one at a time", "serial", "added_p50", False),
              ("CPU/req one at a time", "serial", "cpu", False),
              ("CPU/req at saturation", "saturation", "cpu", False)]
    rows = []
    for path in args.paths:
        target = next((t for t in path_targets(results, path) if t.label == "ogx"), None)
        if target is None:
            continue
        factor = HEADLINE_FACTOR if path.name == HEADLINE_PATH else OTHER_FACTOR
        least = HEADLINE_SATURATION if path.name == HEADLINE_PATH else 1 / OTHER_FACTOR
        cells = []
        for _, case, attribute, at_least in checks:
            value = results.median_ratio(target.name, case, attribute)
            bound = least if at_least else factor
            if value is None:
                cells.append("—")
                continue
            met = value >= bound if at_least else value <= bound
            cells.append(f"{value:.2f}× ({'≥' if at_least else '≤'} {bound:.2f}: "
                         f"{'met' if met else 'missed'})")
        rows.append(f"| {path.name} | " + " | ".join(cells) + " |")
    if rows:
        print()
        print("Goals: ogx ÷ the floor proxy (the goal: met or missed):")
        print()
        print("| path | " + " | ".join(c[0] for c in checks) + " |")
        print("| --- |" + " ---: |" * len(checks))
        print("\n".join(rows))


def print_figures(results: Results, args: argparse.Namespace) -> None:
    print()
    print("Every figure (added = over the upstream directly, for the same request):")
    print()
    print("| target | path | load | QPS | errors | p50 ms | p90 ms | p99 ms | added p50 ms | "
          "added p99 ms | CPU µs/req | peak RSS MiB |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case in cases(args):
        for target in results.targets.values():
            loads = results.loads.get((target.name, case), [])
            if not loads:
                continue
            where = target.path.name if target.path else f"({target.request_label})"
            print(f"| {target.label} | {where} | {case} | "
                  f"{fmt(median(l.qps for l in loads), '.0f')} | "
                  f"{fmt(median(l.error_rate * 100 for l in loads), '.2f', '%')} | "
                  f"{fmt(median(l.p50_ms for l in loads), '.3f')} | "
                  f"{fmt(median(l.p90_ms for l in loads), '.3f')} | "
                  f"{fmt(median(l.p99_ms for l in loads), '.3f')} | "
                  f"{fmt(results.median_added(target.name, case, 0), '.3f')} | "
                  f"{fmt(results.median_added(target.name, case, 1), '.3f')} | "
                  f"{fmt(median(l.cpu_us_per_request for l in loads), '.0f')} | "
                  f"{fmt(median(l.peak_rss_mib for l in loads), '.1f')} |")


def print_first_event(results: Results, args: argparse.Namespace) -> None:
    rows = []
    for path in args.paths:
        for target in path_targets(results, path):
            added = median(results.first_event.get(target.name, []))
            if added is None:
                continue
            floor = floor_target(results, target, FLOOR)
            floor_added = median(results.first_event.get(floor.name, [])) if floor else None
            rows.append(f"| {path.name} | {target.label} | {fmt(added, '.3f')} "
                        f"({fmt(floor_added, '.3f')}) | {fmt(ratio(added, floor_added), '.2f', '×')} |")
    if rows:
        print()
        print(f"Streaming, one at a time ({args.first_event_requests} requests): added time to "
              "the first event, p50:")
        print()
        print("| path | target | added ms (floor) | ÷ floor |")
        print("| --- | --- | ---: | ---: |")
        print("\n".join(rows))


def print_startup(results: Results) -> None:
    s = results.startups
    if not s:
        return
    print()
    print("| ogx | median |")
    print("| --- | ---: |")
    print(f"| start-up to first 200 on /v1/models, cold plugin cache | "
          f"{fmt(median(x.cold_ms for x in s), '.0f', ' ms')} |")
    print(f"| start-up to first 200 on /v1/models, warm plugin cache | "
          f"{fmt(median(x.warm_ms for x in s), '.0f', ' ms')} |")
    print(f"| idle RSS, both plugins loaded | "
          f"{fmt(median(x.idle_rss_mib for x in s), '.1f', ' MiB')} |")


def print_peers(results: Results, args: argparse.Namespace) -> None:
    measured = [p.name for p in args.peers if p.name in results.peer_startups]
    if not measured:
        return
    print()
    print("| peers (median) | " + " | ".join(measured) + " |")
    print("| --- |" + " ---: |" * len(measured))
    rows = [("start-up to first 200",
             lambda p: fmt(median(x.ms for x in results.peer_startups[p]), '.0f', ' ms')),
            ("idle RSS", lambda p: fmt(median(x.idle_rss_mib for x in results.peer_startups[p]),
                                       '.1f', ' MiB'))]
    ours = sorted({o for o, _ in results.saturation_vs_peer})
    rows += [(f"saturation: {results.targets[o].label} ({results.targets[o].path.name}) ÷ this peer",
              lambda p, o=o: fmt(median(results.saturation_vs_peer.get((o, p), [])), '.1f', '×'))
             for o in ours]
    for label, cell in rows:
        print(f"| {label} | " + " | ".join(cell(p) for p in measured) + " |")
    print()
    skipped = [r for r in args.rates if r > args.peer_max_rate]
    ran = [f"{r}/s" for r in args.rates if r <= args.peer_max_rate]
    print(f"- peers ran on the path{'s' if len(args.peer_paths) > 1 else ''} "
          f"{', '.join(args.peer_paths)}: one at a time ({args.peer_serial_requests} requests), "
          f"at {', '.join(ran) or 'no fixed rate'} and at saturation, in the same rounds as ogx"
          + (f"; not at {', '.join(f'{r}/s' for r in skipped)} (above --peer-max-rate "
             f"{args.peer_max_rate}: beyond their saturation a fixed rate only queues)"
             if skipped else ""))


def platform_note() -> str:
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "unknown CPU")
        return f"{model}; load average at the end {' '.join(load)}"
    except OSError:
        return "unknown machine"
