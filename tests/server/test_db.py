import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError

from server.db.migrate import sync_url, upgrade
from server.db.models import Booking, Station, Unit
from server.db.session import SESSION_SETTINGS, URGENT_RUN, Database, WriterTurns, is_outage
from tests.conditions import async_wait_until


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


def test_migration_0010_counts_old_batches_and_empties_those_that_ended(
    database_url: str,
) -> None:
    """Batches written before 0010 get their count; the sent and failed ones lose their user
    ids, a pending one keeps them (it is still to be sent), a one-person message stays one."""
    upgrade(database_url, "0008")
    row = (
        "INSERT INTO outbox (platform, target, body, reply_tried, retry_key, source, state, "
        "attempts, next_at, created_at, recipients) VALUES ('line', :target, '[]', false, "
        "'k', 's', :state, 0, '2026-12-07 00:00:00', '2026-12-07 00:00:00', :recipients)"
    )
    rows = [("multicast:a:0", "sent", '["U1", "U2"]'), ("multicast:a:1", "failed", '["U3"]'),
            ("multicast:a:2", "pending", '["U4", "U5", "U6"]'), ("U7", "sent", None)]  # fmt: skip
    engine = create_engine(sync_url(database_url))
    try:
        with engine.begin() as connection:
            for target, state, recipients in rows:
                connection.execute(text(row), {"target": target, "state": state,
                                               "recipients": recipients})  # fmt: skip
        upgrade(database_url)
        with engine.connect() as connection:
            found = connection.execute(text(
                "SELECT target, recipients, recipient_count FROM outbox"))  # fmt: skip
            after = sorted((t, json.loads(r) if isinstance(r, str) else r, n) for t, r, n in found)
    finally:
        engine.dispose()
    assert after == [("U7", None, None), ("multicast:a:0", [], 2), ("multicast:a:1", [], 1),
                     ("multicast:a:2", ["U4", "U5", "U6"], 3)]  # fmt: skip


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


async def queued(turns: WriterTurns, *, urgent: int, others: int) -> None:
    """Until so many wait for the writer's turn (urgent, others)."""
    await async_wait_until(
        lambda: tuple(map(len, turns._waiting)) == (urgent, others), 5,
        f"{urgent} urgent and {others} other waiters",
    )  # fmt: skip


def test_a_process_takes_sqlites_writer_in_turn_urgent_first() -> None:
    """FIFO among the others, an urgent one before them, a waiter that gave up skipped, and
    a turn not had within the busy timeout an outage (TimeoutError is an OSError)."""

    async def scenario() -> list[str]:
        turns, order = WriterTurns(), []
        held = asyncio.Event()
        release = asyncio.Event()

        async def take(name: str, urgent: bool = False) -> None:
            async with turns.turn(urgent):
                order.append(name)
                if name == "first":
                    held.set()
                    await release.wait()

        first = asyncio.create_task(take("first"))
        await held.wait()
        waiting = [asyncio.create_task(take(name)) for name in ("a", "gives-up", "b")]
        await queued(turns, urgent=0, others=3)
        waiting[1].cancel()
        urgent = asyncio.create_task(take("urgent", urgent=True))
        await queued(turns, urgent=1, others=3)  # the one that gave up stays until skipped
        release.set()
        await asyncio.gather(first, waiting[0], waiting[2], urgent)
        assert waiting[1].cancelled()
        return order

    assert asyncio.run(scenario()) == ["first", "urgent", "a", "b"]


def test_a_turn_not_had_within_the_busy_timeout_is_an_outage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("server.db.session.SQLITE_BUSY_TIMEOUT_MS", 50)

    async def scenario() -> None:
        turns = WriterTurns()
        async with turns.turn(False):
            with pytest.raises(TimeoutError) as late:
                async with turns.turn(True):
                    pass
            assert is_outage(late.value)
        async with turns.turn(False):  # the one that gave up holds nothing
            pass

    asyncio.run(scenario())


