"""A separate server process for the concurrency test: fires many bookings at one window.

`python -m tests.server.booking_shell.booker URL STATION WINDOW N NAME` prints `ready`, waits
for a line on stdin (so both processes start together), then books N residents concurrently
and prints `{"ok": [...booking ids], "full": n, "other": [...]}` as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime

from server.booking.service import BookingService
from server.db.session import Database
from server.errors import Conflict
from tests.server.booking_shell.world import Clock, settings


async def fire(url: str, station: str, window: datetime, n: int, name: str) -> dict[str, object]:
    db = Database(url)
    service = BookingService(db, settings(url), Clock())
    try:
        await service.options(0.0, 0.0, window)  # warm: snapshot loaded, engine connected
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        results = await asyncio.gather(
            *(service.book(f"{name}-{i}", station, window) for i in range(n)),
            return_exceptions=True,
        )
        ok = [r.id for r in results if not isinstance(r, BaseException)]
        full = sum(1 for r in results if isinstance(r, Conflict) and r.code == "window_full")
        other = [repr(r) for r in results if isinstance(r, BaseException) and not (
            isinstance(r, Conflict) and r.code == "window_full")]  # fmt: skip
        return {"ok": ok, "full": full, "other": other}
    finally:
        await service.close()
        await db.dispose()


if __name__ == "__main__":
    url, station, window, n, name = sys.argv[1:]
    print(json.dumps(asyncio.run(fire(url, station, datetime.fromisoformat(window), int(n), name))))
