"""A pytest plugin loaded into OGX's own test run (`-p ogx_suite_plugin`); OGX's files stay
unmodified.

- Deselects the tests `selection.DESELECTED` names (each for a reason: an API or tool ogx does
  not serve), through pytest's own `pytest_deselected`, so pytest counts them.
- Marks the tests `selection.KNOWN_GAPS` names as strict expected failures with the missing
  ogx feature as the reason: they run, a failure is reported as `xfailed` with that reason,
  and a pass is an `XPASS(strict)` failure, which says the entry must go.
- Writes every test's outcome, with the first line of a failure's message, as JSON to
  `$OGX_SUITE_REPORT` for the runner's per-file summary.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from selection import DESELECTED, KNOWN_GAPS, entry_for

_results: dict[str, dict[str, str]] = {}
_deselected: dict[str, str] = {}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        reason = entry_for(item.nodeid, DESELECTED)
        if reason is None:
            kept.append(item)
            gap = entry_for(item.nodeid, KNOWN_GAPS)
            if gap is not None:
                item.add_marker(pytest.mark.xfail(reason=f"ogx today: {gap}", strict=True))
        else:
            dropped.append(item)
            _deselected[item.nodeid] = reason
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    outcome = report.outcome
    if hasattr(report, "wasxfail"):
        outcome = "xfailed" if report.skipped else "xpassed"
    if report.when == "call" or (report.when == "setup" and outcome != "passed") \
            or (report.when == "teardown" and report.failed):
        message = ""
        if report.skipped and isinstance(report.longrepr, tuple):
            message = str(report.longrepr[2])
        elif hasattr(report, "wasxfail"):
            message = report.wasxfail
        elif report.failed:
            message = report.longreprtext.strip().splitlines()[-1] if report.longreprtext else ""
        if report.when == "setup" and report.failed:
            outcome = "error"
        previous = _results.get(report.nodeid)
        if previous is None or previous["outcome"] == "passed":
            _results[report.nodeid] = {"outcome": outcome, "message": message[:400]}


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get("OGX_SUITE_REPORT")
    if path:
        Path(path).write_text(json.dumps({"results": _results, "deselected": _deselected},
                                         indent=1))
