"""The server's background work: periodic jobs and the change fan-out.

A job that fails is logged and tried again next period; it never takes the server down.
The fan-out hands one ChangeSet to each listener in turn, isolating their failures, so a
bug in incidents never stops bookings from moving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from server.api.deps import Listener
from server.ingest.changeset import ChangeSet

log = logging.getLogger(__name__)


class FanOut:
    """Calls every listener with a ChangeSet; counts the ones that raised."""

    def __init__(self, listeners: Sequence[Listener]) -> None:
        self.listeners = tuple(listeners)
        self.errors = 0

    async def __call__(self, changes: ChangeSet) -> None:
        if not changes:
            return
        for listener in self.listeners:
            try:
                await listener(changes)
            except Exception:
                self.errors += 1
                log.exception("change listener %s failed", getattr(listener, "__qualname__", ""))


async def every(name: str, period_s: float, step: Callable[[], Awaitable[None]]) -> None:
    """Run `step` every `period_s` until cancelled."""
    while True:
        await asyncio.sleep(period_s)
        try:
            await step()
        except Exception:
            log.exception("background job %s failed; retrying in %.0fs", name, period_s)


async def cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel and wait for every task, so shutdown leaves nothing running."""
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, Exception):
            log.error("task %s ended with %r", task.get_name(), result)
