"""The webhook's durable store of events: group commit, deduplicated by `webhookEventId`.

LINE wants its webhook answered fast, and each answer may come only after its events are
stored (else a crash loses them: LINE redelivers only what was not answered 2xx). One
transaction per request would cap a burst at what the store commits per second, so
concurrent requests hand their events to a writer (`group_commit`; two take turns on
SQLite), which inserts whatever is waiting in one transaction (`INSERT ... ON CONFLICT DO
NOTHING RETURNING`) and tells each request which of its events were new. A redelivery, or
the same event twice in a burst, is not new. Each event is stored leased to this process
(`LEASE`), which queues it; the bot renews the lease while the process lives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.db.models import LineEvent
from server.db.session import Database
from server.line.events import ResidentEvent
from server.line.group_commit import GroupCommit

MAX_BATCH: Final = 500
"""Events a transaction inserts at most (9 parameters each: well under SQLite's limit)."""
LEASE: Final = timedelta(seconds=90)
"""How long an event stays with the process that queued it without a renewal (the bot
renews every 30 s): another process recovers it only once the lease has run out."""


@dataclass(frozen=True, slots=True)
class Received:
    """An event and when its webhook came: its reply token is good for a while after."""

    event: ResidentEvent
    received_at: datetime


class Inbox:
    """One per process; `store` from the webhook, `close` on the way out."""

    def __init__(self, db: Database, clock: Callable[[], datetime], owner: str) -> None:
        self._db = db
        self._clock = clock
        self._owner = owner
        self._commits: GroupCommit[Received, set[str], list[Received]] = GroupCommit(
            self._insert, _claim, what="LINE events", max_batch=MAX_BATCH,
            writers=2 if db.is_sqlite else 1,
        )  # fmt: skip
        """Two writers on SQLite: while one writes, the next batch waits for the writer's
        turn, first in line, so that it passes from inbox to inbox (alternating with the
        bot, see `WriterTurns`) rather than to whichever transaction came next. On
        PostgreSQL two writers' commits contend, and acknowledgements were slower."""

    async def store(self, items: Sequence[Received]) -> list[Received]:
        """Store the events durably; those not stored before, in their order.

        Raises what the store raised (the webhook then fails and LINE sends them again).
        """
        return await self._commits.submit(items) if items else []

    async def close(self) -> None:
        await self._commits.close()

    async def _insert(self, items: list[Received]) -> set[str]:
        """Insert the events not stored yet; the ids of those inserted."""
        rows: dict[str, dict[str, Any]] = {}
        for item in items:
            event = item.event
            rows.setdefault(event.event_id, {
                "webhook_event_id": event.event_id, "user_id": event.user_id,
                "kind": event.kind.value, "body": event.stored_body(),
                "redelivery": event.redelivery, "received_at": item.received_at,
                "processed_at": None, "leased_by": self._owner,
                "leased_until": item.received_at + LEASE,
            })  # fmt: skip
        table: Table = LineEvent.__table__  # type: ignore[assignment]
        insert = sqlite_insert if self._db.is_sqlite else pg_insert
        statement = (  # one compiled statement, executed for many rows ("insertmanyvalues")
            insert(table)
            .on_conflict_do_nothing(index_elements=["webhook_event_id"])
            .returning(table.c.webhook_event_id)
        )
        async with self._db.transaction(urgent=True) as session:
            return set((await session.scalars(statement, list(rows.values()))).all())

    def stamped(self, events: Sequence[ResidentEvent]) -> list[Received]:
        """Events the webhook just received, stamped with the time."""
        now = self._clock()
        return [Received(event, now) for event in events]


def _claim(items: Sequence[Received], new: set[str]) -> list[Received]:
    """The request's events that were new, each once (the first of duplicates)."""
    found = []
    for item in items:
        if item.event.event_id in new:
            new.discard(item.event.event_id)
            found.append(item)
    return found
