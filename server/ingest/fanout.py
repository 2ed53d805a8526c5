"""The fan-out: each committed ChangeSet to every listener in turn, then off the journal.

Booking (moves, check-ins), incidents and the live feed each react to what ingest, the
staleness sweep or an operator changed. One ChangeSet at a time, in the order they come;
a listener that raises is logged and counted and the others still run, so a bug in
incidents never stops bookings from moving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from server.db.session import Database
from server.ingest.changeset import ChangeSet
from server.ingest.journal import delivered

log = logging.getLogger(__name__)

Listener = Callable[[ChangeSet], Awaitable[None]]


class FanOut:
    """Calls every listener with a ChangeSet; counts the ones that raised."""

    def __init__(self, db: Database, listeners: Sequence[Listener] = ()) -> None:
        self._db = db
        self._listeners = list(listeners)
        self._lock = asyncio.Lock()
        self.errors = 0

    def add(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def __call__(self, changes: ChangeSet) -> None:
        if not changes:
            return
        async with self._lock:
            for listener in self._listeners:
                try:
                    await listener(changes)
                except Exception:
                    self.errors += 1
                    log.exception("change listener %s failed",
                                  getattr(listener, "__qualname__", listener))  # fmt: skip
            try:
                await delivered(self._db, changes)
            except Exception:  # it stays in the journal, to be handed out again at the next start
                log.warning("could not strike change set %s off the journal", changes.pending,
                            exc_info=True)  # fmt: skip
