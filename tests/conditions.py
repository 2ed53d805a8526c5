"""Waiting on a condition with a deadline: the only way tests synchronise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout_s: float = 10.0, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


async def async_wait_until(
    condition: Callable[[], T], timeout_s: float = 10.0, what: str = "condition"
) -> T:
    """The same inside an event loop, yielding to it between checks."""

    async def read() -> T:
        return condition()

    return await async_read_until(read, bool, timeout_s, what)


async def async_read_until(
    read: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    timeout_s: float = 10.0,
    what: str = "condition",
) -> T:
    """Await `read` until `done` holds for its value (a database count, say); the value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout_s}s waiting for {what} (last {value!r})"
            )
        await asyncio.sleep(0.01)
