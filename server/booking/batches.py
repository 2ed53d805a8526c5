"""Options requests ranked together, a batch per solve, for the resolving policy.

`BookingService.options_many` hands each request here when `assignment_policy` is
"resolving". The first request of a batch starts a timer of `assignment_batch_s`; every
request until then joins it; then one read of the free places and one solve
(`resolving.Resolver`, in a worker thread, its min-cost flows in `assignment_solvers`
solver processes side by side: `solver.SolverPool`) rank them all. A request's answer
waits for its batch: about a second, well within the freshness of a LINE reply token
(`line_reply_within_s`). The solve runs only the forecast draws expected to end within
`assignment_deadline_s` of the batch closing (their cost learned from the draws before,
`pace.Pace`), and a draw still running at the deadline is cut short in the solver process;
when not even one draw fits (or the only one was cut) the batch is ranked greedily, as it
is when there is no forecast to make (`demand.Forecast.ready`). `late` counts those
batches and `skipped` the draws left out (cut ones included), for `/metrics`; `lost` the
batches ranked greedily because the solver process died (the next batch starts a fresh
one). The forecast is made at the first batch and again every `demand_refresh_s`, so it
learns the registrations that came since.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select

from server.booking.capacity import StationView
from server.booking.demand import Forecast, Profile, Seen, municipality_areas
from server.booking.pace import Pace
from server.booking.ranking import FreeTable, Option
from server.booking.resolving import Ask, Resolver
from server.booking.solver import SolverLost, SolverPool
from server.booking.upkeep import MAX_WALK_MIN
from server.db.models import ResidentRegistration, Station
from server.db.session import Database
from server.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Places:
    """What a batch is ranked against: the stations, their free places and phones left."""

    stations: Sequence[StationView]
    free: FreeTable
    phones: Mapping[str, int]
    now: datetime


@dataclass(slots=True)
class _Asked:
    points: Sequence[tuple[float, float]]
    earliest: datetime
    limit: int
    future: asyncio.Future[list[list[Option]]] = field(repr=False)
    at: float = 0.0
    """When it was asked (the event loop's clock)."""


class Batches:
    """One per BookingService; `read` gives the places, `forecast` makes the forecast."""

    def __init__(
        self,
        settings: Settings,
        read: Callable[[], Awaitable[Places]],
        forecast: Callable[[datetime], Awaitable[Forecast | None]],
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._read = read
        self._make_forecast = forecast
        self._timer = timer
        self._asked: list[_Asked] = []
        self._flusher: asyncio.Task[None] | None = None
        self._resolver: tuple[tuple[str, ...], Resolver] | None = None
        self._forecast: Forecast | None = None
        self._forecast_at = -math.inf
        """When the forecast was last made from the registry (`timer`)."""
        self.forecasts = 0
        """Times the registry was read for the forecast."""
        self.pace = Pace()
        """The machine's cost of a draw, kept when the resolver is built again."""
        self.solved = 0
        """Batches the policy ranked (the others went greedy): for tests and metrics."""
        self.greedy = 0
        self.late = 0
        """Of the greedy batches, those no draw would have fitted the deadline of."""
        self.skipped = 0
        """Draws left out of solved batches to answer in time."""
        self.lost = 0
        """Batches ranked greedily because the solver process died."""
        self.solvers = SolverPool(settings.assignment_solvers)
        """Started by `prepare` or when a batch first has draws to solve; stopped by
        `close`."""
        self._turn = asyncio.Lock()
        """One of `prepare` and the batches at a time: they share the resolver's state."""

    @property
    def forecast(self) -> Forecast | None:
        """The forecast the last batch was solved with."""
        return self._forecast

    @property
    def waiting(self) -> int:
        """Requests waiting for a batch to close."""
        return len(self._asked)

    async def options_many(
        self, points: Sequence[tuple[float, float]], earliest: datetime, limit: int
    ) -> list[list[Option]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[list[Option]]] = loop.create_future()
        self._asked.append(_Asked(points, earliest, limit, future, loop.time()))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_after())
        return await future

    async def prepare(self) -> None:
        """What the first batch would otherwise pay for, done before anyone asks (the
        server calls it at start): the forecast made, the reach of its support measured
        (`Resolver.measure`, seconds at 2,000 stations) and the solver processes started. A
        forecast that cannot be made yet (no total, nobody registered) is made again by the
        first batch."""
        async with self._turn:
            try:
                await self._prepare()
            except Exception:  # the first batch makes it again, or says why
                log.exception("preparing the live assignment failed")

    async def _prepare(self) -> None:
        places = await self._read()
        resolver = self._resolver_for(places.stations)
        await self._refresh_forecast(places.now)
        forecast = self._forecast
        if forecast is None or not forecast.ready:
            self._forecast_at = -math.inf
            return
        await asyncio.to_thread(resolver.measure, forecast)
        await asyncio.to_thread(self.solvers.start)

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        for asked in self._asked:
            if not asked.future.done():
                asked.future.cancel()
        await asyncio.to_thread(self.solvers.close)

    async def _flush_after(self) -> None:
        """Rank batches while requests wait: a batch closes `assignment_batch_s` after its
        first request, or when the solve before it ends, whichever is later (so batches
        grow with the load instead of queueing)."""
        loop = asyncio.get_running_loop()
        while self._asked:
            opened = self._asked[0].at
            await asyncio.sleep(max(0.0, opened + self._settings.assignment_batch_s - loop.time()))
            asked, self._asked = self._asked, []
            try:
                ranked = await self._rank(asked)
            except Exception as exc:  # every waiting caller hears of it
                log.exception("ranking a batch failed")
                for a in asked:
                    if not a.future.done():
                        a.future.set_exception(exc)
                continue
            for a, found in zip(asked, ranked, strict=True):
                if not a.future.done():
                    a.future.set_result(found)

    async def _rank(self, asked: Sequence[_Asked]) -> list[list[list[Option]]]:
        async with self._turn:
            return await self._rank_now(asked)

    async def _rank_now(self, asked: Sequence[_Asked]) -> list[list[list[Option]]]:
        places = await self._read()
        resolver = self._resolver_for(places.stations)
        await self._refresh_forecast(places.now)
        now = places.now.timestamp()
        asks = [Ask(lat, lon, max(a.earliest, places.now).timestamp())
                for a in asked for lat, lon in a.points]  # fmt: skip
        limit = max(a.limit for a in asked)
        ranked, lost = None, False
        try:
            if asks:
                if self._forecast is not None and self._forecast.ready:
                    await asyncio.to_thread(self.solvers.start)  # before the deadline runs
                due = self._timer() + self._settings.assignment_deadline_s
                ranked = await asyncio.to_thread(
                    resolver.rank, asks, places.free, self._forecast, now, places.phones,
                    limit, lambda: due - self._timer(),
                )  # fmt: skip
        except SolverLost:
            lost = True
        if ranked is None:
            if lost:
                self.lost += 1
            else:
                self.greedy += 1
                self.late += resolver.skipped > 0
            ranked = [self._greedy(resolver, ask, places.free, limit) for ask in asks]
        else:
            self.solved += 1
            self.skipped += resolver.skipped
        if self._forecast is not None:
            self._forecast.see([Seen(now, a.lat, a.lon, a.earliest) for a in asks])
        out, i = [], 0
        for a in asked:
            out.append([found[: a.limit] for found in ranked[i : i + len(a.points)]])
            i += len(a.points)
        return out

    async def _refresh_forecast(self, now: datetime) -> None:
        """Make the forecast at the first batch, and again every `demand_refresh_s` (the
        residents registered grow during an event), keeping what it learned from requests
        (`Forecast.updated`)."""
        if self._timer() - self._forecast_at < self._settings.demand_refresh_s:
            return
        fresh = await self._make_forecast(now)
        self._forecast_at = self._timer()
        self.forecasts += 1
        if self._forecast is None:
            self._forecast = fresh
        elif fresh is not None:
            self._forecast = self._forecast.updated(fresh)

    @staticmethod
    def _greedy(resolver: Resolver, ask: Ask, free: FreeTable, limit: int) -> list[Option]:
        earliest = datetime.fromtimestamp(ask.earliest, UTC)
        return resolver.ranker.rank(ask.lat, ask.lon, earliest, free, limit, MAX_WALK_MIN)

    def _resolver_for(self, stations: Sequence[StationView]) -> Resolver:
        """The policy for these stations, built again when stations come or go."""
        key = tuple(s.id for s in stations)
        if self._resolver is None or self._resolver[0] != key:
            s = self._settings
            seed = s.assignment_seed if s.assignment_seed is not None else time.time_ns()
            resolver = Resolver(stations, draws=s.assignment_draws, seed=seed,
                                max_walk_min=MAX_WALK_MIN, pace=self.pace,
                                solve=self.solvers.solve,
                                parallel=s.assignment_solvers)  # fmt: skip
            self._resolver = (key, resolver)
        return self._resolver[1]


async def load_forecast(db: Database, settings: Settings, now: datetime) -> Forecast:
    """The forecast from the registry: areas per municipality around its stations, weighted
    by the residents registered there; the expected total from settings, else the number
    registered (0 when none: the forecast then waits for requests seen, `Forecast.ready`)."""
    async with db.transaction() as session:
        stations = [
            (town, lat, lon)
            for town, lat, lon in await session.execute(
                select(Station.municipality, Station.latitude, Station.longitude).where(
                    Station.drill_id.is_(None)
                )
            )
        ]
        registered = {
            town: int(n)
            for town, n in await session.execute(
                select(ResidentRegistration.municipality, func.count()).group_by(
                    ResidentRegistration.municipality
                )
            )
        }
    start = settings.demand_announced_at or now
    profile = Profile(start.timestamp(), settings.demand_burst_share, settings.demand_burst_s,
                      settings.demand_tail_s)  # fmt: skip
    total = settings.demand_expected_requests or sum(registered.values())
    seed = settings.assignment_seed if settings.assignment_seed is not None else time.time_ns()
    return Forecast(municipality_areas(stations, registered), profile, total, seed=seed)
