"""The "resolving" policy inside BookingService on SQLite with a fake clock: a batch of
requests is ranked as the pure policy ranks it (its draws solved in the solver process),
and greedily when there is no forecast, the solve is late or the solver process died."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from datetime import timedelta

from server.booking.batches import Batches, Places, load_forecast
from server.booking.ranking import FreeTable, Option
from server.booking.resolving import Ask, Resolver
from server.booking.service import BookingService
from server.db.migrate import upgrade
from server.db.models import ResidentRegistration
from server.db.session import Database
from server.errors import Conflict
from server.line.conversation import resident_id
from server.priority.rules import PriorityRules
from server.settings import Settings
from tests.conditions import async_wait_until
from tests.server.booking_shell.test_priority import (
    HQ,
    OZU,
    QUARTER,
    W3,
    priority_resident,
    registered,
)
from tests.server.booking_shell.world import T0, W1, W2, Clock, StationSpec, open_world, seed

SPECS = [
    StationSpec("a", 33.500, 132.500, ports=2, rated_wh=60.0),  # four phones' energy
    StationSpec("b", 33.500, 132.508, ports=4),
    StationSpec("c", 33.506, 132.503, ports=1, rated_wh=30.0),
    StationSpec("d", 33.490, 132.512, ports=4),
]
POINTS = [(33.501, 132.501), (33.502, 132.504), (33.499, 132.509), (33.505, 132.502),
          (33.495, 132.507), (33.503, 132.500)]  # fmt: skip


def live_settings(url: str, expected: int = 40) -> Settings:
    return Settings(database_url=url, mqtt_url=None, report_period_s=3600.0,
                    assignment_policy="resolving", assignment_batch_s=0.05,
                    assignment_seed=11, assignment_draws=5,
                    demand_expected_requests=expected)  # fmt: skip


async def service(
    chosen: Settings, timer: Callable[[], float] | None = None
) -> tuple[Database, BookingService]:
    upgrade(chosen.database_url)
    db = Database(chosen.database_url)
    await seed(db, SPECS, T0)
    if timer is None:
        return db, BookingService(db, chosen, Clock())
    return db, BookingService(db, chosen, Clock(), timer=timer)


def test_a_batch_is_ranked_as_the_pure_policy_ranks_it(database_url: str) -> None:
    asyncio.run(ranked_as_the_pure_policy(database_url))


async def ranked_as_the_pure_policy(database_url: str) -> None:
    chosen = live_settings(database_url)
    db, svc = await service(chosen)
    try:
        places = await svc.free_places()
        forecast = await load_forecast(db, chosen, places.now)
        resolver = Resolver(places.stations, draws=chosen.assignment_draws,
                            seed=chosen.assignment_seed or 0)  # fmt: skip
        asks = [Ask(lat, lon, T0.timestamp()) for lat, lon in POINTS]
        expected = resolver.rank(asks, places.free, forecast, T0.timestamp(), places.phones, 3)
        assert expected is not None
        found = await svc.options_many(POINTS, T0, 3)
        assert svc.batches is not None and (svc.batches.solved, svc.batches.greedy) == (1, 0)
        assert found == expected
        greedy = [resolver.ranker.rank(lat, lon, T0, places.free, 3) for lat, lon in POINTS]
        assert [f[0].station_id for f in found] != [g[0].station_id for g in greedy]
        solver = svc.batches.solvers.workers[0]  # the draws were solved in its process
        assert solver.pid is not None and solver.solved_by == solver.pid != os.getpid()
    finally:
        await svc.close()
        await db.dispose()
    assert not solver.alive  # close() stopped it


def test_a_killed_solver_means_greedy_once_then_a_fresh_one(database_url: str) -> None:
    asyncio.run(solver_killed(database_url))


async def solver_killed(database_url: str) -> None:
    db, svc = await service(live_settings(database_url))
    try:
        batches = svc.batches
        assert batches is not None
        solver = batches.solvers.workers[0]
        assert solver.pid is None  # started by a first solve
        await svc.options_many(POINTS[:2], T0, 3)
        first = solver.pid
        assert first is not None and solver.solved_by == first
        os.kill(first, signal.SIGKILL)
        await async_wait_until(lambda: not solver.alive, what="the solver to die")
        found = await svc.options_many(POINTS[2:4], T0, 3)
        assert found == await greedy(svc, POINTS[2:4])
        assert (batches.solved, batches.greedy, batches.lost) == (1, 0, 1)
        await svc.options_many(POINTS[4:], T0, 3)
        assert (batches.solved, batches.lost, solver.started) == (2, 1, 2)
        assert solver.solved_by == solver.pid not in (first, None)
    finally:
        await svc.close()
        await db.dispose()


async def greedy(svc: BookingService, points: list[tuple[float, float]]) -> list[list[Option]]:
    """What the greedy ranking gives these points on the service's places now."""
    places = await svc.free_places()
    ranker = Resolver(places.stations).ranker
    return [ranker.rank(lat, lon, T0, places.free, 3) for lat, lon in points]