def test_urgent_turns_in_a_row_are_bounded_while_others_wait() -> None:
    """A stream of webhooks' writes cannot starve the bot's: after `URGENT_RUN` urgent turns
    a waiting other goes next."""

    async def scenario() -> list[str]:
        turns, order = WriterTurns(), []
        held, release = asyncio.Event(), asyncio.Event()

        async def take(name: str, urgent: bool) -> None:
            async with turns.turn(urgent):
                order.append(name)
                if name == "first":
                    held.set()
                    await release.wait()

        first = asyncio.create_task(take("first", False))
        await held.wait()
        other = asyncio.create_task(take("other", False))
        await queued(turns, urgent=0, others=1)
        urgent = [asyncio.create_task(take(f"u{n}", True)) for n in range(URGENT_RUN + 2)]
        await queued(turns, urgent=URGENT_RUN + 2, others=1)
        release.set()
        await asyncio.gather(first, other, *urgent)
        return order

    runs = [f"u{n}" for n in range(URGENT_RUN + 2)]
    assert asyncio.run(scenario()) == ["first", *runs[:URGENT_RUN], "other", *runs[URGENT_RUN:]]


def test_postgresql_connections_notice_a_vanished_peer_and_end_abandoned_transactions(
    postgres_url: str,
) -> None:
    """Without these a host that lost power keeps its locks for the kernel's two hours."""

    async def scenario() -> dict[str, str]:
        db = Database(postgres_url)
        try:
            async with db.transaction() as session:
                return {name: str(await session.scalar(text(f"SHOW {name}")))
                        for name in SESSION_SETTINGS}  # fmt: skip
        finally:
            await db.dispose()

    shown = asyncio.run(scenario())
    assert shown == {"tcp_keepalives_idle": "20", "tcp_keepalives_interval": "5",
                     "tcp_keepalives_count": "4",
                     "idle_in_transaction_session_timeout": "10min"}  # fmt: skip


def test_servers_starting_together_on_an_empty_postgresql_migrate_it_once(
    postgres_url: str,
) -> None:
    """Several server processes started at once each migrate at start: they take turns.
    Each waits, imported, for its standard input to end, which ends for all at once, so
    the migrations overlap."""
    migrate = [sys.executable, "-c", "import sys\n"
               "from server.db.migrate import upgrade\n"
               "sys.stdin.read()\n"
               "upgrade(sys.argv[1])", postgres_url]  # fmt: skip
    starting = [subprocess.Popen(migrate, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(4)]  # fmt: skip
    for process in starting:
        assert process.stdin is not None and process.stderr is not None
        process.stdin.close()
    errors = [p.stderr.read() for p in starting if p.stderr is not None]
    for process in starting:
        process.wait(timeout=120)
    assert [p.returncode for p in starting] == [0] * 4, [e.splitlines()[-3:] for e in errors if e]

    async def versions() -> list[str]:
        db = Database(postgres_url)
        try:
            async with db.transaction() as session:
                return list(await session.scalars(text("SELECT version_num FROM alembic_version")))
        finally:
            await db.dispose()

    assert len(asyncio.run(versions())) == 1


def test_migration_0009_gives_registrations_made_before_it_a_reference(database_url: str) -> None:
    """Residents registered before priority existed get a reference to show at the desk."""
    upgrade(database_url, "0007")

    async def registered_before() -> None:
        db = Database(database_url)
        try:
            async with db.transaction() as session:
                for user in ("U1", "U2"):
                    await session.execute(
                        text(
                            "INSERT INTO resident_registrations (user_id, municipality, stay,"
                            " consented_at, updated_at) VALUES (:u, '大洲市', 'home', :t, :t)"
                        ),
                        {"u": user, "t": datetime.now(UTC)},
                    )
        finally:
            await db.dispose()

    async def references() -> list[str]:
        db = Database(database_url)
        try:
            async with db.transaction() as session:
                rows = await session.execute(text("SELECT reference FROM resident_registrations"))
                return [row[0] for row in rows]
        finally:
            await db.dispose()

    asyncio.run(registered_before())
    upgrade(database_url)
    found = asyncio.run(references())
    assert len(found) == 2 and len(set(found)) == 2
    assert all(len(code) == 8 and not set(code) & set("01OIL") for code in found)
