"""Keeping bookings true to the world: check-ins, moves when capacity falls, no-shows.

Thin database code around the pure rules (`capacity.displaced` and `held`,
`moves.move_targets` and `restorable`): each step reads what it needs, asks the core, and
writes in one transaction. Moves and restorations claim their place with the same protocol
as new bookings (`claims`), so neither can overbook any more than a booking can.

Priority residents' bookings displaced by a loss move first (`moves.priority_first`) and
may take places held back for priority (`holdback`); the others' moves may not.

A station out of sight keeps its bookings (`held_since` marks them, and the crew is told);
they move only once held `offline_move_after_s`, and those cancelled then come back if the
station does while their window is still ahead (`restore`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.booking.capacity import (
    HEALTHY,
    Placement,
    PortView,
    StationView,
    apart,
    displaced,
    held,
    window_starts,
)
from server.booking.claims import (
    ACTIVE_STATUSES,
    Loads,
    Want,
    allot,
    lock_stations,
    places_left,
    read_held,
    read_loads,
    read_taken,
    release_load,
    write_loads,
)
from server.booking.displays import CLEAR, show
from server.booking.holdback import Rules, held_from, rule_for
from server.booking.moves import (
    CREW,
    NOTIFY_CANCELLED,
    NOTIFY_CHECKED_IN,
    NOTIFY_COMPLETED,
    NOTIFY_HELD,
    NOTIFY_MOVED,
    NOTIFY_RESTORED,
    RELEASED_UNSEEN,
    Released,
    free_table,
    move_targets,
    priority_first,
    restorable,
)
from server.booking.ranking import Ranker
from server.booking.views import StationSnapshot, load_port_addresses
from server.db.models import Booking, Notification, Station, Unit
from server.db.session import Database
from server.ingest.changeset import ChangeSet
from server.ingest.live import OFFLINE
from server.priority.grants import priority_among
from server.settings import Settings

MAX_WALK_MIN = 60.0


@dataclass(frozen=True, slots=True)
class Context:
    db: Database
    settings: Settings
    clock: Any
    rng: random.Random
    snapshot: StationSnapshot
    rules: Rules = field(default_factory=dict)
    """Municipalities' hold-back (`holdback`)."""


def upcoming(loads: Loads, stations: Mapping[str, StationView], now: datetime) -> Loads:
    """Only windows not yet over: earlier phones are already in the batteries' SoC."""
    out: Loads = {}
    for station_id, windows in loads.items():
        station = stations.get(station_id)
        if station is None:
            continue
        slot = timedelta(minutes=station.slot_minutes)
        out[station_id] = {w: n for w, n in windows.items() if w + slot > now}
    return out


def places(
    station: StationView,
    booked: Mapping[datetime, int],
    now: datetime,
    horizon: timedelta,
    settings: Settings,
    also: Iterable[datetime] = (),
) -> dict[datetime, int]:
    """Places left in the station's bookable windows (and `also`, e.g. a started window)."""
    slot = timedelta(minutes=station.slot_minutes)
    live = {w: n for w, n in booked.items() if w + slot > now}
    bookable = sorted({*window_starts(station, now, horizon), *also})
    return places_left(station, live, bookable, settings.energy_per_phone_wh)


async def release(session: AsyncSession, row: Booking) -> None:
    """Give a booking's place back to its window."""
    await release_load(session, row.station_id, row.window_start)


# -- check-in ----------------------------------------------------------------------------


ENDED_UNPLUGGED = "unplugged"
ENDED_WINDOW_OVER = "window_over"
"""How a checked-in booking completed (`NOTIFY_COMPLETED`'s `ended`)."""


