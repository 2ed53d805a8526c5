"""The benchmarks' child processes: what each costs, and its failure failing the whole run.

A benchmark whose publisher or server died measures a broken run; the figures it would
print are void. So every child's exit code is checked, every wait on a child also watches
it die, and any failure raises `BenchFailed`, which a benchmark's `main` turns into a
message and a non-zero exit.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Final, TypeVar

T = TypeVar("T")

SPAWN: Final = mp.get_context("spawn")
"""Children start in a fresh interpreter (nothing of ours inherited); their semaphores,
events and queues must come from this context too."""


class BenchFailed(Exception):
    """A part of the benchmark failed: the run measured nothing worth printing."""


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_alive(processes: Sequence[BaseProcess]) -> None:
    """Fail if any child has exited with an error (one that exited 0 is done, not dead)."""
    for process in processes:
        if process.exitcode not in (None, 0):
            raise BenchFailed(f"{process.name} exited with {process.exitcode}")


def acquire_all(ready: Any, processes: Sequence[BaseProcess], timeout_s: float, what: str) -> None:
    """Take `ready` (a semaphore) once per child, failing as soon as one of them dies."""
    deadline = time.monotonic() + timeout_s
    taken = 0
    while taken < len(processes):
        if ready.acquire(timeout=0.1):
            taken += 1
            continue
        check_alive(processes)
        for process in processes:
            if process.exitcode == 0:
                raise BenchFailed(f"{process.name} exited before it was {what}")
        if time.monotonic() > deadline:
            raise BenchFailed(f"{len(processes) - taken} of {len(processes)} not {what} "
                              f"after {timeout_s:.0f} s")  # fmt: skip


def receive(results: Queue[T], processes: Sequence[BaseProcess], timeout_s: float) -> T:
    """The next result a child puts on `results`, failing if a child dies first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return results.get(timeout=0.1)
        except queue.Empty:
            check_alive(processes)
            if time.monotonic() > deadline:
                raise BenchFailed(f"no result from {', '.join(p.name or '?' for p in processes)}"
                                  f" after {timeout_s:.0f} s") from None  # fmt: skip


def join_all(processes: Sequence[BaseProcess], timeout_s: float) -> None:
    """Wait for every child to finish; one still running at the deadline, or exiting with
    an error, fails the run."""
    deadline = time.monotonic() + timeout_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.exitcode is None:
            raise BenchFailed(f"{process.name} still running after {timeout_s:.0f} s")
    check_alive(processes)


def end_all(processes: Sequence[BaseProcess]) -> None:
    """Clean-up after a failure: terminate what still runs (a no-op for finished children)."""
    for process in processes:
        if process.is_alive():
            process.terminate()
        process.join(10)


def spawn(target: Callable[..., None], name: str, *args: Any) -> BaseProcess:
    """A started child; daemonic, so it cannot outlive the benchmark."""
    process = SPAWN.Process(target=target, name=name, args=args, daemon=True)
    process.start()
    return process


def fail_loudly(name: str, main: Callable[[], int]) -> int:
    """Run a benchmark's body; a `BenchFailed` is printed as the reason and exits 1."""
    try:
        return main()
    except BenchFailed as failure:
        print(f"bench.{name} FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
