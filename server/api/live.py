"""The API's read side: stations with live availability, ports and open incidents.

Capacity comes from the booking core's own view (`load_station_views`) and rules
(`capacity`, `holdback`), so the dashboard never shows a place the booking would refuse:
places held back for priority residents are not anyone's, and are counted apart. Batteries and
ports are read here with the same `effective_status` rule. All reads of one response run
in one transaction, so a station's numbers agree with each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.api import schemas
from server.api.availability import Withheld, availability, windows
from server.booking.capacity import StationView
from server.booking.claims import Loads, read_priority_loads
from server.booking.holdback import Rules, holding, rule_for, withheld
from server.booking.views import battery_place, load_batteries, load_station_views
from server.db.models import Booking, Gateway, Incident, Port, Station, Unit, WindowLoad
from server.errors import NotFound
from server.ingest.live import effective_status, gateway_online, is_stale, stale_cutoff
from server.priority.rules import load_rules
from server.settings import Settings

OPEN_STATES = ("open", "acknowledged")


async def station_list(
    session: AsyncSession, settings: Settings, now: datetime, *, drills: bool = False
) -> list[schemas.StationOut]:
    """The real stations; with `drills`, the running drills' twins as well (operators)."""
    views = await load_station_views(session, now, settings.report_period_s)
    if not drills:
        views = {sid: view for sid, view in views.items() if view.drill_id is None}
    rows = (await session.scalars(select(Station).order_by(Station.id))).all()
    booked = await _booked(session, None, now)
    held = await _held_now(session, None, now)
    incidents = await _open_incident_counts(session)
    hold = await _Holds.read(session, views.values(), now)
    return [
        _station_out(
            row,
            views[row.id],
            booked,
            held,
            incidents.get(row.id, 0),
            settings,
            now,
            hold.of(views[row.id]),
        )
        for row in rows
        if row.id in views
    ]


async def station_detail(
    session: AsyncSession, settings: Settings, now: datetime, station_id: str
) -> schemas.StationDetail:
    row = await session.get(Station, station_id)
    views = await load_station_views(session, now, settings.report_period_s, [station_id])
    if row is None or station_id not in views:  # unknown, or an ended drill's twin
        raise NotFound(f"no station {station_id!r}")
    booked = await _booked(session, station_id, now)
    held = await _held_now(session, station_id, now)
    incidents = (
        await session.scalars(
            select(Incident)
            .where(Incident.station_id == station_id, Incident.state.in_(OPEN_STATES))
            .order_by(Incident.opened_at.desc())
        )
    ).all()
    hold = await _Holds.read(session, [views[station_id]], now)
    summary = _station_out(row, views[station_id], booked, held, len(incidents), settings, now,
                           hold.of(views[station_id]))  # fmt: skip
    names = {(b.gw_id, b.unit): b.name for b in await load_batteries(session, [station_id])}
    return schemas.StationDetail(
        **summary.model_dump(),
        batteries=await _batteries(session, station_id, now, settings.report_period_s, names),
        incidents=[
            schemas.IncidentBrief.model_validate(i).model_copy(
                update={"place": battery_place(names, i.gw_id, i.unit, i.port)}
            )
            for i in incidents
        ],
    )


async def station_windows(
    session: AsyncSession, settings: Settings, now: datetime, station_id: str, earliest: datetime
) -> schemas.WindowList:
    views = await load_station_views(session, now, settings.report_period_s, [station_id])
    if station_id not in views:
        raise NotFound(f"no station {station_id!r}")
    booked = await _booked(session, station_id, now)
    hold = await _Holds.read(session, [views[station_id]], now)
    found = windows(
        views[station_id], booked.get(station_id, {}), max(earliest, now),
        timedelta(hours=settings.booking_horizon_h), settings.energy_per_phone_wh,
        hold.of(views[station_id]),
    )  # fmt: skip
    return schemas.WindowList(
        station_id=station_id,
        windows=[
            schemas.WindowOut(
                start=w.start, end=w.end, places=w.places, booked=w.booked, held=w.held
            )
            for w in found
        ],
    )


class _Holds:
    """The hold-back rules and priority bookings of the stations a response shows."""

    def __init__(self, rules: Rules, priority_booked: Loads, now: datetime) -> None:
        self._rules, self._booked, self._now = rules, priority_booked, now

    @classmethod
    async def read(
        cls, session: AsyncSession, stations: Iterable[StationView], now: datetime
    ) -> _Holds:
        rules = await load_rules(session)
        ids = [s.id for s in holding(rules, stations)]
        booked = await read_priority_loads(session, ids, now - timedelta(hours=4)) if ids else {}
        return cls(rules, booked, now)

    def of(self, station: StationView) -> Withheld | None:
        """What the station's windows hold from anyone, or None where nothing is held."""
        rule = rule_for(self._rules, station)
        booked = self._booked.get(station.id, {})
        if not rule.share:
            return None
        return lambda start: withheld(rule, station, start, booked, self._now)


