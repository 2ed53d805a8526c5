"""A gateway asked to stop ends its process within the deadline, even if a part hangs."""

from __future__ import annotations

import subprocess
import sys


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)


def test_a_stop_that_hangs_ends_the_process_anyway() -> None:
    hung = run(
        "import threading\n"
        "from gateway.main import arm_stop_deadline\n"
        "arm_stop_deadline(1.0)\n"
        "threading.Event().wait()  # a part that never returns\n"
    )
    assert hung.returncode == 1
    assert "stop did not finish within 1 s; exiting anyway" in hung.stderr


def test_a_clean_stop_does_not_wait_for_the_deadline() -> None:
    clean = run("from gateway.main import arm_stop_deadline\narm_stop_deadline(600)\nprint('done')")
    assert (clean.returncode, clean.stdout.strip()) == (0, "done")
