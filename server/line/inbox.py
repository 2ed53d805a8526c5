"""The webhook's durable store of events: group commit, deduplicated by `webhookEventId`.

LINE wants its webhook answered fast, and each answer may come only after its events are
stored (else a crash loses them: LINE redelivers only what was not answered 2xx). One
transaction per request would cap a burst at what the store commits per second, so
concurrent requests hand their events to a writer (two take turns on SQLite), which
inserts whatever is waiting in one transaction (`INSERT ... ON CONFLICT DO NOTHING
RETURNING`) and tells each request which of its events were new. A redelivery, or the same
event twice in a burst, is not new. The writer never waits to fill a batch: a lone request
is one transaction of one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.db.models import LineEvent
from server.db.session import Database
from server.line.events import ResidentEvent

log = logging.getLogger(__name__)

MAX_BATCH: Final = 500
"""Events a transaction inserts at most (7 parameters each: well under SQLite's limit)."""


@dataclass(frozen=True, slots=True)
class Received:
    """An event and when we stored it: its reply token is good for a while after."""

    event: ResidentEvent
    received_at: datetime


@dataclass(slots=True)
class _Request:
    events: Sequence[ResidentEvent]
    future: asyncio.Future[list[Received]] = field(repr=False)


class Inbox:
    """One per process; `store` from the webhook, `close` on the way out."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._writers = 2 if db.is_sqlite else 1
        """SQLite: while one writes, the next batch waits for the writer's turn, first in
        line, so that it passes from inbox to inbox (alternating with the bot, see
        `WriterTurns`) rather than to whichever transaction came next. On PostgreSQL two
        writers' commits contend, and acknowledgements were slower."""
        self._tasks: list[asyncio.Task[None]] = []

    async def store(self, events: Sequence[ResidentEvent]) -> list[Received]:
        """Store the events durably; those not stored before, in their order.

        Raises what the store raised (the webhook then fails and LINE sends them again).
        """
        if not events:
            return []
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._write(), name=f"line-inbox-{n}")
                           for n in range(self._writers)]  # fmt: skip
        future: asyncio.Future[list[Received]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(events, future))
        return await future

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _write(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].events)
            while size < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
                size += len(batch[-1].events)
            try:
                new = await self._insert([e for r in batch for e in r.events])
            except Exception as exc:  # the requests fail; the writer lives on
                log.warning("storing %d LINE events failed (%s)", size, type(exc).__name__)
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            for request in batch:
                if not request.future.done():
                    request.future.set_result(_claim(request.events, new))

    async def _insert(self, events: list[ResidentEvent]) -> dict[str, datetime]:
        """Insert the events not stored yet; {event id: received_at} of those inserted."""
        now = self._clock()
        rows: dict[str, dict[str, Any]] = {}
        for event in events:
            rows.setdefault(event.event_id, {
                "webhook_event_id": event.event_id, "user_id": event.user_id,
                "kind": event.kind.value, "body": event.stored_body(),
                "redelivery": event.redelivery, "received_at": now, "processed_at": None,
            })  # fmt: skip
        table: Table = LineEvent.__table__  # type: ignore[assignment]
        insert = sqlite_insert if self._db.is_sqlite else pg_insert
        statement = (  # one compiled statement, executed for many rows ("insertmanyvalues")
            insert(table)
            .on_conflict_do_nothing(index_elements=["webhook_event_id"])
            .returning(table.c.webhook_event_id)
        )
        async with self._db.transaction(urgent=True) as session:
            inserted = set((await session.scalars(statement, list(rows.values()))).all())
        return dict.fromkeys(inserted, now)


def _claim(events: Sequence[ResidentEvent], new: dict[str, datetime]) -> list[Received]:
    """The request's events that were new, each once (the first of duplicates)."""
    found = []
    for event in events:
        at = new.pop(event.event_id, None)
        if at is not None:
            found.append(Received(event, at))
    return found
