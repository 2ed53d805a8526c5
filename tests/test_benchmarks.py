"""Every benchmark starts with the dev dependencies alone (one once needed an extra package)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
NAMES = sorted(p.stem for p in BENCH.glob("*.py") if not p.stem.startswith("__"))


def test_the_runner_lists_every_benchmark() -> None:
    runner = (BENCH / "__main__.py").read_text()
    assert all(f'"{name}"' in runner for name in NAMES), NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_benchmark_imports_and_explains_itself(name: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"],
        cwd=BENCH.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
