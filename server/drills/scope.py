"""What belongs to a drill, for the parts that must keep drills apart (views, incidents).

Only the database models: the booking views and the incident service import it.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import Drill, Station
from server.drills.twins import GATEWAY_PREFIX


def active_clause() -> ColumnElement[bool]:
    """Stations anyone may see now: the real ones and the twins of drills still running."""
    running = select(Drill.id).where(Drill.ended_at.is_(None))
    return or_(Station.drill_id.is_(None), Station.drill_id.in_(running))


async def drill_of(
    session: AsyncSession, station_id: str | None, gw_id: str | None
) -> Drill | None:
    """The drill a station (a twin) or a gateway (a drill's) belongs to, if any."""
    if station_id:
        drill_id = await session.scalar(select(Station.drill_id).where(Station.id == station_id))
        if drill_id is not None:
            return await session.get(Drill, drill_id)
    if gw_id and gw_id.startswith(GATEWAY_PREFIX):
        found: Drill | None = await session.scalar(select(Drill).where(Drill.gw_id == gw_id))
        return found
    return None
