"""The min-cost flows of the live policy, solved in a process of their own.

OR-Tools' network simplex holds the GIL for its whole solve: run in a thread of the
server's process, one draw (up to seconds at 2,000 stations) would stall the event loop,
API answers and MQTT ingest alike. So `Batches` sends each draw's network to one long-lived
worker process, as arrays (tails, heads, capacities, integer costs, supplies: pickled
numpy arrays, a copy each way), and the thread that waits for the flows back holds no
lock the loop needs.

The worker is started by spawn (the server has threads: fork could copy a held lock) when
a batch first has draws to solve, and a fresh one is started after a loss. A worker that
died (killed, out of memory) is found by the draw that next uses it: `SolverLost`, that
batch is ranked greedily and the next batch starts a new worker.

A draw is given the seconds left before its batch's answer is due: when its flows are not
back by then the worker is stopped mid-solve (`flow.SolveLate`) and the batch answers
without that draw, so a draw whose cost no one could predict (the first of its size) costs
a resident at most the deadline, and no core is left solving a draw nobody will read. A
fresh worker is started at once in the background (a few tenths of a second), while the
batch answers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from functools import partial
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from server.booking import flow

log = logging.getLogger(__name__)


class SolverLost(Exception):
    """The solver process died (or would not start): rank the batch greedily."""


def _unlimited() -> float:
    return math.inf


def serve(conn: Connection) -> None:
    """The worker: report its pid once OR-Tools is imported, then solve what it is sent
    until the pipe closes. A failed solve is sent back as its exception; Ctrl-C is the
    server's to handle (it closes the worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn.send(os.getpid())
    while True:
        try:
            arrays = conn.recv()
        except EOFError:
            return
        try:
            conn.send(flow.min_cost_flows(*arrays))
        except Exception as exc:  # the caller's draw fails, the worker stays
            conn.send(exc)


class SolverProcess:
    """One per `Batches`; `solve` is called from the batch's worker thread."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        """One draw at a time on the pipe (batches are solved one after the other)."""
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self.pid: int | None = None
        """The worker's pid, None until started."""
        self.started = 0
        """Workers started (a second one after a loss)."""
        self.solved_by: int | None = None
        """The pid that solved the last draw."""
        self.cut = 0
        """Draws cut short at their deadline (each stopped its worker)."""
        self._closed = False

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def start(self) -> None:
        """Start the worker unless one is running (blocking: call it in a thread, before
        a batch's deadline runs, so a start is not taken for a draw's cost)."""
        with self._lock:
            self._ensure()

    def solve(self, network: flow.Network, left: Callable[[], float] = _unlimited) -> flow.Solution:
        """`flow.solve` with its flows from the worker (started if need be); `SolveLate`
        when they are not back within the seconds `left()` gives as the draw is handed
        over (the worker is then stopped)."""
        return flow.solve(network, partial(self._flows, left))

    def close(self) -> None:
        """Stop the worker, even mid-solve (the waiting draw then ends in `SolverLost`)."""
        self._closed = True  # a draw still running starts no new worker
        process, conn = self._process, self._conn
        self._process = self._conn = None
        _stop(process, conn)

    def _flows(
        self,
        left: Callable[[], float],
        tails: flow.Ints,
        heads: flow.Ints,
        caps: flow.Ints,
        unit_costs: flow.Ints,
        supplies: flow.Ints,
    ) -> tuple[flow.Ints, int]:
        with self._lock:
            self._ensure()
            process, conn = self._process, self._conn
            assert conn is not None
            due = time.monotonic() + left()
            try:
                conn.send((tails, heads, caps, unit_costs, supplies))
                if not conn.poll(None if math.isinf(due) else max(0.0, due - time.monotonic())):
                    log.info("solver process %s stopped: a draw ran past its deadline", self.pid)
                    self._process = self._conn = None
                    self.cut += 1
                    _stop(process, conn)
                    # a fresh worker while the batch answers, not at the next batch's cost
                    threading.Thread(target=self._restart, name="solver-restart",
                                     daemon=True).start()  # fmt: skip
                    raise flow.SolveLate("the draw ran past its deadline")
                answer = conn.recv()
            except (EOFError, OSError) as exc:
                log.warning("solver process %s lost: the batch is ranked greedily", self.pid)
                if self._conn is conn:
                    self._process = self._conn = None
                _stop(process, conn)
                raise SolverLost("the solver process died") from exc
        if isinstance(answer, Exception):
            raise answer
        self.solved_by = self.pid
        flows, optimal = answer
        return flows, optimal

    def _restart(self) -> None:
        with contextlib.suppress(SolverLost):  # closed meanwhile, or it would not start:
            self.start()  # the next draw finds out

    def _ensure(self) -> None:
        if self._closed:
            raise SolverLost("the solver is closed")
        if self._conn is None:
            self._start()

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=serve, args=(child,), name="chargenet-solver",
                                        daemon=True)  # fmt: skip
        try:
            process.start()
            child.close()
            pid = parent.recv()
        except (EOFError, OSError, RuntimeError) as exc:  # RuntimeError: could not spawn
            child.close()
            _stop(process, parent)
            raise SolverLost("the solver process did not start") from exc
        if self._closed:  # closed while it started (a start in a thread at shutdown)
            _stop(process, parent)
            raise SolverLost("the solver is closed")
        self._process, self._conn, self.pid = process, parent, pid
        self.started += 1
        log.info("solver process %d started", pid)


def _stop(process: BaseProcess | None, conn: Connection | None) -> None:
    """End the worker first (a draw waiting on the pipe then reads its end), then the pipe."""
    if process is not None and process.pid is not None:  # started
        process.terminate()
        process.join(5.0)
        if process.is_alive():
            process.kill()
            process.join()
    if conn is not None:
        conn.close()


class SolverPool:
    """`size` solver processes, so that a batch's draws are solved side by side, one per
    core given to the policy (`assignment_solvers`): `solve` takes an idle worker, from
    as many threads as there are workers (`resolving.Resolver.parallel`)."""

    def __init__(self, size: int = 1) -> None:
        self.workers = [SolverProcess() for _ in range(size)]
        self._idle: queue.SimpleQueue[SolverProcess] = queue.SimpleQueue()
        for worker in self.workers:
            self._idle.put(worker)

    @property
    def cut(self) -> int:
        """Draws cut short at their deadline, all workers together."""
        return sum(w.cut for w in self.workers)

    def start(self) -> None:
        """Start every worker not running (blocking, as `SolverProcess.start`)."""
        for worker in self.workers:
            worker.start()

    def solve(self, network: flow.Network, left: Callable[[], float] = _unlimited) -> flow.Solution:
        """`SolverProcess.solve` on the first worker idle."""
        worker = self._idle.get()
        try:
            return worker.solve(network, left)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
