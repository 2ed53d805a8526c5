"""Starting, ending and reporting drills: the database side of `server.drills.twins`.

A drill's twins and batteries are written in one transaction with the drill, so a drill
exists with its whole world or not at all. Ending one hides its twins (`active_clause`),
closes what it left open as `report.END_ACTOR`, and hands back its active bookings for the
booking service to cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.booking.claims import ACTIVE_STATUSES
from server.db.models import Booking, Drill, Incident, Notification, OutboxMessage, Station, Unit
from server.db.session import Database
from server.delivery.outbox import Platform
from server.drills import report, twins
from server.errors import Conflict, Invalid, NotFound
from server.incidents.kinds import State
from server.reports.read import incident_row


@dataclass(frozen=True, slots=True)
class DrillSpec:
    name: str
    scenario: str
    municipalities: Sequence[str]
    units: Sequence[str]
    """The scenario's batteries as the gateway names them (`bus.unit`)."""


@dataclass(frozen=True, slots=True)
class DrillView:
    id: int
    name: str
    scenario: str
    municipalities: list[str]
    gw_id: str
    started_at: datetime
    started_by: str
    ended_at: datetime | None
    ended_by: str | None
    stations: dict[str, str]
    """Twin id -> the real station's id."""
    units: dict[str, str]
    """Battery (`bus.unit`) -> twin id."""

    @property
    def active(self) -> bool:
        return self.ended_at is None


