"""The rows an after-action report needs, read in one transaction (`figures` computes)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Booking, Incident, Notification, OutboxMessage, Station
from server.db.session import Database
from server.reports.figures import (
    BookingRow,
    IncidentRow,
    MessageRow,
    Period,
    Report,
    StationRow,
    build_report,
)


async def read_report(db: Database, period: Period, municipality: str | None) -> Report:
    """The report of a municipality's stations (None: everywhere) over the period; what
    drills did is in their own reports (`server.drills`), not here."""
    real = select(Station.id).where(Station.drill_id.is_(None))
    async with db.transaction() as session:
        stations = [
            StationRow(s.id, s.name_ja, s.name_en, s.municipality)
            for s in await session.scalars(select(Station).where(Station.drill_id.is_(None)))
        ]
        bookings = [_booking(b) for b in await session.scalars(
            select(Booking).where(Booking.window_start >= period.start,
                                  Booking.window_start < period.end,
                                  Booking.station_id.in_(real))
        )]  # fmt: skip
        chain = await _chains(session, bookings)
        incidents = [incident_row(i) for i in await session.scalars(
            select(Incident).where(
                Incident.drill_id.is_(None),
                Incident.opened_at < period.end,
                or_(Incident.resolved_at.is_(None), Incident.resolved_at >= period.start),
            )
        )]  # fmt: skip
        messages = await _messages(session, period)
    return build_report(stations, bookings, chain, incidents, messages, period, municipality)


async def _chains(session: AsyncSession, bookings: list[BookingRow]) -> dict[str, BookingRow]:
    """The bookings and every earlier one they were moved from (a wait starts there)."""
    known = {b.id: b for b in bookings}
    wanted = {b.moved_from_id for b in bookings if b.moved_from_id} - known.keys()
    while wanted:
        rows = [_booking(b) for b in
                await session.scalars(select(Booking).where(Booking.id.in_(wanted)))]  # fmt: skip
        known.update((b.id, b) for b in rows)
        wanted = {b.moved_from_id for b in rows if b.moved_from_id} - known.keys()
    return known


async def _messages(session: AsyncSession, period: Period) -> list[MessageRow]:
    """Outbox rows of the period, each with the station its cause names (`source`)."""
    rows = (await session.execute(
        select(OutboxMessage.platform, OutboxMessage.state, OutboxMessage.source,
               OutboxMessage.created_at)
        .where(OutboxMessage.created_at >= period.start, OutboxMessage.created_at < period.end)
    )).all()  # fmt: skip
    notices: set[int] = set()
    incidents: set[int] = set()
    for _, _, source, _ in rows:
        kind, row_id = _cause(source)
        if row_id is not None:
            (notices if kind == "notification" else incidents).add(row_id)
    notice_station: dict[int, str] = dict((await session.execute(
        select(Notification.id, Booking.station_id)
        .join(Booking, Booking.id == Notification.booking_id)
        .where(Notification.id.in_(notices))
    )).all()) if notices else {}  # fmt: skip
    incident_station: dict[int, str | None] = dict((await session.execute(
        select(Incident.id, Incident.station_id).where(Incident.id.in_(incidents))
    )).all()) if incidents else {}  # fmt: skip
    out: list[MessageRow] = []
    for platform, state, source, created_at in rows:
        kind, row_id = _cause(source)
        station = None
        if row_id is not None:
            station = (notice_station if kind == "notification" else incident_station).get(row_id)
        out.append(MessageRow(platform, state, station, created_at))
    return out


def _cause(source: str) -> tuple[str, int | None]:
    """`notification:12` and `incident:4.5:opened` name a row (its first id); others none."""
    kind, _, rest = source.partition(":")
    first = rest.split(":")[0].split(".")[0]
    if kind in ("notification", "incident") and first.isdigit():
        return kind, int(first)
    return kind, None


def _booking(b: Booking) -> BookingRow:
    return BookingRow(b.id, b.station_id, b.status, b.window_start, b.created_at,
                      b.moved_from_id, b.port, b.ticket_code, b.released_for,
                      b.walk_m)  # fmt: skip


def incident_row(i: Incident) -> IncidentRow:
    """An incident as the reports read it (the drills' report too)."""
    return IncidentRow(
        i.id,
        i.kind,
        i.severity,
        i.station_id,
        i.gw_id,
        i.unit,
        i.port,
        i.opened_at,
        i.acknowledged_at,
        i.acknowledged_by,
        i.resolved_at,
        i.resolved_by,
        i.condition_cleared_at,
        i.detail,
    )
