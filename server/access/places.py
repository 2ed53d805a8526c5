"""Which municipality a thing belongs to, read in the caller's transaction, so an
operator's reach is checked against the rows the change then touches."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Incident, Station, Unit


async def station_municipality(session: AsyncSession, station_id: str | None) -> str | None:
    """None for no station (or an unknown one: the caller's own lookup says NotFound)."""
    if station_id is None:
        return None
    found: str | None = await session.scalar(
        select(Station.municipality).where(Station.id == station_id)
    )
    return found


async def battery_municipality(session: AsyncSession, gw_id: str, unit: str) -> str | None:
    """The municipality of the battery's station; None if it stands at none."""
    found: str | None = await session.scalar(
        select(Station.municipality)
        .join(Unit, Unit.station_id == Station.id)
        .where(Unit.gw_id == gw_id, Unit.unit == unit)
    )
    return found


async def incident_municipality(session: AsyncSession, incident_id: int) -> str | None:
    station_id = await session.scalar(select(Incident.station_id).where(Incident.id == incident_id))
    return await station_municipality(session, station_id)


def stations_of(municipality: str) -> Select[str]:
    """The ids of a municipality's stations, as a subquery for `IN`."""
    return select(Station.id).where(Station.municipality == municipality)
