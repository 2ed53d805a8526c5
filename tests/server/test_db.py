import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from server.db.migrate import upgrade
from server.db.models import Booking, Station, Unit
from server.db.session import Database


def test_migrations_build_the_schema_and_constraints_hold(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # idempotent

    async def scenario() -> None:
        db = Database(database_url)
        now = datetime.now(UTC)
        try:
            async with db.transaction() as session:
                session.add(Station(id="s1", name_ja="避難所", name_en="Shelter", latitude=33.8,
                                    longitude=132.7))  # fmt: skip
                session.add(Unit(gw_id="gw", unit="rs485-1.1", station_id="s1"))
            async with db.transaction() as session:
                unit = (await session.scalars(select(Unit))).one()
                assert unit.alarms == []
                session.add(Booking(id="b1", resident_id="r1", station_id="s1", window_start=now,
                                    unit_pk=unit.id, port=1, ticket_code="K7Q2", created_at=now,
                                    updated_at=now))  # fmt: skip
            with pytest.raises(IntegrityError):  # the same port in the same window, twice
                async with db.transaction() as session:
                    twin = Booking(id="b2", resident_id="r2", station_id="s1", window_start=now,
                                   unit_pk=unit.id, port=1, ticket_code="AAAA", created_at=now,
                                   updated_at=now)  # fmt: skip
                    session.add(twin)
            async with db.transaction() as session:
                booking = await session.get(Booking, "b1")
                assert booking is not None
                assert booking.window_start == now  # tz-aware UTC round trip
                assert booking.window_start.tzinfo is not None
        finally:
            await db.dispose()

    asyncio.run(scenario())


def test_sqlite_connections_opened_at_once_all_succeed(tmp_path: Path) -> None:
    """The server opens several at start (ingest, booking writers, jobs): none may fail
    with "database is locked" while another switches the file to WAL."""

    async def open_at_once(url: str) -> list[BaseException]:
        databases = [Database(url) for _ in range(8)]

        async def one(db: Database) -> None:
            async with db.transaction() as session:
                await session.execute(text("SELECT 1"))

        try:
            results = await asyncio.gather(*(one(db) for db in databases), return_exceptions=True)
        finally:
            for db in databases:
                await db.dispose()
        return [r for r in results if isinstance(r, BaseException)]

    for trial in range(20):
        url = f"sqlite+aiosqlite:///{tmp_path / f'trial-{trial}.sqlite3'}"
        upgrade(url)
        assert asyncio.run(open_at_once(url)) == []
