"""Claiming places in station windows: the one protocol that makes overbooking impossible.

Every path that adds bookings (a batch of new bookings, a move) claims the same way, inside
its transaction:

1. lock the stations involved, in id order (PostgreSQL `FOR NO KEY UPDATE`, which leaves
   foreign-key checks alone; SQLite holds the database write lock from `BEGIN IMMEDIATE`).
   Per station rather than per window, because the energy bound spans all of a station's
   windows: two processes booking different windows of one station must not both spend its
   last phone's worth of energy;
2. read the station's upcoming window loads and the ports already taken;
3. `allot` (pure) decides who gets which port, never a place held back from the resident
   (`holdback`: a want carries the places held from it, and priority bookings use them);
4. write the loads with a conditional UPDATE (`booked + n <= capacity`) or INSERT.

The partial unique indexes on `bookings` stay the last word: even a wrong allotment could
not put two active bookings on one port in one window or give a resident two.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Integer,
    String,
    Table,
    column,
    func,
    insert,
    select,
    tuple_,
    update,
    values,
)
from sqlalchemy.ext.asyncio import AsyncSession

from server.booking.capacity import PortView, StationView, assign_port, window_capacity
from server.booking.holdback import Rules, holding, places_for_anyone, still_held
from server.db.models import ACTIVE_BOOKING, Booking, Station, UtcDateTime, WindowLoad

ACTIVE_STATUSES = ("active", "checked_in")
"""The statuses `ACTIVE_BOOKING` (the partial unique indexes) counts."""
assert "active" in str(ACTIVE_BOOKING) and "checked_in" in str(ACTIVE_BOOKING)

WindowKey = tuple[str, datetime]
Loads = dict[str, dict[datetime, int]]
"""Booked places per station, per upcoming window."""


@dataclass(frozen=True, slots=True)
class Want:
    """One request for a place in a station window."""

    station_id: str
    window_start: datetime
    held: int = 0
    """Places of the window held back from this want (`holdback.held_from`): 0 for a
    priority resident's, and once the window's held places are released."""
    priority: bool = False
    """A priority resident's: a grant uses up one of the window's held places."""


def allot(
    wants: Sequence[Want],
    stations: Mapping[str, StationView],
    loads: Loads,
    taken: Mapping[WindowKey, Collection[tuple[int, int]]],
    energy_per_phone_wh: float,
    priority_booked: Mapping[WindowKey, int] | None = None,
) -> list[PortView | None]:
    """A port for each want in order, or None when its window is full (ports or energy), or
    full but for the places held back from it.

    `loads` holds upcoming windows only (energy already reflects phones charged), either
    each of them or the wanted ones plus `REST`; it is updated in place with every grant,
    and `taken` and `priority_booked` (priority bookings per window) are copied and extended.
    """
    taken_now: dict[WindowKey, set[tuple[int, int]]] = defaultdict(set)
    for key, ports in taken.items():
        taken_now[key].update(ports)
    priority_now = Counter(priority_booked or {})
    granted: list[PortView | None] = []
    for want in wants:
        station = stations[want.station_id]
        booked = loads.setdefault(want.station_id, {})
        windows = [*booked.keys(), want.window_start]
        places = window_capacity(station, booked, windows, energy_per_phone_wh)
        port = None
        key = (want.station_id, want.window_start)
        if places[want.window_start] - still_held(want.held, priority_now[key]) > 0:
            port = assign_port(station, taken_now[key])
        if port is not None:
            booked[want.window_start] = booked.get(want.window_start, 0) + 1
            taken_now[key].add((port.unit_pk, port.port))
            priority_now[key] += want.priority
        granted.append(port)
    return granted


async def lock_stations(session: AsyncSession, station_ids: Iterable[str]) -> None:
    """Serialise claims per station across processes (a no-op lock on SQLite, see above)."""
    if session.get_bind().dialect.name == "sqlite":
        return
    wanted = sorted(set(station_ids))
    if wanted:
        query = select(Station.id).where(Station.id.in_(wanted)).order_by(Station.id)
        await session.execute(query.with_for_update(key_share=True))


async def read_loads(session: AsyncSession, station_ids: Iterable[str], since: datetime) -> Loads:
    """Booked places per window starting at or after `since`, for these stations."""
    loads: Loads = defaultdict(dict)
    query = select(WindowLoad.station_id, WindowLoad.window_start, WindowLoad.booked).where(
        WindowLoad.station_id.in_(sorted(set(station_ids))), WindowLoad.window_start >= since
    )
    for station_id, start, booked in await session.execute(query):
        loads[station_id][start] = booked
    return loads


REST = datetime(1970, 1, 1, tzinfo=UTC)
"""Stands for "all the station's other upcoming windows" in the loads `read_claim_loads`
returns: only their sum matters to the energy bound, so they need not be read one by one."""


async def read_claim_loads(
    session: AsyncSession, keys: Collection[WindowKey], since: datetime
) -> Loads:
    """The loads a claim needs: the wanted windows' own, and the rest summed under `REST`.

    Two small queries instead of every upcoming window of every station in the batch.
    Windows that started at or after `since` count as upcoming (a little conservative for
    a window that has just ended).
    """
    loads: Loads = defaultdict(dict)
    if not keys:
        return loads
    exact = select(WindowLoad.station_id, WindowLoad.window_start, WindowLoad.booked).where(
        tuple_(WindowLoad.station_id, WindowLoad.window_start).in_(sorted(keys))
    )
    for station_id, start, booked in await session.execute(exact):
        loads[station_id][start] = booked
    totals = (
        select(WindowLoad.station_id, func.sum(WindowLoad.booked))
        .where(
            WindowLoad.station_id.in_(sorted({k[0] for k in keys})),
            WindowLoad.window_start >= since,
        )
        .group_by(WindowLoad.station_id)
    )
    for station_id, total in await session.execute(totals):
        windows = loads[station_id]
        windows[REST] = max(0, int(total or 0) - sum(windows.values()))
    return loads


async def read_taken(
    session: AsyncSession, keys: Collection[WindowKey]
) -> tuple[dict[WindowKey, set[tuple[int, int]]], Counter[WindowKey]]:
    """Ports held by active bookings in these windows, and how many of those bookings are
    priority ones (they use the windows' held places), in one read."""
    taken: dict[WindowKey, set[tuple[int, int]]] = defaultdict(set)
    priority: Counter[WindowKey] = Counter()
    if not keys:
        return taken, priority
    query = select(
        Booking.station_id, Booking.window_start, Booking.unit_pk, Booking.port, Booking.priority
    ).where(
        tuple_(Booking.station_id, Booking.window_start).in_(sorted(keys)),
        Booking.status.in_(ACTIVE_STATUSES),
    )
    for station_id, start, unit_pk, port, is_priority in await session.execute(query):
        taken[(station_id, start)].add((unit_pk, port))
        if is_priority:
            priority[(station_id, start)] += 1
    return taken, priority


async def read_priority_loads(
    session: AsyncSession, station_ids: Iterable[str], since: datetime
) -> Loads:
    """Active priority bookings per window starting at or after `since` (`read_loads`'s
    shape), for what residents are shown (`holdback.open_places`)."""
    loads: Loads = defaultdict(dict)
    wanted = sorted(set(station_ids))
    if not wanted:
        return loads
    query = (
        select(Booking.station_id, Booking.window_start, func.count())
        .where(
            Booking.station_id.in_(wanted),
            Booking.window_start >= since,
            Booking.status.in_(ACTIVE_STATUSES),
            Booking.priority.is_(True),
        )
        .group_by(Booking.station_id, Booking.window_start)
    )
    for station_id, start, n in await session.execute(query):
        loads[station_id][start] = n
    return loads


@dataclass(frozen=True, slots=True)
class Held:
    """The stations holding places back for priority residents, and those residents'
    bookings there: what anyone else may take is the places less what is still held."""

    rules: Rules
    stations: Sequence[StationView]
    booked: Loads

    def open_to_anyone(
        self, places: Mapping[str, dict[datetime, int]], now: datetime
    ) -> Mapping[str, dict[datetime, int]]:
        """`places` as a resident without priority may take them (`places` itself where no
        station holds any)."""
        if not self.stations:
            return places
        return {**places, **places_for_anyone(self.rules, self.stations, places, self.booked,
                                              now)}  # fmt: skip


async def read_held(
    session: AsyncSession, rules: Rules, stations: Sequence[StationView], since: datetime
) -> Held:
    """Which of `stations` hold places back, and the priority bookings of their windows
    from `since` (no query where none holds any)."""
    holds = holding(rules, stations)
    return Held(rules, holds, await read_priority_loads(session, (s.id for s in holds), since))


async def write_loads(
    session: AsyncSession,
    added: Mapping[WindowKey, int],
    before: Loads,
    capacity: Mapping[WindowKey, int],
) -> None:
    """Add the granted places: one conditional UPDATE for the rows that exist, INSERTs else.

    The condition re-states the capacity the allotment used, so a claim that somehow read
    stale loads fails loudly (`LoadConflict`, the transaction rolls back) instead of
    overbooking; a concurrent INSERT of the same new window fails on the primary key.
    """
    updates = []
    inserts = []
    for (station_id, start), n in sorted(added.items()):
        if n <= 0:
            continue
        if start in before.get(station_id, {}):
            updates.append((station_id, start, n, capacity[(station_id, start)]))
        else:
            inserts.append({"station_id": station_id, "window_start": start, "booked": n})
    table = cast(Table, WindowLoad.__table__)
    if updates and session.get_bind().dialect.name == "sqlite":
        for station_id, start, n, cap in updates:  # in-process: one statement each is cheap
            result = await session.execute(
                update(table)
                .where(
                    table.c.station_id == station_id,
                    table.c.window_start == start,
                    table.c.booked + n <= cap,
                )
                .values(booked=table.c.booked + n)
            )
            if cast(CursorResult[Any], result).rowcount != 1:
                raise LoadConflict(station_id, start)
    elif updates:  # PostgreSQL: one round trip for the whole batch
        rows = values(
            column("s", String), column("w", UtcDateTime), column("n", Integer),
            column("cap", Integer), name="claims",
        ).data(updates)  # fmt: skip
        claimed = await session.execute(
            update(table)
            .where(
                table.c.station_id == rows.c.s,
                table.c.window_start == rows.c.w,
                table.c.booked + rows.c.n <= rows.c.cap,
            )
            .values(booked=table.c.booked + rows.c.n)
            .returning(table.c.station_id)
        )
        if len(claimed.all()) != len(updates):
            raise LoadConflict(updates[0][0], updates[0][1])
    if inserts:
        await session.execute(insert(table), inserts)


async def release_load(session: AsyncSession, station_id: str, window_start: datetime) -> None:
    """One place back (cancel, no-show, move); never below zero."""
    await session.execute(
        update(WindowLoad)
        .where(
            WindowLoad.station_id == station_id,
            WindowLoad.window_start == window_start,
            WindowLoad.booked > 0,
        )
        .values(booked=WindowLoad.booked - 1)
    )


class LoadConflict(Exception):
    """A window's load changed under a claim: the transaction is rolled back and retried."""

    def __init__(self, station_id: str, window_start: datetime) -> None:
        super().__init__(f"load of {station_id} at {window_start.isoformat()} changed")
        self.station_id = station_id
        self.window_start = window_start


def places_left(
    station: StationView,
    booked: Mapping[datetime, int],
    bookable: Sequence[datetime],
    energy_per_phone_wh: float,
) -> dict[datetime, int]:
    """Places left in each bookable window, the energy bound counting every upcoming one."""
    windows = sorted({*booked.keys(), *bookable})
    left = window_capacity(station, booked, windows, energy_per_phone_wh)
    return {w: left[w] for w in bookable}


# -- PostgreSQL: the same protocol in three statements on the driver connection -------------
#
# A burst's claims are the hot path: SQLAlchemy's per-statement overhead and one round trip
# per step made the batch transaction ~11 round trips. On PostgreSQL the claim talks to
# asyncpg directly (statements prepared once per connection, arrays instead of bulk
# parameter lists): the lock and the resident check, one read of loads and taken ports, and
# one write of loads, bookings and display commands, between BEGIN and COMMIT. The lock
# stays a statement of its own: the reads that follow must see what was committed while it
# waited (READ COMMITTED takes a snapshot per statement).

PG_LOCK = """
SELECT 'a' AS kind, resident_id AS id FROM bookings
 WHERE resident_id = ANY($1::text[]) AND status IN ('active', 'checked_in')
UNION ALL
SELECT 'p', resident_id FROM priority_residents WHERE resident_id = ANY($1::text[])
UNION ALL
SELECT 's', id FROM (SELECT id FROM stations WHERE id = ANY($2::text[])
                     ORDER BY id FOR NO KEY UPDATE) locked
"""
"""Residents with an active booking (a), those granted priority (p); locks the stations in
id order (s)."""

PG_READ = """
WITH keys AS (SELECT * FROM unnest($1::text[], $2::timestamptz[]) AS k(s, w))
SELECT 0 AS kind, l.station_id, l.window_start, l.booked AS n, 0 AS unit_pk, 0 AS port
  FROM window_loads l JOIN keys ON l.station_id = keys.s AND l.window_start = keys.w
UNION ALL
SELECT 1, station_id, NULL, SUM(booked)::int, 0, 0 FROM window_loads
 WHERE station_id = ANY($3::text[]) AND window_start >= $4 GROUP BY station_id
UNION ALL
SELECT 2, b.station_id, b.window_start, b.priority::int, b.unit_pk, b.port
  FROM bookings b JOIN keys ON b.station_id = keys.s AND b.window_start = keys.w
 WHERE b.status IN ('active', 'checked_in')
"""
"""The wanted windows' loads (0), each station's upcoming total (1), taken ports (2, with
1 in `n` for a priority booking's)."""

PG_WRITE = """
WITH claimed AS (
  UPDATE window_loads l SET booked = l.booked + c.n
    FROM unnest($1::text[], $2::timestamptz[], $3::int[], $4::int[]) AS c(s, w, n, cap)
   WHERE l.station_id = c.s AND l.window_start = c.w AND l.booked + c.n <= c.cap
  RETURNING 1
), opened AS (
  INSERT INTO window_loads (station_id, window_start, booked)
  SELECT * FROM unnest($5::text[], $6::timestamptz[], $7::int[])
), booked AS (
  INSERT INTO bookings (id, resident_id, station_id, window_start, unit_pk, port, status,
                        ticket_code, created_at, updated_at, walk_m, priority)
  SELECT id, resident_id, station_id, window_start, unit_pk, port, 'active', code, $15, $15,
         walk_m, priority
    FROM unnest($8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::int[],
                $13::int[], $14::text[], $19::int[], $20::bool[])
      AS b(id, resident_id, station_id, window_start, unit_pk, port, code, walk_m, priority)
), shown AS (
  INSERT INTO commands (cmd_id, gw_id, unit, action, port, value, created_at)
  SELECT cmd_id, gw_id, unit, 'set_display', port, code, $15
    FROM unnest($16::text[], $17::text[], $18::text[], $13::int[], $14::text[])
      AS c(cmd_id, gw_id, unit, port, code)
)
SELECT COUNT(*) FROM claimed
"""
"""Conditional load UPDATEs (counted: all must match), new loads, bookings, displays."""


class ClaimFailed(Exception):
    """The database refused a raw claim (unique index, deadlock ...): rolled back, retried."""


async def pg_lock(
    conn: Any, residents: Sequence[str], station_ids: Iterable[str]
) -> tuple[set[str], set[str]]:
    """Lock the stations (id order); the residents among these with an active booking, and
    those granted priority."""
    rows = await conn.fetch(PG_LOCK, list(residents), sorted(set(station_ids)))
    return ({row["id"] for row in rows if row["kind"] == "a"},
            {row["id"] for row in rows if row["kind"] == "p"})  # fmt: skip


async def pg_read(
    conn: Any, keys: Collection[WindowKey], since: datetime
) -> tuple[Loads, dict[WindowKey, set[tuple[int, int]]], Counter[WindowKey]]:
    """What `read_claim_loads`, `read_taken` and `read_priority_taken` return, in one round
    trip."""
    loads: Loads = defaultdict(dict)
    taken: dict[WindowKey, set[tuple[int, int]]] = defaultdict(set)
    priority: Counter[WindowKey] = Counter()
    if not keys:
        return loads, taken, priority
    ordered = sorted(keys)
    totals: dict[str, int] = {}
    rows = await conn.fetch(
        PG_READ, [k[0] for k in ordered], [k[1] for k in ordered],
        sorted({k[0] for k in ordered}), since,
    )  # fmt: skip
    for kind, station_id, start, n, unit_pk, port in rows:
        if kind == 0:
            loads[station_id][start] = n
        elif kind == 1:
            totals[station_id] = n or 0
        else:
            taken[(station_id, start)].add((unit_pk, port))
            priority[(station_id, start)] += n
    for station_id, total in totals.items():
        windows = loads[station_id]
        windows[REST] = max(0, total - sum(windows.values()))
    return loads, taken, priority


async def pg_write(
    conn: Any,
    added: Mapping[WindowKey, int],
    before: Loads,
    capacity: Mapping[WindowKey, int],
    bookings: Sequence[Mapping[str, Any]],
    displays: Sequence[tuple[str, str, str]],
    now: datetime,
) -> None:
    """`write_loads`, the bookings' INSERT and `show_many` in one statement.

    `displays` holds (cmd_id, gw_id, unit) per booking, in the same order.
    """
    updates = [(k, n) for k, n in sorted(added.items()) if n > 0 and k[1] in before.get(k[0], {})]
    inserts = [
        (k, n) for k, n in sorted(added.items()) if n > 0 and k[1] not in before.get(k[0], {})
    ]
    claimed = await conn.fetchval(
        PG_WRITE,
        [k[0] for k, _ in updates], [k[1] for k, _ in updates], [n for _, n in updates],
        [capacity[k] for k, _ in updates],
        [k[0] for k, _ in inserts], [k[1] for k, _ in inserts], [n for _, n in inserts],
        [b["id"] for b in bookings], [b["resident_id"] for b in bookings],
        [b["station_id"] for b in bookings], [b["window_start"] for b in bookings],
        [b["unit_pk"] for b in bookings], [b["port"] for b in bookings],
        [b["ticket_code"] for b in bookings], now,
        [d[0] for d in displays], [d[1] for d in displays], [d[2] for d in displays],
        [b["walk_m"] for b in bookings], [b["priority"] for b in bookings],
    )  # fmt: skip
    if claimed != len(updates):
        (station_id, start), _n = updates[0]
        raise LoadConflict(station_id, start)