def _station_out(
    row: Station,
    view: StationView,
    booked: dict[str, dict[datetime, int]],
    held: dict[str, int],
    open_incidents: int,
    settings: Settings,
    now: datetime,
    withheld_of: Withheld | None = None,
) -> schemas.StationOut:
    found = availability(
        view, booked.get(row.id, {}), now, timedelta(hours=settings.booking_horizon_h),
        settings.energy_per_phone_wh, held.get(row.id, 0), withheld_of,
    )  # fmt: skip
    return schemas.StationOut(
        id=row.id, name_ja=row.name_ja, name_en=row.name_en, latitude=row.latitude,
        longitude=row.longitude, address=row.address, municipality=row.municipality,
        counterpart_group=row.counterpart_group, opens_at=row.opens_at, closes_at=row.closes_at,
        slot_minutes=row.slot_minutes, availability=schemas.Availability.model_validate(found),
        open_incidents=open_incidents, drill_id=row.drill_id,
    )  # fmt: skip


async def _booked(
    session: AsyncSession, station_id: str | None, now: datetime
) -> dict[str, dict[datetime, int]]:
    """Active bookings per station and window, for windows not yet over."""
    query = select(WindowLoad).where(WindowLoad.window_start >= now - timedelta(hours=4))
    if station_id is not None:
        query = query.where(WindowLoad.station_id == station_id)
    found: dict[str, dict[datetime, int]] = defaultdict(dict)
    for load in await session.scalars(query):
        found[load.station_id][load.window_start] = load.booked
    return found


async def _held_now(session: AsyncSession, station_id: str | None, now: datetime) -> dict[str, int]:
    """Ports held for residents booked in the window under way who have not plugged in."""
    query = (
        select(Booking.station_id, Booking.window_start, Station.slot_minutes)
        .join(Station, Station.id == Booking.station_id)
        .where(
            Booking.status == "active",
            Booking.window_start <= now,
            Booking.window_start > now - timedelta(hours=4),
        )
    )
    if station_id is not None:
        query = query.where(Booking.station_id == station_id)
    held: dict[str, int] = defaultdict(int)
    for sid, start, slot in await session.execute(query):
        if start + timedelta(minutes=slot) > now:
            held[sid] += 1
    return held


async def _open_incident_counts(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Incident.station_id, func.count())
        .where(Incident.state.in_(OPEN_STATES), Incident.station_id.is_not(None))
        .group_by(Incident.station_id)
    )
    return {sid: count for sid, count in rows if sid is not None}


async def _batteries(
    session: AsyncSession,
    station_id: str,
    now: datetime,
    report_period_s: float,
    names: dict[tuple[str, str], str],
) -> list[schemas.BatteryOut]:
    cutoff = stale_cutoff(now, report_period_s)
    units = (
        await session.execute(
            select(Unit, Gateway)
            .outerjoin(Gateway, Gateway.gw_id == Unit.gw_id)
            .where(Unit.station_id == station_id)
            .order_by(Unit.gw_id, Unit.unit)
        )
    ).all()
    ports = (
        await session.scalars(
            select(Port).where(Port.unit_pk.in_([u.id for u, _ in units])).order_by(Port.port)
        )
    ).all()
    by_unit: dict[int, list[Port]] = defaultdict(list)
    for port in ports:
        by_unit[port.unit_pk].append(port)
    batteries = []
    for unit, gateway in units:
        stale = is_stale(unit.stale, unit.received_at, cutoff)
        gw_up = gateway is not None and gateway_online(gateway.state, gateway.silent)
        batteries.append(
            schemas.BatteryOut(
                gw_id=unit.gw_id, unit=unit.unit, name=names[(unit.gw_id, unit.unit)],
                online=unit.online and gw_up and not stale,
                soc_pct=unit.soc_pct, temp_c=unit.temp_c, rated_wh=unit.rated_wh,
                alarms=list(unit.alarms or []),
                ports=[
                    schemas.PortOut(
                        gw_id=unit.gw_id, unit=unit.unit, port=p.port,
                        status=effective_status(p.status, unit.online, gw_up, stale,
                                                p.admin_disabled),
                        reported_status=p.status, occupied=p.occupied, power_w=p.power_w,
                        energy_wh=p.energy_wh, temp_c=p.temp_c, error=p.error,
                        admin_disabled=p.admin_disabled,
                    )
                    for p in by_unit[unit.id]
                ],
            )
        )  # fmt: skip
    return batteries
