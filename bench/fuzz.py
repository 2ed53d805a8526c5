"""Fuzz run: every test of tests/fuzz under the `fuzz` hypothesis profile, cases counted.

Runs pytest in this process with `--hypothesis-profile=fuzz` (7,000 cases per test, over
100,000 in all; CI runs the same tests under `ci`, hypothesis' default of 100 each) and
collects hypothesis' own statistics of each test: the cases run (every valid test case of
every phase), how each was refused (the `event()`s the tests record: malformed,
ValidationError, 401, an exception response ...), the failing cases, and the seconds.
Any failure fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from hypothesis.statistics import collector

from bench.processes import BenchFailed, fail_loudly

MIN_CASES = 100_000
"""What issue 11 asks of the whole run."""


@dataclass
class Row:
    door: str
    test: str
    cases: int = 0
    failing: int = 0
    refusals: dict[str, int] = field(default_factory=dict)
    """Cases per kind of refusal (the tests' `refused: ...` events)."""
    seconds: float = 0.0
    outcome: str = "not run"


class Statistics:
    """A pytest plugin: hypothesis' raw statistics of each test, kept instead of printed."""

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        """Innermost, so that our collector is the one hypothesis reports to (mypy takes
        the collector's type from its default, None)."""
        row = self.rows[item.nodeid] = Row(Path(str(item.path)).stem.removeprefix("test_"),
                                           item.name)  # fmt: skip
        started = time.perf_counter()
        with collector.with_value(partial(self._note, row)):  # type: ignore[arg-type]
            try:
                yield
            finally:
                row.seconds = time.perf_counter() - started

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        row = self.rows.get(report.nodeid)
        if row is not None and report.when == "call":
            row.outcome = report.outcome

    @staticmethod
    def _note(row: Row, stats: dict[str, Any]) -> None:
        for name, phase in stats.items():
            if not name.endswith("-phase") or not isinstance(phase, dict):
                continue
            for case in phase.get("test-cases", []):
                row.cases += case["status"] == "valid"
                row.failing += case["status"] == "interesting"
                for kind in case["events"]:
                    if kind.startswith("refused: "):
                        kind = kind.removeprefix("refused: ")
                        row.refusals[kind] = row.refusals.get(kind, 0) + 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fuzz", description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--profile", default="fuzz", help="hypothesis profile (ci: quick)")
    parser.add_argument("--tests", default="tests/fuzz", help="what pytest runs")
    parser.add_argument("--out", type=Path, default=Path("bench/results/fuzz.json"))
    args = parser.parse_args(argv)
    return fail_loudly("fuzz", lambda: run_all(args))


def run_all(args: argparse.Namespace) -> int:
    plugin = Statistics()
    started = time.perf_counter()
    code = pytest.main([args.tests, f"--hypothesis-profile={args.profile}", "-q", "-p",
                        "no:cacheprovider", "-o", "addopts="], plugins=[plugin])  # fmt: skip
    seconds = time.perf_counter() - started
    rows = list(plugin.rows.values())
    print(" | ".join(("door", "test", "cases", "refusals by kind", "failures", "seconds")))
    for r in rows:
        refusals = ", ".join(f"{kind} {n:,}" for kind, n in
                             sorted(r.refusals.items(), key=lambda kv: -kv[1])) or "-"  # fmt: skip
        failures = r.failing + (r.outcome != "passed")
        print(f"{r.door} | {r.test} | {r.cases:,} | {refusals} | {failures} | {r.seconds:.1f}")
    total = sum(r.cases for r in rows)
    failures = sum(r.failing + (r.outcome != "passed") for r in rows)
    print(f"total | {len(rows)} tests | {total:,} | | {failures} | {seconds:.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    args.out.write_text(json.dumps(
        {"machine": machine, "profile": args.profile, "total_cases": total, "failures": failures,
         "seconds": seconds, "tests": [asdict(r) for r in rows]}, indent=2,
    ))  # fmt: skip
    print(f"wrote {args.out}")
    if code != 0 or failures:
        raise BenchFailed(f"pytest exited {code}, {failures} failures")
    if not rows:
        raise BenchFailed(f"no tests ran from {args.tests}")
    if args.profile == "fuzz" and total < MIN_CASES:
        raise BenchFailed(f"{total:,} cases, fewer than {MIN_CASES:,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
