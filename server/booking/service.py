"""The booking service: options, bookings, cancellations, and reactions to the ingest.

Bookings go through a per-process queue drained by writer tasks (group commit): one
transaction claims a whole batch of requests, with one station lock per station, one
conditional UPDATE for all the windows' loads and one INSERT for all the bookings (see
`claims`). Throughput then grows with load instead of collapsing under row-lock waits, and
correctness does not depend on the batching: the claim protocol is the same for a batch of
one, and the database's unique indexes back it. When a batch fails (a resident booking
from two processes at once, a deadlock), its requests are retried one by one. A writer
takes what is queued and never waits to fill a batch. On PostgreSQL the claim runs on the
asyncpg connection itself (`claims.pg_*`: BEGIN, three statements, COMMIT) on connections
the writers keep; SQLite takes the SQLAlchemy path.

Upkeep (check-ins, moves when capacity falls, no-shows) lives in `upkeep`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from server.booking import losses, upkeep
from server.booking.batches import Batches, Places, load_forecast
from server.booking.capacity import StationView, apart, phones_left, ticket_code, window_starts
from server.booking.claims import (
    ACTIVE_STATUSES,
    ClaimFailed,
    LoadConflict,
    Loads,
    Want,
    allot,
    lock_stations,
    pg_lock,
    pg_read,
    pg_write,
    read_claim_loads,
    read_held,
    read_loads,
    read_taken,
    write_loads,
)
from server.booking.displays import CLEAR, Wake, show, show_many
from server.booking.holdback import Rules, held_from, holding, rule_for
from server.booking.moves import free_table
from server.booking.ranking import FreeTable, Option, Ranker, walking_metres
from server.booking.views import (
    BookingView,
    PortAddress,
    StationSnapshot,
    load_battery_names,
    load_port_addresses,
    port_place,
)
from server.db.models import Booking, Station
from server.db.session import Database
from server.errors import Conflict, Invalid, NotFound, ServerError
from server.ingest.changeset import ChangeSet
from server.priority.grants import priority_among
from server.priority.rules import load_rules
from server.settings import Settings

log = logging.getLogger(__name__)

MAX_WALK_MIN = 60.0
RETRIES = 3
_T = TypeVar("_T")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class _Pending:
    resident_id: str
    station: StationView
    window_start: datetime
    future: asyncio.Future[BookingView] = field(repr=False)
    walk_m: int | None = None


class BookingService:
    """One per process, made in the app lifespan; `close()` it on the way out."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Callable[[], datetime] = utc_now,
        *,
        wake: Wake | None = None,
        snapshot_ttl_s: float = 5.0,
        max_batch: int = 256,
        writers: int | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._settings = settings
        self._wake = wake
        self._clock = clock
        self._snapshot = StationSnapshot(db, settings.report_period_s, clock, snapshot_ttl_s)
        self._max_batch = max_batch
        self._writers = writers if writers is not None else (1 if db.is_sqlite else 2)
        self._queue: asyncio.Queue[_Pending] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._rng = random.Random(secrets.randbits(128))
        self._addresses: dict[int, PortAddress] = {}
        self._ranker: tuple[Mapping[str, StationView], Ranker] | None = None
        self._horizon = timedelta(hours=settings.booking_horizon_h)
        self._idle: list[AsyncConnection] = []
        self._move_grace = timedelta(seconds=settings.move_grace_s)
        self.batches: Batches | None = (
            Batches(settings, self.free_places, lambda now: load_forecast(db, settings, now), timer)
            if settings.assignment_policy == "resolving"
            else None
        )
        self._started: datetime | None = clock()
        """Every station is looked at once `move_grace_s` after start: a loss heard by a
        process that died before it was recorded (`losses`) is not lost."""
        self._rules: tuple[float, Rules] | None = None
        self._rules_ttl_s = snapshot_ttl_s

    # -- reading ---------------------------------------------------------------------------

    async def options(
        self,
        lat: float,
        lon: float,
        earliest: datetime,
        limit: int = 5,
        resident_id: str | None = None,
    ) -> list[Option]:
        """Ranked options; the location is used here and nowhere else (never stored).
        `resident_id`: who asks; only a priority resident sees places held back
        (`holdback`); None sees what everyone may take."""
        return (await self.options_many([(lat, lon)], earliest, limit, [resident_id]))[0]

    async def options_many(
        self,
        points: Sequence[tuple[float, float]],
        earliest: datetime,
        limit: int = 5,
        residents: Sequence[str | None] | None = None,
    ) -> list[list[Option]]:
        """`options` for each of several (lat, lon) at once, on one read of the windows'
        loads (the LINE bot ranks a batch of residents' locations so); `residents`, who
        asks at each point (None: no one in particular). With the "resolving" policy they
        wait for their batch (`batches`), which ranks what everyone may take; a priority
        resident, who may see held-back places too, is ranked greedily on those."""
        who = await self._priority_flags(residents or [None] * len(points))
        if self.batches is not None and not any(who):
            return await self.batches.options_many(points, earliest, limit)
        views = await self._snapshot.get()
        ranker = self._ranker_for(views)  # real stations only: drills' twins are asked for
        near = [[views[sid] for _walk, sid in ranker.within(lat, lon, MAX_WALK_MIN)]
                for lat, lon in points]  # fmt: skip
        free, earliest, _ = await self._free([s for group in near for s in group], earliest, who)
        return [ranker.rank(lat, lon, earliest, free[p], limit, MAX_WALK_MIN) if group else []
                for (lat, lon), group, p in zip(points, near, who, strict=True)]  # fmt: skip

    async def station_options(
        self, station_id: str, earliest: datetime, limit: int = 5, resident_id: str | None = None
    ) -> list[Option]:
        """One station's free windows, earliest first (a resident at its poster, or naming
        it), as `resident_id` may take them; NotFound for an unknown station."""
        station = await self._station(station_id)
        [priority] = await self._priority_flags([resident_id])
        free, earliest, _ = await self._free([station], earliest, [priority])
        return Ranker([station]).rank(station.latitude, station.longitude, earliest,
                                      free[priority], limit, MAX_WALK_MIN)  # fmt: skip

    async def is_priority(self, resident_id: str) -> bool:
        """Was the resident granted priority (`server.priority.grants`)?"""
        async with self._db.transaction() as session:
            return bool(await priority_among(session, [resident_id]))

    def invalidate_rules(self) -> None:
        """An operator changed a hold-back rule: the next read reloads them (other processes
        see it within `snapshot_ttl_s`)."""
        self._rules = None

    async def _hold_rules(self) -> Rules:
        """Every municipality's hold-back, read at most every `snapshot_ttl_s`."""
        if self._rules is None or time.monotonic() - self._rules[0] > self._rules_ttl_s:
            async with self._db.transaction() as session:
                self._rules = (time.monotonic(), await load_rules(session))
        return self._rules[1]

    async def _priority_flags(self, residents: Sequence[str | None]) -> list[bool]:
        """Who among these has priority, as far as what they are shown goes: no one where
        no municipality holds anything back (no read then)."""
        known = [r for r in residents if r is not None]
        if not known or not await self._hold_rules():
            return [False] * len(residents)
        async with self._db.transaction() as session:
            granted = await priority_among(session, known)
        return [r in granted for r in residents]

    async def free_places(self) -> Places:
        """Every real station's places as anyone may take them (hold-back applied) and its
        phones left, for a batch's solve."""
        views = await self._snapshot.get()
        stations = apart(views.values(), None)
        now = self._clock()
        if not stations:
            return Places(stations, FreeTable(), {}, now)
        tables, now, loads = await self._free(stations, now, [False])
        booked = upkeep.upcoming(loads, {s.id: s for s in stations}, now)
        e = self._settings.energy_per_phone_wh
        phones = {s.id: phones_left(s, sum(booked.get(s.id, {}).values()), e) for s in stations}
        return Places(stations, tables[False], phones, now)

    async def _free(
        self, stations: Sequence[StationView], earliest: datetime, who: Sequence[bool]
    ) -> tuple[dict[bool, FreeTable], datetime, Loads]:
        """The free places of these stations' windows as a priority resident (True) and as
        anyone else (False) may take them, for each kind in `who`; `earliest` no earlier
        than now; and the windows' loads they come from. Hold-back changes the places
        before ranking sees them."""
        now = self._clock()
        unique = list({s.id: s for s in stations}.values())
        if not unique:
            return {p: FreeTable() for p in (True, False)}, max(earliest, now), {}
        rules = await self._hold_rules()
        since = now - _longest_slot(unique)
        async with self._db.transaction() as session:
            loads = await read_loads(session, (s.id for s in unique), since)
            held = None if all(who) else await read_held(session, rules, unique, since)
        places = {
            s.id: upkeep.places(s, loads.get(s.id, {}), now, self._horizon, self._settings)
            for s in unique
        }
        tables = {True: free_table(unique, places)}
        if held is not None:
            public = held.open_to_anyone(places, now)
            tables[False] = tables[True] if public is places else free_table(unique, public)
        return tables, max(earliest, now), loads

    async def get(self, booking_id: str) -> BookingView:
        async with self._db.transaction() as session:
            found = (
                await session.execute(
                    select(Booking, Station.slot_minutes)
                    .join(Station, Station.id == Booking.station_id)
                    .where(Booking.id == booking_id)
                )
            ).first()
            if found is None:
                raise NotFound(f"no booking {booking_id}")
            names = await load_battery_names(session, [found[0].station_id])
        return BookingView.of(found[0], found[1], names)

    async def active_for_resident(self, resident_id: str) -> BookingView | None:
        return (await self.active_for_residents([resident_id])).get(resident_id)

    async def active_for_residents(self, resident_ids: Iterable[str]) -> dict[str, BookingView]:
        """Each resident's active booking (those with one), in one read."""
        wanted = sorted(set(resident_ids))
        if not wanted:
            return {}
        async with self._db.transaction() as session:
            found = list(
                await session.execute(
                    select(Booking, Station.slot_minutes)
                    .join(Station, Station.id == Booking.station_id)
                    .where(
                        Booking.resident_id.in_(wanted),
                        Booking.status.in_(ACTIVE_STATUSES),
                    )
                )
            )
            if not found:
                return {}
            names = await load_battery_names(session, {row.station_id for row, _slot in found})
        return {row.resident_id: BookingView.of(row, slot, names) for row, slot in found}

    # -- booking ---------------------------------------------------------------------------

    async def book(
        self,
        resident_id: str,
        station_id: str,
        window_start: datetime,
        origin: tuple[float, float] | None = None,
        walk_m: int | None = None,
    ) -> BookingView:
        """Claim a place: never beyond capacity, one active booking per resident. `origin`,
        the (lat, lon) the resident asked from, or `walk_m`, the walk an option already
        measured (a LINE postback's), keeps the walk for the after-action reports.

        Raises NotFound (station), Invalid (not a bookable window start: misaligned, past,
        outside hours or beyond the horizon), Conflict `already_booked` / `window_full`.
        """
        now = self._clock()
        station = await self._station(station_id)
        self._check_window(station, window_start, now)
        if self._queue is None:
            self._start()
        assert self._queue is not None
        future: asyncio.Future[BookingView] = asyncio.get_running_loop().create_future()
        if origin is not None:
            walk_m = round(walking_metres(*origin, station.latitude, station.longitude))
        self._queue.put_nowait(_Pending(resident_id, station, window_start, future, walk_m))
        return await future

    async def cancel(self, booking_id: str) -> BookingView:
        """Cancel an active booking: its place goes back at once and the display clears.

        Cancelling a cancelled booking returns it unchanged; any other finished booking
        (checked in, moved, no-show ...) is a Conflict `not_active`.
        """
        now = self._clock()
        async with self._db.transaction() as session:
            row = await session.get(Booking, booking_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no booking {booking_id}")
            slot = await session.scalar(
                select(Station.slot_minutes).where(Station.id == row.station_id)
            )
            names = await load_battery_names(session, [row.station_id])
            if row.status == "cancelled":
                return BookingView.of(row, slot or self._settings.slot_minutes, names)
            if row.status != "active":
                raise Conflict(f"booking {booking_id} is {row.status}", code="not_active")
            row.status = "cancelled"
            row.updated_at = now
            await upkeep.release(session, row)
            address = await self._address(session, row.unit_pk)
            await show(session, address, row.port, CLEAR, now)
        self._woken()
        return BookingView.of(row, slot or self._settings.slot_minutes, names)

    # -- reacting to the ingest and to time -----------------------------------------------

    async def on_changes(self, changes: ChangeSet) -> None:
        """Ingest listener: refresh what changed, see check-ins, move what lost its port,
        restore what a station back in sight can take again.

        A fault a device reported moves at once only the bookings whose window starts
        within `move_grace_s`; the rest wait for `relocate_due`. Bookings at stations we
        merely lost sight of are held there (`upkeep`), and move only after
        `offline_move_after_s`: a gateway that only blinked (a network drop, a broker
        restart) is back long before, and nobody was moved or told for nothing.
        """
        if changes.station_ids:
            self._snapshot.invalidate(changes.station_ids)
        await upkeep.check_ins(self._db, changes, self._settings)
        back = await upkeep.rising_stations(self._db, changes)
        if back:
            await self.restore(back)
        falling = await upkeep.falling_stations(self._db, changes)
        if not falling:
            return
        if changes.decided or not self._move_grace:
            await self.relocate(falling.reported | falling.unseen)
            return
        now = self._clock()
        await losses.note(self._db, falling.reported | falling.unseen, now)
        if falling.reported:
            await self.relocate(falling.reported, before=now + self._move_grace)

    async def relocate_due(self, now: datetime | None = None) -> list[str]:
        """Timers: move what stations that lost capacity a grace ago (or held bookings for
        `offline_move_after_s`) still cannot honour, and restore what came back; moved ids."""
        now = now or self._clock()
        everywhere = self._started is not None and now - self._started >= self._move_grace
        due, leased_until = await losses.claim_due(self._db, now, self._move_grace)
        overdue = await upkeep.overdue_holds(self._db, self._settings, now)
        moved: list[str] = []
        if everywhere or due or overdue:
            moved = await self.relocate(None if everywhere else {*due, *overdue})
        # only now: a failed attempt leaves the rows to be claimed again once the lease ends
        await losses.forget(self._db, due, leased_until)
        if everywhere:
            self._started = None
        await self.restore()
        return moved

    async def relocate(
        self, station_ids: Iterable[str] | None = None, before: datetime | None = None
    ) -> list[str]:
        """Move bookings these stations (or all) can no longer honour; ids of the moved.

        `before`: only bookings whose window starts before it.
        """
        return await self._retrying(lambda c: upkeep.relocate(c, station_ids, before))

    async def restore(self, station_ids: Iterable[str] | None = None) -> list[str]:
        """Reinstate bookings released while these stations (or any) were out of sight, if
        they are back in time (`upkeep.restore`); ids of the restored."""
        wanted = None if station_ids is None else set(station_ids)
        if wanted is not None:
            await self._retrying(lambda c: upkeep.unhold(c, wanted))
        return await self._retrying(lambda c: upkeep.restore(c, wanted))

    async def _retrying(self, step: Callable[[upkeep.Context], Awaitable[_T]]) -> _T:
        """Run an upkeep step, again if it raced another transaction; wake the link after."""
        context = upkeep.Context(self._db, self._settings, self._clock, self._rng, self._snapshot,
                                 await self._hold_rules())  # fmt: skip
        failed = 0
        while True:
            try:
                done = await step(context)
            except DBAPIError:
                failed += 1
                if failed == RETRIES:
                    raise
                log.warning("booking upkeep raced another transaction; retrying", exc_info=True)
                continue
            self._woken()
            return done

    async def release_no_shows(self, now: datetime | None = None) -> list[str]:
        """Bookings past their grace without check-in become no-shows; ids released."""
        released = await upkeep.release_no_shows(self._db, self._settings, now or self._clock())
        self._woken()
        return released

    async def close(self) -> None:
        if self.batches is not None:
            await self.batches.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._queue = None
        while self._idle:
            await self._idle.pop().close()
        await self._snapshot.close()

    # -- inside ----------------------------------------------------------------------------

    def _woken(self) -> None:
        """Tell the MQTT link that display commands are waiting (it also polls)."""
        if self._wake is not None:
            self._wake()

    async def _station(self, station_id: str) -> StationView:
        station = (await self._snapshot.get()).get(station_id)
        if station is None:  # registered after the snapshot was taken?
            station = (await self._snapshot.fresh([station_id])).get(station_id)
        if station is None:
            raise NotFound(f"no station {station_id}")
        return station

    def _check_window(self, station: StationView, window_start: datetime, now: datetime) -> None:
        if window_start.tzinfo is None:
            raise Invalid("window_start: a time zone is required")
        window_start = window_start.astimezone(UTC)
        if window_start < now:
            raise Invalid("window_start: the window has started or passed")
        if window_start >= now + self._horizon:
            raise Invalid("window_start: beyond the booking horizon")
        one_slot = timedelta(minutes=station.slot_minutes)
        if window_starts(station, window_start, one_slot) != [window_start]:
            raise Invalid("window_start: not a window of this station (slot grid or hours)")

    def invalidate_stations(self) -> None:
        """Stations came or went (a drill's twins): the next read reloads them all."""
        self._snapshot.invalidate()

    def _ranker_for(self, views: Mapping[str, StationView]) -> Ranker:
        if self._ranker is None or self._ranker[0] is not views:
            self._ranker = (views, Ranker(apart(views.values(), None)))
        return self._ranker[1]

    async def _address(self, session: AsyncSession, unit_pk: int) -> PortAddress:
        if unit_pk not in self._addresses:
            self._addresses.update(await load_port_addresses(session, [unit_pk]))
        return self._addresses[unit_pk]

    def _start(self) -> None:
        self._queue = asyncio.Queue()
        self._tasks = [asyncio.create_task(self._write()) for _ in range(self._writers)]

    async def _write(self) -> None:
        """A writer: take whatever is queued (up to max_batch) and claim it in one go."""
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            while len(batch) < self._max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._settle(batch)
            except Exception as exc:  # never let the writer die with requests waiting
                log.exception("booking batch failed")
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)

    async def _settle(self, batch: list[_Pending]) -> None:
        assert self._queue is not None
        now_batch: list[_Pending] = []
        residents: set[str] = set()
        for pending in batch:
            if pending.future.done():
                continue  # the caller went away
            if pending.resident_id in residents:
                self._queue.put_nowait(pending)  # same resident twice: decide in order
                continue
            residents.add(pending.resident_id)
            now_batch.append(pending)
        if not now_batch:
            return
        try:
            outcomes: list[BookingView | Exception] = [*await self._claim(now_batch)]
        except (DBAPIError, LoadConflict, ClaimFailed):
            log.info("batch of %d failed; claiming one by one", len(now_batch), exc_info=True)
            outcomes = [await self._claim_alone(p) for p in now_batch]
        self._woken()
        for pending, outcome in zip(now_batch, outcomes, strict=True):
            if pending.future.done():
                continue
            if isinstance(outcome, BookingView):
                pending.future.set_result(outcome)
            else:
                pending.future.set_exception(outcome)

    async def _claim_alone(self, pending: _Pending) -> BookingView | Exception:
        last: Exception = RuntimeError("unreachable")
        for _attempt in range(RETRIES):
            try:
                return (await self._claim([pending]))[0]
            except (DBAPIError, LoadConflict, ClaimFailed) as exc:
                last = exc
                if await self.active_for_resident(pending.resident_id) is not None:
                    return Conflict("the resident has an active booking", code="already_booked")
        return last

    async def _claim(self, batch: list[_Pending]) -> list[BookingView | ServerError]:
        """One transaction for the whole batch (see `claims` for the protocol)."""
        if not self._db.is_sqlite:
            return await self._claim_pg(batch)
        now = self._clock()
        stations = {p.station.id: p.station for p in batch}
        rules = await self._hold_rules()
        async with self._db.transaction() as session:
            active = set(
                await session.scalars(
                    select(Booking.resident_id).where(
                        Booking.resident_id.in_([p.resident_id for p in batch]),
                        Booking.status.in_(ACTIVE_STATUSES),
                    )
                )
            )
            eligible = [p for p in batch if p.resident_id not in active]
            priority = await priority_among(session, [p.resident_id for p in eligible])
            await lock_stations(session, {p.station.id for p in eligible})
            keys = {(p.station.id, p.window_start) for p in eligible}
            loads = await read_claim_loads(session, keys, now - _longest_slot(stations.values()))
            before = {sid: dict(windows) for sid, windows in loads.items()}
            taken, priority_taken = await read_taken(session, keys)
            used = priority_taken if holding(rules, stations.values()) else None
            outcomes, added = self._decide(batch, active, stations, loads, taken, now,
                                           rules, priority, used)  # fmt: skip
            views = [v for v in outcomes if isinstance(v, BookingView)]
            if views:
                capacity = {k: before.get(k[0], {}).get(k[1], 0) + n for k, n in added.items()}
                await write_loads(session, added, before, capacity)
                await session.execute(
                    insert(cast(Table, Booking.__table__)), [_row(v) for v in views]
                )
                missing = {v.unit_pk for v in views} - self._addresses.keys()
                if missing:
                    self._addresses.update(await load_port_addresses(session, missing))
                await show_many(
                    session,
                    [(self._addresses[v.unit_pk], v.port, v.ticket_code) for v in views],
                    now,
                )
        return outcomes

    async def _claim_pg(self, batch: list[_Pending]) -> list[BookingView | ServerError]:
        """`_claim` on PostgreSQL: the same protocol in three statements on asyncpg.

        Writers keep their pooled connections between batches (`_idle`): checking one out
        and back in costs more than a small batch's statements. A connection that saw an
        error goes back to the pool instead.
        """
        now = self._clock()
        stations = {p.station.id: p.station for p in batch}
        rules = await self._hold_rules()
        units = {port.unit_pk for s in stations.values() for port in s.ports}
        if units - self._addresses.keys():
            async with self._db.transaction() as session:
                self._addresses.update(await load_port_addresses(session, units))
        connection = self._idle.pop() if self._idle else await self._db.engine.connect()
        try:
            conn: Any = (await connection.get_raw_connection()).driver_connection
            async with conn.transaction():
                active, priority = await pg_lock(conn, [p.resident_id for p in batch],
                                                 stations.keys())  # fmt: skip
                keys = {(p.station.id, p.window_start) for p in batch
                        if p.resident_id not in active}  # fmt: skip
                since = now - _longest_slot(stations.values())
                loads, taken, used = await pg_read(conn, keys, since)
                before = {sid: dict(windows) for sid, windows in loads.items()}
                outcomes, added = self._decide(batch, active, stations, loads, taken, now,
                                               rules, priority, used)  # fmt: skip
                views = [v for v in outcomes if isinstance(v, BookingView)]
                if views:
                    capacity = {k: before.get(k[0], {}).get(k[1], 0) + n for k, n in added.items()}
                    displays = [
                        (uuid.uuid4().hex, self._addresses[v.unit_pk].gw_id,
                         self._addresses[v.unit_pk].unit)
                        for v in views
                    ]  # fmt: skip
                    rows = [_row(v) for v in views]
                    await pg_write(conn, added, before, capacity, rows, displays, now)
        except BaseException as exc:
            await connection.close()
            if type(exc).__module__.startswith("asyncpg"):
                raise ClaimFailed(str(exc)) from exc
            raise
        self._idle.append(connection)
        return outcomes

    def _decide(
        self,
        batch: list[_Pending],
        active: set[str],
        stations: Mapping[str, StationView],
        loads: dict[str, dict[datetime, int]],
        taken: Mapping[tuple[str, datetime], set[tuple[int, int]]],
        now: datetime,
        rules: Rules,
        priority: Collection[str],
        priority_booked: Mapping[tuple[str, datetime], int] | None,
    ) -> tuple[list[BookingView | ServerError], Counter[tuple[str, datetime]]]:
        """Outcomes in batch order (`allot` decides the ports, never a place held back from
        a resident without `priority`) and the places added."""
        eligible = [p for p in batch if p.resident_id not in active]
        wants = [
            Want(p.station.id, p.window_start,
                 held_from(rule_for(rules, p.station), p.station, p.window_start, now,
                           p.resident_id in priority),
                 p.resident_id in priority)
            for p in eligible
        ]  # fmt: skip
        ports = iter(allot(wants, stations, loads, taken, self._settings.energy_per_phone_wh,
                           priority_booked))  # fmt: skip
        outcomes: list[BookingView | ServerError] = []
        added: Counter[tuple[str, datetime]] = Counter()
        for pending in batch:
            if pending.resident_id in active:
                outcomes.append(
                    Conflict("the resident has an active booking", code="already_booked")
                )
                continue
            port = next(ports)
            if port is None:
                outcomes.append(Conflict("the window is full", code="window_full"))
                continue
            added[(pending.station.id, pending.window_start)] += 1
            slot = timedelta(minutes=pending.station.slot_minutes)
            outcomes.append(BookingView(
                id=uuid.uuid4().hex, resident_id=pending.resident_id,
                station_id=pending.station.id, window_start=pending.window_start,
                window_end=pending.window_start + slot, unit_pk=port.unit_pk,
                port=port.port, status="active", ticket_code=ticket_code(self._rng),
                created_at=now, updated_at=now, moved_from_id=None,
                place=port_place(pending.station.batteries, port.unit_pk, port.port),
                walk_m=pending.walk_m, priority=pending.resident_id in priority,
            ))  # fmt: skip
        return outcomes, added


DERIVED: Final = frozenset({"window_end", "place"})
"""BookingView fields that are not columns of `bookings`."""


def _row(view: BookingView) -> dict[str, Any]:
    """The `bookings` row of a new booking, for a bulk INSERT."""
    return {f.name: getattr(view, f.name) for f in fields(view) if f.name not in DERIVED}


def _longest_slot(stations: Iterable[StationView]) -> timedelta:
    return timedelta(minutes=max((s.slot_minutes for s in stations), default=30))
