"""Two `chargenet server` processes on one PostgreSQL database, many residents at once for
the last places of a window, over HTTP: exactly the window's capacity succeeds."""

from __future__ import annotations

import asyncio
import json
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from server.db.migrate import upgrade
from server.db.models import Booking, Gateway, Port, Unit
from server.db.session import Database
from tests.server.running import ServerProcess

pytestmark = pytest.mark.slow
PORTS = 4
RESIDENTS = 60


async def one_live_battery(database_url: str) -> None:
    """A gateway and a 4-port battery as ingest would have left them (no MQTT needed)."""
    db = Database(database_url)
    now = datetime.now(UTC)
    try:
        async with db.transaction() as session:
            session.add(Gateway(gw_id="gw-1", state="online", status_seq=1, last_seen_at=now))
            unit = Unit(gw_id="gw-1", unit="rs485-1.1", online=True, state_seq=1, state_ts=now,
                        received_at=now, soc_pct=90.0, rated_wh=2000.0, alarms=[])  # fmt: skip
            session.add(unit)
            await session.flush()
            for number in range(1, PORTS + 1):
                session.add(Port(unit_pk=unit.id, port=number, status="available"))
    finally:
        await db.dispose()


async def active_bookings(database_url: str) -> list[tuple[int, int]]:
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            rows = await session.execute(
                select(Booking.unit_pk, Booking.port).where(Booking.status == "active")
            )
            return [(unit_pk, port) for unit_pk, port in rows]
    finally:
        await db.dispose()


def book(server: ServerProcess, resident: str, window_start: str) -> int:
    body = {"resident_id": resident, "station_id": "st-1", "window_start": window_start}
    try:
        server.request("POST", "/api/v1/bookings", body, admin=True)
        return 201
    except urllib.error.HTTPError as error:
        assert json.loads(error.read())["error"]["code"] == "window_full"
        return int(error.code)


def test_two_server_processes_never_overbook(tmp_path: Path, postgres_url: str) -> None:
    upgrade(postgres_url)
    asyncio.run(one_live_battery(postgres_url))
    first = ServerProcess(tmp_path, "", 600.0, database_url=postgres_url)
    second = ServerProcess(tmp_path, "", 600.0, database_url=postgres_url)
    try:
        first.admin("POST", "/api/v1/stations", {
            "id": "st-1", "name_ja": "避難所", "name_en": "Shelter",
            "latitude": 33.5, "longitude": 132.5,
        })  # fmt: skip
        first.admin("PUT", "/api/v1/batteries/gw-1/rs485-1.1", {"station_id": "st-1"})
        windows = first.get("/api/v1/stations/st-1/windows")["windows"]
        window = next(w for w in windows if w["places"] == PORTS)["start"]
        with ThreadPoolExecutor(max_workers=RESIDENTS) as pool:
            codes = list(pool.map(
                lambda i: book((first, second)[i % 2], f"resident-{i}", window), range(RESIDENTS)
            ))  # fmt: skip
        assert codes.count(201) == PORTS
        assert codes.count(409) == RESIDENTS - PORTS
        booked = asyncio.run(active_bookings(postgres_url))
        assert len(booked) == PORTS and len(set(booked)) == PORTS  # no port twice
    finally:
        assert first.stop() == 0, first.log_text()
        assert second.stop() == 0, second.log_text()
