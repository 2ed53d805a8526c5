"""Registered LINE residents written straight into a database, many at once: an
announcement's audience for the tests and the fan-out benchmark."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert

from server.db.models import Booking, LineResident, ResidentRegistration
from server.db.session import Database

CHUNK = 500


@dataclass(frozen=True, slots=True)
class Group:
    count: int
    municipality: str = "大洲市"
    district: str | None = "肱南"
    stay: str = "shelter"
    language: str = "ja"
    following: bool = True
    drill_opt_in: bool = False
    registered: bool = True
    station_id: str | None = None
    """The shelter's station a resident at a shelter registered at."""


def user_id() -> str:
    return f"U{uuid.uuid4().hex}"


async def seed(db: Database, group: Group) -> list[str]:
    """`group.count` residents who chatted (and, `registered`, registered); their user ids."""
    now = datetime.now(UTC)
    ids = [user_id() for _ in range(group.count)]
    for first in range(0, len(ids), CHUNK):
        chunk = ids[first : first + CHUNK]
        async with db.transaction() as session:
            await session.execute(insert(LineResident), [
                {"user_id": u, "language": group.language, "language_chosen": False,
                 "following": group.following, "step": None, "step_data": {},
                 "drill_opt_in": group.drill_opt_in, "created_at": now, "updated_at": now}
                for u in chunk])  # fmt: skip
            if group.registered:
                await session.execute(insert(ResidentRegistration), [
                    {"user_id": u, "municipality": group.municipality,
                     "district": group.district, "stay": group.stay, "need_requested": None,
                     "station_id": group.station_id,
                     "consented_at": now, "updated_at": now} for u in chunk])  # fmt: skip
    return ids


async def book(db: Database, user: str, station_id: str, unit_pk: int, port: int) -> None:
    """An active booking of the LINE resident at the station (its window: now)."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        session.add(Booking(
            id=uuid.uuid4().hex, resident_id=f"line:{user}", station_id=station_id,
            window_start=now, unit_pk=unit_pk, port=port, status="active", ticket_code="T0K1",
            created_at=now, updated_at=now,
        ))  # fmt: skip
