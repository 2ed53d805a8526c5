"""The server's background work: periodic jobs.

A job that fails is logged and tried again next period; it never takes the server down.
A database outage fails every attempt while it lasts: the database logs it as it starts
and ends (`Database.transaction`), so a job adds no traceback per attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from server.db.session import is_outage

log = logging.getLogger(__name__)


async def every(name: str, period_s: float, step: Callable[[], Awaitable[None]]) -> None:
    """Run `step` every `period_s` until cancelled."""
    while True:
        await asyncio.sleep(period_s)
        try:
            await step()
        except Exception as exc:
            if is_outage(exc):
                log.debug("background job %s waits for the database (%s)", name,
                          type(exc).__name__)  # fmt: skip
            else:
                log.exception("background job %s failed; retrying in %.0fs", name, period_s)


async def cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel and wait for every task, so shutdown leaves nothing running."""
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for task, result in zip(tasks, results, strict=True):
        if isinstance(result, Exception):
            log.error("task %s ended with %r", task.get_name(), result)
