"""The intake's events on disk until the server has them: one SQLite file, fsynced.

The intake answers LINE only once an event is here, so the journal is what makes that
answer a promise: a killed intake, or a machine that loses power, restarts with every
event it acknowledged and not yet handed on (`synchronous = FULL`: each commit reaches the
disk). Nothing else writes the file, so there is no lock to wait for; the rows are few (the
server takes them within milliseconds while it is up) and deleted once handed on.

A row is an event's stored body (`ResidentEvent.stored_body`: no location point, which is
never written down). The calls block, so `Journal` runs them on a thread of its own.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from server.line.events import ResidentEvent
from server.line.inbox import Received

T = TypeVar("T")

LOCK_WAIT_S: Final = 1.0
"""Nothing else writes the journal: a lock held is someone's shell on it, and the webhook
fails soon (LINE sends it again) rather than keep LINE waiting."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    user_id TEXT,
    redelivery INTEGER NOT NULL,
    received_at REAL NOT NULL,
    body TEXT NOT NULL
)
"""


class Journal:
    """`open` first, then `append` and `forget` from one event loop; `close` at the end."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="intake-journal")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> list[tuple[int, Received]]:
        """Open (creating) the file; the events it still holds, oldest first, with their seq."""
        return await self._run(self._open)

    async def append(self, items: Sequence[Received]) -> list[tuple[int, Received]]:
        """Write the events in one durable transaction; those new to the journal, each with
        its seq (one already held, a redelivery of it, is not written twice)."""
        return await self._run(self._append, items)

    async def forget(self, up_to: int) -> None:
        """Delete the events up to seq `up_to`: the server has them."""
        await self._run(self._forget, up_to)

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._thread.shutdown()

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    def _open(self) -> list[tuple[int, Received]]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self._path, timeout=LOCK_WAIT_S, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute(_SCHEMA)
        self._db = db
        rows = db.execute(
            "SELECT seq, event_id, user_id, redelivery, received_at, body FROM events ORDER BY seq"
        ).fetchall()
        return [(row[0], _received(*row[1:])) for row in rows]

    def _append(self, items: Sequence[Received]) -> list[tuple[int, Received]]:
        db = self._connection()
        new = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for item in items:
                event = item.event
                seq = db.execute(
                    "INSERT INTO events (event_id, user_id, redelivery, received_at, body) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING seq",
                    (event.event_id, event.user_id, int(event.redelivery),
                     item.received_at.timestamp(), json.dumps(event.stored_body())),
                ).fetchone()  # fmt: skip
                if seq is not None:
                    new.append((int(seq[0]), item))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return new

    def _forget(self, up_to: int) -> None:
        self._connection().execute("DELETE FROM events WHERE seq <= ?", (up_to,))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the journal is not open")
        return self._db


def _received(
    event_id: str, user_id: str | None, redelivery: int, received_at: float, body: str
) -> Received:
    event = ResidentEvent.from_stored(event_id, user_id, json.loads(body), bool(redelivery))
    return Received(event, datetime.fromtimestamp(received_at, UTC))
