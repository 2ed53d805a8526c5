"""The "resolving" policy inside BookingService on SQLite with a fake clock: a batch of
requests is ranked as the pure policy ranks it, and greedily when there is no forecast or
the solve is late."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta

from server.booking.batches import Batches, Places, load_forecast
from server.booking.resolving import Ask, Resolver
from server.booking.service import BookingService
from server.db.migrate import upgrade
from server.db.models import ResidentRegistration
from server.db.session import Database
from server.settings import Settings
from tests.conditions import async_wait_until
from tests.server.booking_shell.world import T0, Clock, StationSpec, seed

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
    finally:
        await svc.close()
        await db.dispose()


def test_no_forecast_means_greedy(database_url: str) -> None:
    asyncio.run(greedy_without_forecast(database_url))


async def greedy_without_forecast(database_url: str) -> None:
    chosen = live_settings(database_url, expected=0)  # nobody registered either
    db, svc = await service(chosen)
    try:
        found = await svc.options_many(POINTS, T0, 3)
        places = await svc.free_places()
        ranker = Resolver(places.stations).ranker
        assert found == [ranker.rank(lat, lon, T0, places.free, 3) for lat, lon in POINTS]
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
        places = await svc.free_places()
        ranker = Resolver(places.stations).ranker
        assert found == [ranker.rank(lat, lon, T0, places.free, 3) for lat, lon in POINTS]
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
