"""Stations as the booking core sees them, loaded from the database, and a cached snapshot.

Why a snapshot: ranking and booking need every station's ports and energy, and reloading
2,000 stations for each request would cost more than the booking itself. The snapshot is a
plain in-process copy, refreshed in the background when older than `ttl_s` and marked dirty
by the ingest's ChangeSets, so its staleness is bounded. It only ever *proposes*: the claim
in the booking transaction (a conditional UPDATE on `window_loads` plus the partial unique
indexes) is the source of truth, and `BookingService.relocate` sweeps bookings off ports that
failed while a snapshot was stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.booking.capacity import PortView, StationView
from server.db.models import Booking, Gateway, Port, Station, Unit
from server.db.session import Database
from server.drills.scope import active_clause
from server.ingest.live import effective_status, gateway_online, is_stale, stale_cutoff

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BookingView:
    """A booking as callers (API, LINE) see it; never a database row."""

    id: str
    resident_id: str
    station_id: str
    window_start: datetime
    window_end: datetime
    unit_pk: int
    port: int
    status: str
    ticket_code: str
    created_at: datetime
    updated_at: datetime
    moved_from_id: str | None
    place: str
    """The port as a crew finds it on site (`port_place`): a station may have two port 1s."""
    walk_m: int | None = None
    """Walking metres from the resident's location, when booked from one."""
    priority: bool = False
    """Booked by a priority resident (`server.booking.holdback`)."""

    @classmethod
    def of(cls, row: Booking, slot_minutes: int, batteries: Mapping[int, str]) -> BookingView:
        """`batteries`: the station's battery names (`load_battery_names`)."""
        return cls(
            id=row.id,
            resident_id=row.resident_id,
            station_id=row.station_id,
            window_start=row.window_start,
            window_end=row.window_start + timedelta(minutes=slot_minutes),
            unit_pk=row.unit_pk,
            port=row.port,
            status=row.status,
            ticket_code=row.ticket_code,
            created_at=row.created_at,
            updated_at=row.updated_at,
            moved_from_id=row.moved_from_id,
            place=port_place(batteries, row.unit_pk, row.port),
            walk_m=row.walk_m,
            priority=bool(row.priority),
        )


@dataclass(frozen=True, slots=True)
class MappedBattery:
    """A battery mapped to a station, with the name a crew finds it by on site."""

    unit_pk: int
    station_id: str
    gw_id: str
    unit: str
    name: str
    """Its number at the station, counting in the order the dashboard lists a station's
    batteries (gateway, then unit), and its bus address: "battery 2 (rs485-1.2)"."""


def name_batteries(units: Iterable[tuple[int, str, str, str]]) -> list[MappedBattery]:
    """Name each of (unit_pk, station_id, gw_id, unit) at its station (`MappedBattery.name`)."""
    by_station: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for unit_pk, station_id, gw_id, unit in units:
        by_station[station_id].append((gw_id, unit, unit_pk))
    return [
        MappedBattery(unit_pk, station_id, gw_id, unit, f"battery {number} ({unit})")
        for station_id, batteries in by_station.items()
        for number, (gw_id, unit, unit_pk) in enumerate(sorted(batteries), 1)
    ]


def port_place(batteries: Mapping[int, str], unit_pk: int, port: int) -> str:
    """A port as a crew finds it, "battery 2 (rs485-1.2) port 3", from the station's battery
    names by unit_pk (a battery unmapped since: just the port)."""
    battery = batteries.get(unit_pk)
    return f"{battery} port {port}" if battery else f"port {port}"


def battery_place(
    names: Mapping[tuple[str, str], str], gw_id: str | None, unit: str | None, port: int | None
) -> str | None:
    """Where an incident is, as a crew finds it: "battery 2 (rs485-1.2) port 3", or just
    the battery; None for a whole gateway. `names` by (gw_id, unit), from `load_batteries`."""
    if gw_id is None or unit is None:
        return None
    battery = names.get((gw_id, unit), f"battery {unit}")
    return battery if port is None else f"{battery} port {port}"


