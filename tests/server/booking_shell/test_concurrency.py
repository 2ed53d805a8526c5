"""Never overbooked: many simultaneous bookings for the last places of a window.

(a) one process, two services (two engines, as two workers would have) and asyncio.gather,
on SQLite and PostgreSQL; (b) two OS processes against the same PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from server.booking.service import BookingService
from server.db.session import Database
from server.errors import Conflict
from tests.server.booking_shell.world import (
    W1,
    Clock,
    StationSpec,
    active_bookings,
    load,
    open_world,
    settings,
)

ROOT = Path(__file__).resolve().parents[3]
PORTS = 6


async def _assert_exactly_capacity(db: Database, capacity: int) -> None:
    active = await active_bookings(db)
    assert len(active) == capacity
    assert len({(b.unit_pk, b.port, b.window_start) for b in active}) == capacity
    assert len({b.resident_id for b in active}) == capacity
    assert await load(db, "A", W1) == capacity


def test_simultaneous_bookings_in_one_process(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        db, first, _units = await open_world(
            database_url, [StationSpec("A", 33.8, 132.7, PORTS)], clock
        )
        second_db = Database(database_url)
        second = BookingService(second_db, settings(database_url), clock)
        try:
            await first.book("early-1", "A", W1)  # two places already gone
            await first.book("early-2", "A", W1)
            services = [first, second]
            results = await asyncio.gather(
                *(services[i % 2].book(f"r{i}", "A", W1) for i in range(60)),
                return_exceptions=True,
            )
            ok = [r for r in results if not isinstance(r, BaseException)]
            full = [r for r in results if isinstance(r, Conflict) and r.code == "window_full"]
            assert len(ok) == PORTS - 2
            assert len(full) == 60 - (PORTS - 2)
            await _assert_exactly_capacity(db, PORTS)
        finally:
            await first.close()
            await second.close()
            await second_db.dispose()
            await db.dispose()

    asyncio.run(scenario())


def test_two_server_processes_on_postgresql(postgres_url: str) -> None:
    async def setup() -> None:
        db, service, _units = await open_world(
            postgres_url, [StationSpec("A", 33.8, 132.7, PORTS)], Clock()
        )
        await service.book("early-1", "A", W1)
        await service.close()
        await db.dispose()

    asyncio.run(setup())
    procs = []
    for name in ("p1", "p2"):
        cmd = [sys.executable, "-m", "tests.server.booking_shell.booker", postgres_url, "A",
               W1.isoformat(), "80", name]  # fmt: skip
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True))  # fmt: skip
    for proc in procs:  # both warmed up (engine connected, stations loaded)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = []
    for proc in procs:
        out, _err = proc.communicate(timeout=120)
        assert proc.returncode == 0
        outputs.append(json.loads(out))
    assert all(o["other"] == [] for o in outputs), outputs
    ok = sum(len(o["ok"]) for o in outputs)
    full = sum(o["full"] for o in outputs)
    assert ok == PORTS - 1
    assert full == 160 - (PORTS - 1)

    async def check() -> None:
        db = Database(postgres_url)
        try:
            await _assert_exactly_capacity(db, PORTS)
        finally:
            await db.dispose()

    asyncio.run(check())
