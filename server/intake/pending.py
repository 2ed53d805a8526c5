"""The events the intake acknowledged and the server does not have yet.

`store` is the webhook's wait: concurrent requests hand their events to one writer, which
journals whatever is waiting in one fsynced transaction (`group_commit`, as the server's
inbox does) and then lets every one of them answer LINE. The journal is the copy that
survives a crash; the queue here is the one handed on, and the only place a location's
point is kept.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from typing import Final

from server.intake.journal import Journal
from server.line.group_commit import GroupCommit
from server.line.inbox import Received

MAX_BATCH: Final = 1000
"""Events one journal transaction writes at most."""


class Pending:
    """`open`, then `store` (the webhook), `waiting` and `done` (the relay); `close`."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._commits: GroupCommit[Received, None, None] = GroupCommit(
            self._append, lambda _items, _written: None, what="intake events",
            max_batch=MAX_BATCH,
        )  # fmt: skip
        self._items: deque[tuple[int, Received]] = deque()
        self._arrived = asyncio.Event()

    async def open(self) -> int:
        """Read back what the journal holds (a restart's backlog); how many."""
        self._items.extend(await self._journal.open())
        return len(self._items)

    async def store(self, items: Sequence[Received]) -> None:
        """Return once the events are journaled. Raises what the journal raised."""
        if items:
            await self._commits.submit(items)

    async def waiting(self, limit: int) -> list[tuple[int, Received]]:
        """The oldest events waiting, at least one and at most `limit`, with their seq."""
        while not self._items:
            self._arrived.clear()
            await self._arrived.wait()
        return [self._items[k] for k in range(min(limit, len(self._items)))]

    async def done(self, up_to: int) -> None:
        """The server has every event up to seq `up_to`."""
        while self._items and self._items[0][0] <= up_to:
            self._items.popleft()
        await self._journal.forget(up_to)

    def __len__(self) -> int:
        return len(self._items)

    async def close(self) -> None:
        await self._commits.close()
        await self._journal.close()

    async def _append(self, items: list[Received]) -> None:
        new = await self._journal.append(items)
        if new:
            self._items.extend(new)
            self._arrived.set()