async def load_batteries(
    session: AsyncSession, station_ids: Iterable[str] | None = None
) -> list[MappedBattery]:
    """Every mapped battery (or those of the stations given), named (`name_batteries`)."""
    query = select(Unit.id, Unit.station_id, Unit.gw_id, Unit.unit).where(
        Unit.station_id.is_not(None)
    )
    if station_ids is not None:
        query = query.where(Unit.station_id.in_(sorted(set(station_ids))))
    rows = await session.execute(query)
    return name_batteries((pk, str(station_id), gw, unit) for pk, station_id, gw, unit in rows)


async def load_battery_names(
    session: AsyncSession, station_ids: Iterable[str] | None = None
) -> dict[int, str]:
    """The names of `load_batteries` by unit_pk, as `port_place` takes them."""
    return {b.unit_pk: b.name for b in await load_batteries(session, station_ids)}


@dataclass(frozen=True, slots=True)
class PortAddress:
    """Where a gateway command for a port goes: the unit's gateway and `bus.unit_id`."""

    gw_id: str
    unit: str


YIELD_EVERY = 256
"""Rows of a snapshot load processed between two turns of the event loop: a full reload
(every few seconds, in the background) must not stall the bookings in flight."""


async def load_station_views(
    session: AsyncSession,
    now: datetime,
    report_period_s: float,
    station_ids: Iterable[str] | None = None,
) -> dict[str, StationView]:
    """Every station (or those given) with its ports' effective status and usable energy.

    Two queries: the stations, then their mapped units' ports joined to the gateways.
    """
    wanted = None if station_ids is None else sorted(set(station_ids))
    stations = select(
        Station.id,
        Station.latitude,
        Station.longitude,
        Station.slot_minutes,
        Station.opens_at,
        Station.closes_at,
        Station.drill_id,
        Station.municipality,
    ).where(active_clause())  # an ended drill's twins are gone from every view
    ports = (
        select(
            Unit.station_id,
            Unit.id,
            Unit.online,
            Unit.stale,
            Unit.received_at,
            Unit.soc_pct,
            Unit.rated_wh,
            Gateway.state,
            Gateway.silent,
            Port.port,
            Port.status,
            Port.admin_disabled,
        )
        .join(Port, Port.unit_pk == Unit.id)
        .outerjoin(Gateway, Gateway.gw_id == Unit.gw_id)
        .where(Unit.station_id.is_not(None))
        .order_by(Unit.station_id, Unit.id, Port.port)
    )
    if wanted is not None:
        stations = stations.where(Station.id.in_(wanted))
        ports = ports.where(Unit.station_id.in_(wanted))
    cutoff = stale_cutoff(now, report_period_s)
    names = await load_battery_names(session, wanted)
    port_views: dict[str, list[PortView]] = defaultdict(list)
    energy: dict[str, float] = defaultdict(float)
    unseen: dict[str, float] = defaultdict(float)
    """Last known energy of the batteries out of sight (see `StationView.unseen_wh`)."""
    counted_units: set[int] = set()
    batteries: dict[str, dict[int, str]] = defaultdict(dict)
    for n, row in enumerate(await session.execute(ports), 1):
        if n % YIELD_EVERY == 0:  # thousands of rows: let waiting requests run meanwhile
            await asyncio.sleep(0)
        station_id, unit_pk, online, flagged, received_at, soc, rated = row[:7]
        gw_state, silent, port, status, off = row[7:]
        if station_id is None:
            continue
        stale = is_stale(flagged, received_at, cutoff)
        gw_online = gw_state is not None and gateway_online(gw_state, silent)
        port_views[station_id].append(
            PortView(unit_pk, port, effective_status(status, online, gw_online, stale, off))
        )
        batteries[station_id][unit_pk] = names.get(unit_pk, "")
        usable = online and gw_online and not stale
        if unit_pk not in counted_units and soc is not None and rated is not None:
            counted_units.add(unit_pk)
            (energy if usable else unseen)[station_id] += soc / 100.0 * rated
    return {
        sid: StationView(
            id=sid,
            latitude=lat,
            longitude=lon,
            slot_minutes=slot,
            opens_at=opens,
            closes_at=closes,
            ports=tuple(port_views.get(sid, ())),
            energy_wh=energy.get(sid, 0.0),
            unseen_wh=unseen.get(sid, 0.0),
            batteries=batteries.get(sid, {}),
            drill_id=drill_id,
            municipality=municipality or "",
        )
        for sid, lat, lon, slot, opens, closes, drill_id, municipality in await session.execute(
            stations
        )
    }


