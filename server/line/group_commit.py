"""Group commit: concurrent callers' items written in one transaction, each told after.

A webhook may answer only once its events are durable, and one transaction per request
would cap a burst at what the store commits per second. So callers hand their items to a
writer task, which takes whatever is waiting (up to `max_batch` items) into one `write`
and then answers each caller from that write's result (`answer`). The writer never waits
to fill a batch: a lone caller is one transaction of one. A failed write fails the
callers of that batch, not the writer. The server's inbox and the intake's journal both
write this way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from server.api.jobs import cancel_all

log = logging.getLogger(__name__)

I = TypeVar("I")  # noqa: E741 - an item
W = TypeVar("W")  # what a write returns
A = TypeVar("A")  # what a caller is answered


@dataclass(slots=True)
class _Request(Generic[I, A]):
    items: Sequence[I]
    future: asyncio.Future[A] = field(repr=False)


class GroupCommit(Generic[I, W, A]):
    """`submit` from any task of one event loop; `close` on the way out."""

    def __init__(
        self,
        write: Callable[[list[I]], Awaitable[W]],
        answer: Callable[[Sequence[I], W], A],
        *,
        what: str,
        max_batch: int,
        writers: int = 1,
    ) -> None:
        self._write = write
        self._answer = answer
        self._what = what
        self._max_batch = max_batch
        self._writers = writers
        self._queue: asyncio.Queue[_Request[I, A]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def submit(self, items: Sequence[I]) -> A:
        """Return the answer once the items are written. Raises what the write raised."""
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._run(), name=f"{self._what}-writer-{n}")
                           for n in range(self._writers)]  # fmt: skip
        future: asyncio.Future[A] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Request(items, future))
        return await future

    async def close(self) -> None:
        await cancel_all(self._tasks)
        self._tasks = []

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].items)
            while size < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
                size += len(batch[-1].items)
            try:
                written = await self._write([item for r in batch for item in r.items])
            except Exception as exc:  # the callers fail; the writer lives on
                log.warning("writing %d %s failed (%s)", size, self._what, type(exc).__name__)
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            for request in batch:
                if not request.future.done():
                    request.future.set_result(self._answer(request.items, written))