async def check_ins(db: Database, changes: ChangeSet, settings: Settings) -> int:
    """What a booked port says of its phone, with the residents told (one transaction):
    plugged in during the booking's window checks the booking in; the phone of a checked-in
    booking unplugged there (during or after the window) completes it, so its resident may
    book again. An unplug is a port reporting no phone, not one we lost sight of.

    Returns the bookings checked in.
    """
    plugged = [
        c for c in changes.ports if c.after_occupied and not c.before_occupied and c.station_id
    ]
    unplugged = [
        c for c in changes.ports
        if c.before_occupied and c.after_occupied is False and c.after_status != OFFLINE
        and c.station_id
    ]  # fmt: skip
    if not plugged and not unplugged:
        return 0
    done = 0
    async with db.transaction() as session:
        for change in plugged:
            slot = await session.scalar(
                select(Station.slot_minutes).where(Station.id == change.station_id)
            )
            window = timedelta(minutes=slot or settings.slot_minutes)
            rows = await session.scalars(
                select(Booking)
                .where(
                    Booking.unit_pk == change.unit_pk,
                    Booking.port == change.port,
                    Booking.status == "active",
                    Booking.window_start <= change.at,
                    Booking.window_start > change.at - window,
                )
                .with_for_update()
            )
            for row in rows:
                row.status, row.updated_at = "checked_in", change.at
                _tell(session, NOTIFY_CHECKED_IN, row, change.at)
                done += 1
        for change in unplugged:
            rows = await session.scalars(
                select(Booking)
                .where(
                    Booking.unit_pk == change.unit_pk,
                    Booking.port == change.port,
                    Booking.status == "checked_in",
                    Booking.window_start <= change.at,
                )
                .with_for_update()
            )
            for row in rows:
                row.status, row.updated_at = "completed", change.at
                _tell(session, NOTIFY_COMPLETED, row, change.at, ended=ENDED_UNPLUGGED)
    return done


def _tell(session: AsyncSession, kind: str, row: Booking, now: datetime, **extra: str) -> None:
    """Record that a booking's resident must hear of it (where it is, and `extra`)."""
    session.add(Notification(kind=kind, resident_id=row.resident_id, booking_id=row.id,
                             payload={**place_of(row), **extra}, created_at=now))  # fmt: skip


# -- capacity falls --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Falling:
    """Stations that can take fewer phones than before, by what we know of it."""

    reported: set[str]
    """A device said so: a port faulted or turned off."""
    unseen: set[str]
    """We lost sight of it (gateway offline, battery silent): most likely still charging,
    and back in view within seconds after a network blip or a broker restart."""

    def __bool__(self) -> bool:
        return bool(self.reported or self.unseen)


async def falling_stations(db: Database, changes: ChangeSet) -> Falling:
    """Stations where a port, battery or gateway stopped being able to take phones."""
    reported = {
        c.station_id
        for c in changes.ports
        if c.station_id
        and c.after_status not in HEALTHY
        and c.after_status != OFFLINE
        and c.before_status != c.after_status
    }
    unseen = {
        c.station_id
        for c in changes.ports
        if c.station_id and c.after_status == OFFLINE and c.before_status != OFFLINE
    }
    unseen |= {u.station_id for u in changes.units if u.station_id and not u.online}
    unseen |= await _stations_behind(db, [g.gw_id for g in changes.gateways if g.state != "online"])
    return Falling(reported, unseen)


async def rising_stations(db: Database, changes: ChangeSet) -> set[str]:
    """Stations where a port, battery or gateway we had lost sight of is seen again."""
    back = {
        c.station_id
        for c in changes.ports
        if c.station_id and c.before_status == OFFLINE and c.after_status != OFFLINE
    }
    back |= {u.station_id for u in changes.units if u.station_id and u.online and not u.was_online}
    return back | await _stations_behind(db, [g.gw_id for g in changes.gateways
                                                if g.state == "online"])  # fmt: skip


async def _stations_behind(db: Database, gw_ids: list[str]) -> set[str]:
    """The stations of these gateways' batteries."""
    if not gw_ids:
        return set()
    async with db.transaction() as session:
        found = await session.scalars(
            select(Unit.station_id).where(Unit.gw_id.in_(gw_ids), Unit.station_id.is_not(None))
        )
        return {sid for sid in found if sid}


async def overdue_holds(db: Database, settings: Settings, now: datetime) -> set[str]:
    """Stations with bookings held `offline_move_after_s` or longer: time to move them."""
    cutoff = now - timedelta(seconds=settings.offline_move_after_s)
    async with db.transaction() as session:
        found = await session.scalars(
            select(Booking.station_id)
            .where(Booking.held_since <= cutoff, Booking.status.in_(ACTIVE_STATUSES))
            .distinct()
        )
        return set(found)