async def load_port_addresses(
    session: AsyncSession, unit_pks: Iterable[int]
) -> dict[int, PortAddress]:
    """Gateway and unit name of each battery, to address `set_display` commands."""
    wanted = sorted(set(unit_pks))
    if not wanted:
        return {}
    rows = await session.execute(select(Unit.id, Unit.gw_id, Unit.unit).where(Unit.id.in_(wanted)))
    return {pk: PortAddress(gw_id, unit) for pk, gw_id, unit in rows}


class StationSnapshot:
    """A short-lived in-process copy of every station's view (see the module docstring).

    `get()` returns at once with the current copy (only the very first call, and calls while
    there is no station at all, wait for a load); a copy older than `ttl_s` or marked dirty
    is refreshed by one background task, so no request ever stands behind a reload of 2,000
    stations.
    """

    def __init__(
        self,
        db: Database,
        report_period_s: float,
        clock: Callable[[], datetime],
        ttl_s: float = 5.0,
    ) -> None:
        self._db = db
        self._report_period_s = report_period_s
        self._clock = clock
        self._ttl_s = ttl_s
        self._views: dict[str, StationView] = {}
        self._loaded_at = -float("inf")
        self._dirty: set[str] = set()
        self._refreshing: asyncio.Task[None] | None = None
        self._first: asyncio.Lock = asyncio.Lock()

    async def get(self) -> Mapping[str, StationView]:
        if self._loaded_at == -float("inf") or not self._views:
            # the first read, or no station yet: an empty copy is never served stale (a
            # server started before its registry sees the stations at the first read after)
            async with self._first:
                if self._loaded_at == -float("inf") or not self._views:
                    await self._reload_all()
            return self._views
        if time.monotonic() - self._loaded_at > self._ttl_s or self._dirty:
            self._refresh_in_background()
        return self._views

    async def fresh(self, station_ids: Iterable[str]) -> dict[str, StationView]:
        """These stations straight from the database (for decisions that move bookings)."""
        async with self._db.transaction() as session:
            views = await load_station_views(
                session, self._clock(), self._report_period_s, station_ids
            )
        self._views = {**self._views, **views}
        return views

    def invalidate(self, station_ids: Iterable[str] | None = None) -> None:
        """Mark stations (or all) out of date; the next `get()` starts a refresh."""
        if station_ids is None:
            self._loaded_at = min(self._loaded_at, time.monotonic() - self._ttl_s - 1)
        else:
            self._dirty.update(station_ids)

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    def _refresh_in_background(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh())

    async def _refresh(self) -> None:
        try:
            if time.monotonic() - self._loaded_at > self._ttl_s:
                await self._reload_all()
            else:
                dirty, self._dirty = self._dirty, set()
                await self.fresh(dirty)
        except Exception:  # a failed refresh keeps the old copy; the next get() retries
            log.exception("station snapshot refresh failed")

    async def _reload_all(self) -> None:
        self._dirty.clear()
        started = time.monotonic()
        async with self._db.transaction() as session:
            self._views = await load_station_views(session, self._clock(), self._report_period_s)
        self._loaded_at = started
