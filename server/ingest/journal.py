"""Committed ChangeSets kept in the database until every listener has seen them.

A ChangeSet is written in the same transaction as the changes it describes, and struck off
once the fan-out has handed it to every listener. A server killed in between (after the
commit, before bookings moved, incidents opened and the live feed heard) hands it over at
its next start instead: a port fault is never stored without its incident and its moves.
Another process takes over the ChangeSets of one that is gone: on PostgreSQL at its next
timer round (the owner's client-id lock is free, `owner.unheld`), and anywhere once they
have waited `ORPHANED_AFTER`. Listeners take a repeat without harm: moves and check-ins read the
present, and a repeated incident signal counts as one more occurrence.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Final

from pydantic import TypeAdapter
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import PendingChanges
from server.db.session import Database
from server.ingest.changeset import ChangeSet
from server.ingest.owner import unheld

ORPHANED_AFTER: Final = timedelta(minutes=10)
_CODEC: Final = TypeAdapter(ChangeSet)


async def record(session: AsyncSession, changes: ChangeSet, owner: str, now: datetime) -> ChangeSet:
    """Keep `changes` in the journal with the transaction of `session`; it, with its row."""
    if not changes:
        return changes
    row = PendingChanges(owner=owner, body=_CODEC.dump_json(changes).decode(), recorded_at=now)
    session.add(row)
    await session.flush()
    return dataclasses.replace(changes, pending=row.id)


async def delivered(db: Database, changes: ChangeSet) -> None:
    """Every listener has seen `changes`: strike it off."""
    if changes.pending is None:
        return
    async with db.transaction() as session:
        await session.execute(delete(PendingChanges).where(PendingChanges.id == changes.pending))


async def undelivered(db: Database, owner: str, now: datetime, own: bool) -> list[ChangeSet]:
    """Take over ChangeSets to hand out again, oldest first.

    `own`: also this process's own, left by its previous run (only at start: later, its
    own are the ones being handed out right now). Always: those of a process gone, and any
    process's left for longer than `ORPHANED_AFTER`.
    """
    orphaned = PendingChanges.recorded_at < now - ORPHANED_AFTER
    if not db.is_sqlite:
        orphaned |= (PendingChanges.owner != owner) & unheld(PendingChanges.owner)
    taken = (PendingChanges.owner == owner) | orphaned if own else orphaned
    async with db.transaction() as session:
        rows = await session.execute(
            update(PendingChanges)
            .where(taken)
            .values(owner=owner, recorded_at=now)
            .returning(PendingChanges.id, PendingChanges.body)
            .execution_options(synchronize_session=False)
        )
        found = sorted(rows.all())
    return [dataclasses.replace(_CODEC.validate_json(body), pending=id_) for id_, body in found]