async def relocate(
    context: Context, station_ids: Iterable[str] | None, before: datetime | None = None
) -> list[str]:
    """Move every booking its station can no longer honour (one transaction); moved ids.

    `before`: only bookings whose window starts before it (the urgent ones).
    """
    settings = context.settings
    now: datetime = context.clock()
    horizon = timedelta(hours=settings.booking_horizon_h)
    hold_for = timedelta(seconds=settings.offline_move_after_s)
    origins = await context.snapshot.fresh(station_ids) if station_ids is not None else None
    views = dict(await context.snapshot.get())
    if origins is None:
        origins = await context.snapshot.fresh(views.keys())
    views.update(origins)
    rankers: dict[int | None, Ranker] = {}
    moved: list[str] = []
    async with context.db.transaction() as session:
        await lock_stations(session, origins)
        rows = list(
            await session.scalars(
                select(Booking)
                .where(
                    Booking.station_id.in_(sorted(origins)),
                    Booking.status.in_(ACTIVE_STATUSES),
                    Booking.window_start > now - timedelta(hours=4),
                )
                .order_by(Booking.window_start, Booking.id)
                .with_for_update()
            )
        )
        by_id = {r.id: r for r in rows}
        granted = await priority_among(session, [r.resident_id for r in rows])
        priority = {r.id for r in rows if r.priority or r.resident_id in granted}
        leaving: list[tuple[StationView, Placement]] = []
        for station_id, origin in sorted(origins.items()):
            slot = timedelta(minutes=origin.slot_minutes)
            mine = [
                r
                for r in rows
                if r.station_id == station_id
                and r.window_start + slot > now
                and (before is None or r.window_start < before)
            ]
            placements = [
                Placement(r.id, r.window_start, r.unit_pk, r.port, r.held_since) for r in mine
            ]
            out = displaced(origin, placements, settings.energy_per_phone_wh,
                            now=now, hold_for=hold_for)  # fmt: skip
            gone = {b.booking_id for b in out}
            kept = [b for b in placements if b.booking_id not in gone]
            await _hold(session, origin, kept, by_id, now, hold_for)
            leaving.extend((origin, b) for b in out)
        for _origin, b in leaving:  # all at once: none holds a place another may need
            await _vacate(session, by_id[b.booking_id], now)
        for origin, b in priority_first(leaving, priority):
            row = by_id[b.booking_id]
            reason = _reason(origin, row)
            row.released_for = reason
            if origin.drill_id not in rankers:  # moved within its own world
                rankers[origin.drill_id] = Ranker(apart(views.values(), origin.drill_id))
            ranker = rankers[origin.drill_id]
            target = await _move(context, session, row, origin, views, ranker, now, horizon,
                                 row.id in priority)  # fmt: skip
            await _notify(session, row, target, reason, now)
            moved.append(row.id)
    return moved


async def _hold(
    session: AsyncSession,
    station: StationView,
    kept: list[Placement],
    rows: Mapping[str, Booking],
    now: datetime,
    hold_for: timedelta,
) -> None:
    """Mark the kept bookings on ports out of sight held (from now, unless already), unmark
    the others; the crew hears of each station where bookings start being held."""
    on_hold = {b.booking_id for b in held(station, kept)}
    fresh = 0
    for b in kept:
        row = rows[b.booking_id]
        since = (row.held_since or now) if row.id in on_hold else None
        if row.held_since != since:
            fresh += since is not None
            row.held_since = since
    if fresh:
        session.add(Notification(
            kind=NOTIFY_HELD, resident_id=CREW, booking_id=None, created_at=now,
            payload={"station_id": station.id, "held": len(on_hold), "newly_held": fresh,
                     "reason": RELEASED_UNSEEN, "move_after_s": hold_for.total_seconds(),
                     "move_at": (now + hold_for).isoformat()},
        ))  # fmt: skip


async def unhold(context: Context, station_ids: Iterable[str]) -> None:
    """Bookings held at these stations whose ports are seen again are held no longer
    (their clock starts afresh at the next loss); nothing moves here."""
    views = await context.snapshot.fresh(station_ids)
    async with context.db.transaction() as session:
        rows = await session.scalars(
            select(Booking)
            .where(
                Booking.station_id.in_(sorted(views)),
                Booking.held_since.is_not(None),
                Booking.status.in_(ACTIVE_STATUSES),
            )
            .with_for_update()
        )
        for row in rows:
            placement = Placement(row.id, row.window_start, row.unit_pk, row.port)
            if not held(views[row.station_id], [placement]):
                row.held_since = None


