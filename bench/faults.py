"""Faults and what each costs: the reliability suite's table (`pytest -m reliability`).

Runs the tests marked `reliability` one after another (real Mosquitto, PostgreSQL,
server, gateway and sandbox processes), each of which injects a fault, asserts that
nothing was lost or doubled, and records what it counted (`tests/faults.py`). Prints, per
fault: what was counted, generated, delivered, lost (must be 0), delivered twice to a
person or stored twice (must be 0), and the recovery time from the fault's end. Writes
bench/results/faults.json. Fails (exit 1) when a test fails or a row loses or doubles.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.processes import BenchFailed, fail_loudly
from tests.faults import REPORT_ENV


def run(extra: list[str]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="chargenet-faults-") as scratch:
        ledger = Path(scratch) / "faults.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-m", "reliability", "-p", "no:randomly", "-q",
             "-p", "no:cacheprovider", *extra],
            env={**os.environ, REPORT_ENV: str(ledger)}, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise BenchFailed(f"the reliability suite failed:\n{done.stdout[-4000:]}")
        if not ledger.exists():
            raise BenchFailed("no test recorded an outcome")
        return [json.loads(line) for line in ledger.read_text().splitlines()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.faults", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench/results/faults.json"))
    parser.add_argument("pytest_args", nargs="*", help="after --, for pytest: -- -k three")
    args = parser.parse_args(argv)

    def body() -> int:
        rows = run(args.pytest_args)
        print("fault | counted | generated | delivered | lost | doubled | recovery s")
        for row in rows:
            print(f"{row['fault']} | {row['what']} | {row['generated']} | {row['delivered']} | "
                  f"{row['lost']} | {row['duplicated']} | {row['recovery_s']:.1f}")  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"faults": rows}, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {args.out}")
        bad = [r["fault"] for r in rows if r["lost"] or r["duplicated"]]
        if bad:
            raise BenchFailed(f"lost or doubled: {', '.join(bad)}")
        return 0

    return fail_loudly("faults", body)


if __name__ == "__main__":
    sys.exit(main())