def test_no_forecast_means_greedy(database_url: str) -> None:
    asyncio.run(greedy_without_forecast(database_url))


async def greedy_without_forecast(database_url: str) -> None:
    chosen = live_settings(database_url, expected=0)  # nobody registered either
    db, svc = await service(chosen)
    try:
        found = await svc.options_many(POINTS, T0, 3)
        assert found == await greedy(svc, POINTS)
        assert svc.batches is not None and (svc.batches.solved, svc.batches.greedy) == (0, 1)
        assert svc.batches.late == 0
    finally:
        await svc.close()
        await db.dispose()


def test_a_late_solve_means_greedy(database_url: str) -> None:
    asyncio.run(greedy_when_late(database_url))


async def greedy_when_late(database_url: str) -> None:
    ticks: Iterator[float] = iter(range(0, 10_000, 100))  # every look at the timer: 100 s on
    db, svc = await service(live_settings(database_url), timer=lambda: next(ticks))
    try:
        found = await svc.options_many(POINTS, T0, 3)
        assert found == await greedy(svc, POINTS)
        assert svc.batches is not None and (svc.batches.solved, svc.batches.greedy) == (0, 1)
        assert svc.batches.late == 1  # no draw was run past the deadline
        assert svc.batches.pace.measured == 0
    finally:
        await svc.close()
        await db.dispose()


def test_requests_arriving_during_a_solve_are_ranked_by_the_next(database_url: str) -> None:
    asyncio.run(next_batch(database_url))


async def next_batch(database_url: str) -> None:
    chosen = live_settings(database_url)
    db, svc = await service(chosen)
    try:
        release = asyncio.Event()
        reads = 0

        async def read() -> Places:
            nonlocal reads
            reads += 1
            if reads == 1:
                await release.wait()  # the first batch is still being ranked
            return await svc.free_places()

        batches = Batches(chosen, read, lambda now: load_forecast(db, chosen, now))
        first = asyncio.create_task(batches.options_many(POINTS[:1], T0, 3))
        await async_wait_until(lambda: reads == 1, what="the first batch reading its places")
        second = asyncio.create_task(batches.options_many(POINTS[1:2], T0, 3))
        await async_wait_until(lambda: batches.waiting == 1, what="the second one queued")
        release.set()
        found = await asyncio.gather(first, second)
        assert [len(f[0]) for f in found] == [3, 3]
        assert (batches.solved + batches.greedy, reads) == (2, 2)
        await batches.close()
    finally:
        await svc.close()
        await db.dispose()


def test_the_forecast_learns_registrations_at_its_refresh(database_url: str) -> None:
    asyncio.run(learns_registrations(database_url))


async def register(db: Database, n: int) -> None:
    async with db.transaction() as session:
        for i in range(n):
            session.add(ResidentRegistration(user_id=f"U{i:032d}", municipality="", stay="home",
                                             consented_at=T0, updated_at=T0))  # fmt: skip


async def learns_registrations(database_url: str) -> None:
    chosen = live_settings(database_url, expected=0).model_copy(update={"demand_refresh_s": 300.0})
    db, svc = await service(chosen)
    try:
        now = [0.0]
        batches = Batches(chosen, svc.free_places, lambda at: load_forecast(db, chosen, at),
                          timer=lambda: now[0])  # fmt: skip
        await batches.options_many(POINTS[:1], T0, 3)  # no one registered, none expected
        assert (batches.greedy, batches.forecasts) == (1, 1)
        first = batches.forecast
        assert first is not None and first.expected_total == 0
        await register(db, 30)
        now[0] = 299.0
        await batches.options_many(POINTS[1:2], T0 + timedelta(minutes=1), 3)
        assert batches.forecasts == 1 and first.expected_total == 0  # not read again yet
        now[0] = 300.0
        await batches.options_many(POINTS[2:3], T0 + timedelta(minutes=2), 3)
        assert batches.forecasts == 2 and batches.forecast is first  # the same area, re-weighed
        assert first.expected_total == 30 and first.remaining(T0.timestamp()) == 30
        assert batches.solved == 2  # learned from the first request: a forecast since
        await batches.close()
    finally:
        await svc.close()
        await db.dispose()


def test_a_priority_resident_is_ranked_greedily_on_the_held_places(database_url: str) -> None:
    """Under "resolving", in the same moment: a resident without priority waits for their
    batch, ranked on what anyone may take; a priority resident is ranked at once on the
    places held back too, and gets the held place the other cannot book."""
    asyncio.run(priority_beside_a_batch(database_url))