async def restore(context: Context, station_ids: Iterable[str] | None) -> list[str]:
    """Reinstate bookings cancelled for `RELEASED_UNSEEN` at these stations (or any) that
    `moves.restorable` allows and capacity still takes, and tell their residents; ids.

    Each claims its place as a new booking would, on whichever port is free (usually its
    own); the ticket code stays, and goes back on the port's display.
    """
    now: datetime = context.clock()
    query = select(Booking).where(
        Booking.released_for == RELEASED_UNSEEN,
        Booking.status == "cancelled",
        Booking.window_start > now,
    )
    if station_ids is not None:
        query = query.where(Booking.station_id.in_(sorted(set(station_ids))))
    async with context.db.transaction() as session:
        candidates = {r.station_id for r in await session.scalars(query)}
    if not candidates:
        return []
    views = await context.snapshot.fresh(candidates)
    if not any(v.healthy_ports for v in views.values()):
        return []
    restored: list[str] = []
    async with context.db.transaction() as session:
        await lock_stations(session, views)
        rows = {r.id: r for r in await session.scalars(query.with_for_update())}
        booked = set(await session.scalars(
            select(Booking.resident_id).where(
                Booking.resident_id.in_(sorted({r.resident_id for r in rows.values()})),
                Booking.status.in_(ACTIVE_STATUSES),
            )
        ))  # fmt: skip
        released = [Released(r.id, r.resident_id, r.station_id, r.window_start, r.updated_at)
                    for r in rows.values()]  # fmt: skip
        for chosen in restorable(released, views, booked, now):
            row = rows[chosen.booking_id]
            port = await _claim(session, views[row.station_id], row.window_start, now,
                                context.settings, context.rules, row.priority)  # fmt: skip
            if port is None:
                continue
            row.status, row.unit_pk, row.port = "active", port.unit_pk, port.port
            row.released_for, row.held_since, row.updated_at = None, None, now
            await session.flush()
            address = (await load_port_addresses(session, [port.unit_pk]))[port.unit_pk]
            await show(session, address, port.port, row.ticket_code, now)
            session.add(Notification(
                kind=NOTIFY_RESTORED, resident_id=row.resident_id, booking_id=row.id,
                payload={"from": None, "to": place_of(row), "reason": "station_back"},
                created_at=now,
            ))  # fmt: skip
            restored.append(row.id)
    return restored


def _reason(origin: StationView, row: Booking) -> str:
    for port in origin.ports:
        if (port.unit_pk, port.port) == (row.unit_pk, row.port):
            return f"port_{port.status}" if not port.healthy else "energy_low"
    return "port_gone"


async def _vacate(session: AsyncSession, row: Booking, now: datetime) -> None:
    """Give a displaced booking's place back and clear its port's display."""
    await release(session, row)
    row.updated_at = now
    old_address = (await load_port_addresses(session, [row.unit_pk]))[row.unit_pk]
    await show(session, old_address, row.port, CLEAR, now)


async def _move(
    context: Context,
    session: AsyncSession,
    row: Booking,
    origin: StationView,
    views: Mapping[str, StationView],
    ranker: Ranker,
    now: datetime,
    horizon: timedelta,
    priority: bool,
) -> Booking | None:
    """Claim the best target that still has room (a held place only for a priority
    resident) for a booking `_vacate` took off its place; None if none."""
    settings = context.settings
    near = [
        views[sid] for _w, sid in ranker.within(origin.latitude, origin.longitude, MAX_WALK_MIN)
    ]
    if origin.id not in {s.id for s in near}:
        near.append(origin)
    slot = timedelta(minutes=origin.slot_minutes)
    since = now - slot * 8
    loads = await read_loads(session, (s.id for s in near), since)
    held = None if priority else await read_held(session, context.rules, near, since)
    places_now: Mapping[str, dict[datetime, int]] = {
        s.id: places(
            s,
            loads.get(s.id, {}),
            now,
            horizon,
            settings,
            also=(row.window_start,) if s.id == origin.id else (),
        )
        for s in near
    }
    if held is not None:
        places_now = held.open_to_anyone(places_now, now)
    free = free_table(near, places_now)
    for target in move_targets(origin, row.window_start, now, free, ranker):
        station = views[target.station_id]
        port = await _claim(session, station, target.window_start, now, settings,
                            context.rules, priority)  # fmt: skip
        if port is None:
            continue
        row.status = "moved"
        await session.flush()  # the old booking leaves the partial unique indexes first
        new = Booking(
            id=uuid.uuid4().hex, resident_id=row.resident_id, station_id=station.id,
            window_start=target.window_start, unit_pk=port.unit_pk, port=port.port,
            status="active", ticket_code=row.ticket_code, created_at=now, updated_at=now,
            moved_from_id=row.id, priority=priority,
        )  # fmt: skip
        session.add(new)
        address = (await load_port_addresses(session, [port.unit_pk]))[port.unit_pk]
        await show(session, address, port.port, new.ticket_code, now)
        return new
    row.status = "cancelled"
    return None