class DrillService:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def start(self, spec: DrillSpec, by: str) -> DrillView:
        """Invalid for a municipality without stations or a drill without batteries;
        Conflict if a drill already runs in one of them."""
        if not spec.units:
            raise Invalid("units: a drill needs the scenario's batteries")
        now = self._clock()
        wanted = list(dict.fromkeys(spec.municipalities))
        async with self._db.transaction() as session:
            stations = list(await session.scalars(
                select(Station)
                .where(Station.municipality.in_(wanted), Station.drill_id.is_(None))
                .order_by(Station.id)
            ))  # fmt: skip
            missing = sorted(set(wanted) - {s.municipality for s in stations})
            if missing:
                raise Invalid(f"municipalities: no stations in {', '.join(missing)}")
            running = await session.scalars(select(Drill).where(Drill.ended_at.is_(None)))
            for other in running:
                if overlap := sorted(set(other.municipalities) & set(wanted)):
                    raise Conflict(f"drill {other.id} runs in {', '.join(overlap)}",
                                   "drill_running")  # fmt: skip
            drill = Drill(name=spec.name, scenario=spec.scenario, municipalities=wanted,
                          gw_id="", started_at=now, started_by=by)  # fmt: skip
            session.add(drill)
            await session.flush()
            drill.gw_id = twins.gateway_of(drill.id)
            real = [twins.RealStation(s.id, s.name_ja, s.name_en) for s in stations]
            made = twins.twins_of(drill.id, real)
            by_id = {s.id: s for s in stations}
            for twin in made:
                source = by_id[twin.of]
                session.add(Station(
                    id=twin.id, name_ja=twin.name_ja, name_en=twin.name_en,
                    latitude=source.latitude, longitude=source.longitude, address=source.address,
                    municipality=source.municipality, counterpart_group=source.counterpart_group,
                    opens_at=source.opens_at, closes_at=source.closes_at,
                    slot_minutes=source.slot_minutes, drill_id=drill.id,
                ))  # fmt: skip
            await session.flush()
            for unit, station_id in twins.place_units(spec.units, made).items():
                session.add(Unit(gw_id=drill.gw_id, unit=unit, station_id=station_id))
            await audit.record(session, by, "drill.started", f"drill:{drill.id}", {
                "scenario": spec.scenario, "municipalities": wanted, "stations": len(made),
                "units": len(spec.units),
            }, at=now)  # fmt: skip
            return await _view(session, drill)

    async def end(self, drill_id: int, by: str) -> tuple[DrillView, list[str]]:
        """End it (Conflict if it has ended); its active bookings' ids, to cancel."""
        now = self._clock()
        async with self._db.transaction() as session:
            drill = await _drill(session, drill_id, lock=True)
            if drill.ended_at is not None:
                raise Conflict(f"drill {drill_id} ended at {drill.ended_at.isoformat()}",
                               "drill_ended")  # fmt: skip
            drill.ended_at, drill.ended_by = now, by
            left = list(await session.scalars(
                select(Incident).where(Incident.drill_id == drill_id,
                                       Incident.state != State.RESOLVED)
            ))  # fmt: skip
            for row in left:
                row.state, row.resolved_at, row.resolved_by = State.RESOLVED, now, report.END_ACTOR
            bookings = list(await session.scalars(
                select(Booking.id).join(Station, Station.id == Booking.station_id)
                .where(Station.drill_id == drill_id, Booking.status.in_(ACTIVE_STATUSES))
            ))  # fmt: skip
            await audit.record(session, by, "drill.ended", f"drill:{drill_id}", {
                "closed_incidents": len(left), "bookings_to_cancel": len(bookings),
            }, at=now)  # fmt: skip
            return await _view(session, drill), bookings

    async def get(self, drill_id: int) -> DrillView:
        async with self._db.transaction() as session:
            return await _view(session, await _drill(session, drill_id))

    async def list(self) -> list[DrillView]:
        async with self._db.transaction() as session:
            drills = await session.scalars(select(Drill).order_by(Drill.id.desc()))
            return [await _view(session, d) for d in drills]

    async def report(self, drill_id: int) -> tuple[DrillView, report.DrillReport]:
        async with self._db.transaction() as session:
            drill = await _drill(session, drill_id)
            rows = list(await session.scalars(
                select(Incident).where(Incident.drill_id == drill_id).order_by(Incident.id)
            ))  # fmt: skip
            sources = await session.scalars(
                select(OutboxMessage.source).where(
                    OutboxMessage.platform == Platform.LINEWORKS,
                    OutboxMessage.source.like("incident:%"),
                    OutboxMessage.created_at >= drill.started_at,
                )
            )
            booked = list(await session.execute(
                select(Booking.resident_id, Booking.status)
                .join(Station, Station.id == Booking.station_id)
                .where(Station.drill_id == drill_id)
            ))  # fmt: skip
            notices = await session.scalar(
                select(func.count()).select_from(Notification)
                .join(Booking, Booking.id == Notification.booking_id)
                .join(Station, Station.id == Booking.station_id)
                .where(Station.drill_id == drill_id)
            )  # fmt: skip
            real = (
                select(func.count())
                .select_from(Incident)
                .where(Incident.drill_id.is_(None), Incident.opened_at >= drill.started_at)
            )
            if drill.ended_at is not None:
                real = real.where(Incident.opened_at <= drill.ended_at)
            figures = report.drill_report(
                [incident_row(r) for r in rows],
                list(sources),
                [(resident, status) for resident, status in booked],
                notices or 0,
                await session.scalar(real) or 0,
            )
            return await _view(session, drill), figures


async def _drill(session: AsyncSession, drill_id: int, *, lock: bool = False) -> Drill:
    query = select(Drill).where(Drill.id == drill_id)
    found = await session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound(f"no drill {drill_id}")
    return found


async def _view(session: AsyncSession, drill: Drill) -> DrillView:
    stations = await session.execute(select(Station.id).where(Station.drill_id == drill.id))
    units = await session.execute(
        select(Unit.unit, Unit.station_id).where(Unit.gw_id == drill.gw_id)
    )
    of = {twin: twin.removeprefix(f"drill{drill.id}-") for (twin,) in stations}
    return DrillView(
        id=drill.id, name=drill.name, scenario=drill.scenario,
        municipalities=list(drill.municipalities), gw_id=drill.gw_id,
        started_at=drill.started_at, started_by=drill.started_by, ended_at=drill.ended_at,
        ended_by=drill.ended_by, stations=dict(sorted(of.items())),
        units={u: s for u, s in sorted(units) if s is not None},
    )  # fmt: skip
