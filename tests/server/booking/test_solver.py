"""The solver process: the same flows as in-process, solved in another pid, the event loop
free while it solves, a killed worker lost for one draw and replaced at the next, and a
draw past its deadline cut short in the worker."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from server.booking import flow
from server.booking.solver import SolverLost, SolverPool, SolverProcess
from tests.conditions import wait_until

T = 1.7e9


def network(n_demand: int, n_stations: int = 600, windows: int = 12, k: int = 8) -> flow.Network:
    """Random demands, each reaching `k` stations of `windows` 10-minute windows."""
    rng = np.random.default_rng(3)
    free = flow.Windows.of([[(T + 600.0 * w, int(rng.integers(1, 4))) for w in range(windows)]
                            for _ in range(n_stations)])  # fmt: skip
    demand = flow.Demand(
        earliest=T + rng.uniform(0, 7200, n_demand),
        supply=np.ones(n_demand, dtype=np.int64),
        arc_demand=np.repeat(np.arange(n_demand, dtype=np.int64), k),
        arc_station=rng.integers(0, n_stations, n_demand * k),
        arc_walk=rng.uniform(1, 60, n_demand * k),
    )
    return flow.build(demand, free)


@pytest.fixture
def solver() -> Iterator[SolverProcess]:
    process = SolverProcess()
    yield process
    process.close()


def test_the_worker_solves_as_in_process_in_another_process(solver: SolverProcess) -> None:
    net = network(2_000)
    here, there = flow.solve(net), solver.solve(net)
    assert np.array_equal(here.flows, there.flows)
    assert (there.cost, there.lower_bound, there.unserved) == (
        here.cost, here.lower_bound, here.unserved)  # fmt: skip
    assert solver.pid is not None and solver.solved_by == solver.pid != os.getpid()
    pid = solver.pid
    solver.close()
    assert not solver.alive
    with pytest.raises(ProcessLookupError):  # ended and reaped
        os.kill(pid, 0)
    with pytest.raises(SolverLost):  # a draw still running when closed starts no new one
        solver.solve(net)
    assert solver.started == 1


def test_the_event_loop_runs_while_a_large_draw_is_solved(solver: SolverProcess) -> None:
    net = network(80_000)  # about half a second of OR-Tools on this machine
    solver.start()
    assert asyncio.run(ticks_during_solve(solver, net)) >= 100  # in-process: 6-24


async def ticks_during_solve(solver: SolverProcess, net: flow.Network) -> int:
    """Ticks of a coroutine counted until the solve ends; with the solve in a thread of this
    process OR-Tools would hold the GIL and the loop would barely tick at all."""
    loop = asyncio.get_running_loop()
    beats: list[asyncio.TimerHandle] = []  # a heartbeat on the loop's timer, each ms it is free

    def beat() -> None:
        beats.append(loop.call_later(0.001, beat))

    beat()
    try:
        solved = await asyncio.to_thread(solver.solve, net)
    finally:
        beats[-1].cancel()
    assert solved.unserved == flow.solve(net).unserved
    return len(beats) - 1


def test_a_killed_worker_loses_the_draw_and_the_next_starts_a_fresh_one(
    solver: SolverProcess,
) -> None:
    net = network(500)
    expected = flow.solve(net)
    solver.solve(net)
    first = solver.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: not solver.alive, what="the worker to die")
    with pytest.raises(SolverLost):
        solver.solve(net)
    again = solver.solve(net)
    assert np.array_equal(again.flows, expected.flows)
    assert solver.started == 2 and solver.pid not in (first, None, os.getpid())
    assert solver.solved_by == solver.pid


def test_a_draw_past_its_deadline_is_cut_short_and_the_next_has_a_fresh_worker(
    solver: SolverProcess,
) -> None:
    big, small = network(80_000), network(500)  # big: about half a second to solve
    solver.start()
    first = solver.pid
    assert first is not None
    with pytest.raises(flow.SolveLate):
        solver.solve(big, lambda: 0.001)
    assert solver.cut == 1
    with pytest.raises(ProcessLookupError):  # stopped mid-solve, not left solving
        os.kill(first, 0)
    wait_until(lambda: solver.alive, what="a fresh worker, started without a draw asking")
    assert solver.started == 2 and solver.pid != first
    again = solver.solve(small, lambda: 60.0)  # the flows of this draw, not of the one cut short
    assert np.array_equal(again.flows, flow.solve(small).flows)
    assert solver.started == 2 and solver.solved_by == solver.pid != first


def test_a_pool_solves_draws_side_by_side_in_workers_of_their_own() -> None:
    pool = SolverPool(2)
    try:
        pool.start()
        pids = {w.pid for w in pool.workers}
        assert len(pids) == 2 and None not in pids and os.getpid() not in pids
        nets = [network(300), network(400)]
        with ThreadPoolExecutor(2) as threads:
            solved = list(threads.map(pool.solve, nets))
        for net, there in zip(nets, solved, strict=True):
            assert np.array_equal(there.flows, flow.solve(net).flows)
        with pytest.raises(flow.SolveLate):
            pool.solve(network(80_000), lambda: 0.001)
        assert pool.cut == 1
        wait_until(lambda: all(w.alive for w in pool.workers), what="the one cut, restarted")
        assert sum(w.started for w in pool.workers) == 3
    finally:
        pool.close()
    assert not any(w.alive for w in pool.workers)
