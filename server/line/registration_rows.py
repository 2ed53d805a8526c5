"""Residents' registrations in the database (`resident_registrations`), for the desk.

One row per LINE user, replaced on a change and deleted (never flagged) when the resident
asks; the municipalities offered are those with stations, drills' twins aside, and the
shelters offered a municipality's stations.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select

from server.db.models import ResidentRegistration, Station
from server.db.session import Database
from server.line.conversation import Registration
from server.line.stations import StationInfo, load_municipality_stations
from server.priority import grants
from server.priority.references import new_reference
from server.registry.districts import district_names


class RegistrationRows:
    """The desk's registration part; made once with the desk."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def municipalities(self) -> list[str]:
        async with self._db.transaction() as session:
            rows = await session.scalars(
                select(Station.municipality)
                .where(Station.drill_id.is_(None), Station.municipality.is_not(None))
                .distinct()
                .order_by(Station.municipality)
            )
            return [m for m in rows if m]

    async def districts(self, municipality: str) -> list[str]:
        async with self._db.transaction() as session:
            return await district_names(session, municipality)

    async def shelters(self, municipality: str) -> list[StationInfo]:
        async with self._db.transaction() as session:
            return await load_municipality_stations(session, municipality)

    async def registration(self, user_id: str) -> Registration | None:
        async with self._db.transaction() as session:
            row = await session.get(ResidentRegistration, user_id)
            if row is None:
                return None
            return Registration(row.user_id, row.municipality, row.district, row.stay,
                                row.need_requested, row.station_id, row.reference)  # fmt: skip

    async def register(self, registration: Registration) -> None:
        now = self._clock()
        async with self._db.transaction() as session:
            row = await session.get(ResidentRegistration, registration.user_id)
            if row is None:
                row = ResidentRegistration(user_id=registration.user_id, consented_at=now)
                session.add(row)
            row.municipality, row.district = registration.municipality, registration.district
            row.stay, row.need_requested = registration.stay, registration.need_requested
            row.station_id = registration.station_id if registration.stay == "shelter" else None
            row.consented_at = row.updated_at = now
            row.reference = row.reference or new_reference()

    async def unregister(self, user_id: str) -> bool:
        """Delete the registration, and the priority granted on it."""
        async with self._db.transaction() as session:
            await grants.forget(session, user_id, self._clock())
            gone = await session.execute(
                delete(ResidentRegistration).where(ResidentRegistration.user_id == user_id)
            )
        return bool(getattr(gone, "rowcount", 0))