async def priority_beside_a_batch(database_url: str) -> None:
    clock = Clock()
    spec = StationSpec("A", 33.84, 132.77, ports=4, municipality=OZU)
    db, plain, _units = await open_world(database_url, [spec], clock)
    chosen = live_settings(database_url).model_copy(update={"assignment_batch_s": 3.0})
    svc = BookingService(db, chosen, clock)
    try:
        await PriorityRules(db, clock).put(OZU, QUARTER, HQ)  # W2: 1 of 4 held until 00:30
        somebody = await priority_resident(db, clock, "Upriority")
        other = resident_id("Uasked")
        await registered(db, clock, "Uasked", "medical_device")  # asked for, not granted
        for n in range(4):
            await plain.book(f"w1-{n}", "A", W1)  # W1 is full
        for n in range(3):
            await plain.book(f"w2-{n}", "A", W2)  # W2: only the held place left
        near = [(33.8405, 132.7705)]
        batched = asyncio.create_task(svc.options_many(near, T0, 5, [other]))
        assert svc.batches is not None
        await async_wait_until(lambda: svc.batches is not None and svc.batches.waiting == 1,
                               what="the other resident waiting for their batch")  # fmt: skip
        [mine] = await svc.options_many(near, T0, 5, [somebody])
        assert not batched.done()  # ranked without waiting for the batch
        [theirs] = await batched
        assert (svc.batches.solved + svc.batches.greedy) == 1  # the batch held only theirs
        assert (mine[0].station_id, mine[0].window_start, mine[0].free) == ("A", W2, 1)
        assert all(o.window_start != W2 for o in theirs) and theirs[0].window_start == W3
        greedy = Resolver([*(await svc.free_places()).stations]).ranker
        held = await svc.station_options("A", T0, 5, somebody)
        assert mine == greedy.rank(near[0][0], near[0][1], T0, FreeTable(
            {("A", o.window_start): o.free for o in held}), 5)  # fmt: skip
        try:
            await svc.book(other, "A", W2)
            raise AssertionError("a resident without priority took a held place")
        except Conflict as refused:
            assert refused.code == "window_full"
        booked = await svc.book(somebody, "A", W2)
        assert booked.status == "active" and booked.priority
    finally:
        await svc.close()
        await plain.close()
        await db.dispose()


def test_prepare_makes_the_forecast_measures_it_and_starts_the_solver_before_anyone_asks(
    database_url: str,
) -> None:
    asyncio.run(prepared(database_url))


async def prepared(database_url: str) -> None:
    db, svc = await service(live_settings(database_url))
    try:
        batches = svc.batches
        assert batches is not None
        await batches.prepare()
        forecast = batches.forecast
        assert forecast is not None and forecast.ready and batches.forecasts == 1
        resolver = batches._resolver_for((await svc.free_places()).stations)
        assert len(resolver._pt_offsets) == len(forecast.points) + 1  # its support measured
        pid = batches.solvers.workers[0].pid
        assert pid is not None and batches.solvers.workers[0].alive
        await svc.options_many(POINTS[:2], T0, 3)
        assert (batches.solved, batches.forecasts, batches.solvers.workers[0].pid) == (1, 1, pid)
    finally:
        await svc.close()
        await db.dispose()


def test_a_forecast_not_ready_at_prepare_is_made_again_by_the_first_batch(
    database_url: str,
) -> None:
    asyncio.run(prepared_too_soon(database_url))


async def prepared_too_soon(database_url: str) -> None:
    db, svc = await service(live_settings(database_url, expected=0))  # nobody registered yet
    try:
        batches = svc.batches
        assert batches is not None
        await batches.prepare()
        assert batches.forecasts == 1  # nothing to solve yet: no solver started
        assert batches.solvers.workers[0].pid is None
        await register(db, 30)
        await svc.options_many(POINTS[:2], T0, 3)
        assert batches.forecasts == 2 and (batches.solved, batches.greedy) == (1, 0)
    finally:
        await svc.close()
        await db.dispose()


def test_a_server_prepared_before_its_registry_ranks_on_the_stations_that_came(
    database_url: str,
) -> None:
    asyncio.run(prepared_before_the_registry(database_url))


async def prepared_before_the_registry(database_url: str) -> None:
    chosen = live_settings(database_url)
    upgrade(chosen.database_url)
    db = Database(chosen.database_url)
    svc = BookingService(db, chosen, Clock())
    try:
        batches = svc.batches
        assert batches is not None
        await batches.prepare()  # at start, before the registry: no station, no forecast
        assert not (await svc.free_places()).stations
        await seed(db, SPECS, T0)  # the registry, written behind the server's back
        found = await svc.options_many(POINTS[:2], T0, 3)
        assert all(found) and batches.solved == 1  # on them at once, not on an empty copy
    finally:
        await svc.close()
        await db.dispose()
