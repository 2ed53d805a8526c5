"""Capacity losses waiting out their grace, kept in the database for every process.

A station that loses capacity moves its later bookings only once the loss has lasted
`move_grace_s` (a port that blinks keeps them). The process that heard of the loss may die
within the grace, and with a shared ingest no other process heard of it, so the loss is a
row: any process's timer claims the due rows with a lease, moves their bookings, then
deletes the rows. A process killed between claim and delete leaves its lease to run out,
and another process takes the rows over.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.db.models import CapacityLoss
from server.db.session import Database

LEASE: Final = timedelta(minutes=1)
"""Long enough for one move of every booking of a station; a dead holder's rows wait this."""


async def note(db: Database, station_ids: Iterable[str], now: datetime) -> None:
    """Record when these stations' losses began; a loss already recorded keeps its start."""
    rows = [{"station_id": s, "since": now} for s in sorted(set(station_ids))]
    if not rows:
        return
    insert = sqlite_insert if db.is_sqlite else pg_insert
    async with db.transaction() as session:
        await session.execute(insert(CapacityLoss).on_conflict_do_nothing(), rows)


async def claim_due(db: Database, now: datetime, grace: timedelta) -> tuple[list[str], datetime]:
    """Stations whose loss has lasted `grace` and no live lease holds, leased to the caller
    until the returned time."""
    until = now + LEASE
    async with db.transaction() as session:
        claimed = await session.scalars(
            update(CapacityLoss)
            .where(CapacityLoss.since <= now - grace,
                   or_(CapacityLoss.leased_until.is_(None), CapacityLoss.leased_until < now))
            .values(leased_until=until)
            .returning(CapacityLoss.station_id)
        )  # fmt: skip
        return sorted(claimed), until


async def forget(db: Database, station_ids: list[str], leased_until: datetime) -> None:
    """Delete the rows the caller moved, unless its lease ran out and another took them."""
    if not station_ids:
        return
    async with db.transaction() as session:
        await session.execute(
            delete(CapacityLoss).where(CapacityLoss.station_id.in_(station_ids),
                                       CapacityLoss.leased_until == leased_until)
        )  # fmt: skip