async def _claim(
    session: AsyncSession,
    station: StationView,
    window_start: datetime,
    now: datetime,
    settings: Settings,
    rules: Rules,
    priority: bool,
) -> PortView | None:
    """One place in a station window, claimed as a new booking is (`claims`, held places
    for a priority resident only); None if full."""
    slot = timedelta(minutes=station.slot_minutes)
    await lock_stations(session, [station.id])
    current = await read_loads(session, [station.id], now - slot * 8)
    fresh = upcoming(current, {station.id: station}, now)
    fresh.setdefault(station.id, {})
    before = {station.id: dict(fresh[station.id])}
    key = (station.id, window_start)
    taken, priority_taken = await read_taken(session, {key})
    held = held_from(rule_for(rules, station), station, window_start, now, priority)
    priority_booked = priority_taken if held else None
    [port] = allot([Want(*key, held, priority)], {station.id: station}, fresh, taken,
                   settings.energy_per_phone_wh, priority_booked)  # fmt: skip
    if port is not None:
        cap = before[station.id].get(window_start, 0) + 1
        await write_loads(session, {key: 1}, before, {key: cap})
    return port


def place_of(row: Booking) -> dict[str, Any]:
    """A booking's place, as notifications carry it."""
    return {"booking_id": row.id, "station_id": row.station_id,
            "window_start": row.window_start.isoformat(), "port": row.port,
            "ticket_code": row.ticket_code}  # fmt: skip


async def _notify(
    session: AsyncSession, row: Booking, new: Booking | None, reason: str, now: datetime
) -> None:
    """Record who must be told (the LINE channel delivers it)."""
    source = {"booking_id": row.id, "station_id": row.station_id,
              "window_start": row.window_start.isoformat(), "port": row.port}  # fmt: skip
    session.add(
        Notification(
            kind=NOTIFY_MOVED if new is not None else NOTIFY_CANCELLED,
            resident_id=row.resident_id,
            booking_id=new.id if new is not None else row.id,
            payload={"from": source, "to": place_of(new) if new else None, "reason": reason},
            created_at=now,
        )
    )


# -- no-shows --------------------------------------------------------------------------------


async def release_no_shows(db: Database, settings: Settings, now: datetime) -> list[str]:
    """No check-in `no_show_grace_min` into the window: the place and the port go back.

    Not while the booking is held out of sight (a check-in there could not be seen): only
    once its window is over. Checked-in bookings whose window is over complete, so their
    residents may book again (and are thanked).
    """
    grace = timedelta(minutes=settings.no_show_grace_min)
    released: list[str] = []
    async with db.transaction() as session:
        rows = await session.execute(
            select(Booking, Station.slot_minutes)
            .join(Station, Station.id == Booking.station_id)
            .where(Booking.status.in_(ACTIVE_STATUSES), Booking.window_start < now - grace)
            .with_for_update(of=Booking)
        )
        for row, slot in rows:
            over = row.window_start + timedelta(minutes=slot) <= now
            if row.status == "active" and (row.held_since is None or over):
                row.status = "no_show"
                row.updated_at = now
                await release(session, row)
                address = (await load_port_addresses(session, [row.unit_pk]))[row.unit_pk]
                await show(session, address, row.port, CLEAR, now)
                released.append(row.id)
            elif row.status != "active" and over:
                row.status = "completed"
                row.updated_at = now
                _tell(session, NOTIFY_COMPLETED, row, now, ended=ENDED_WINDOW_OVER)
    return released
