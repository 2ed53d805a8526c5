"""The style gates run as tests, so `./dev test` and CI enforce them like any behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff_lint_is_clean() -> None:
    done = run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = run("ruff", "format", "--check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_strict_is_clean() -> None:
    done = run("mypy")
    assert done.returncode == 0, done.stdout + done.stderr


def test_dependencies_flow_one_way() -> None:
    """protocol imports none of the others; gateway and firmware_sim never import each other;
    no production package imports the platform sandboxes."""
    forbidden = {
        "protocol": ("firmware_sim", "gateway", "server", "sandbox", "chargenet"),
        "gateway": ("firmware_sim", "server", "sandbox", "chargenet"),
        "firmware_sim": ("gateway", "server", "sandbox", "chargenet"),
        "server": ("firmware_sim", "gateway", "sandbox", "chargenet"),
        "sandbox": ("firmware_sim", "gateway", "server", "chargenet"),
    }
    offenders = []
    for package, banned in forbidden.items():
        for path in (ROOT / package).rglob("*.py"):
            for line in path.read_text().splitlines():
                words = line.split()
                is_import = len(words) >= 2 and words[0] in ("import", "from")
                if is_import and words[1].split(".")[0] in banned:
                    offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not offenders, offenders
