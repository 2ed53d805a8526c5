"""The journal of ChangeSets: kept with the change, handed out again after a crash, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.db.session import Database
from server.ingest.changeset import ChangeSet, EventRecord, GatewayChange, PortChange
from server.ingest.fanout import FanOut
from server.ingest.journal import ORPHANED_AFTER, delivered, record, undelivered
from server.ingest.owner import ClientIdLock
from tests.server.database import with_database

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
FAULT = ChangeSet(
    ports=(
        PortChange(
            7, "st-1", "gw-1", "rs485-1.1", 2, "available", "faulted", False, False, "E12", NOW
        ),
    ),
    events=(
        EventRecord(
            "ev-1", "gw-1", "rs485-1.1", 7, "st-1", "port_fault", 2, None, "E12", None, NOW, False
        ),
    ),
    gateways=(GatewayChange("gw-1", "online", NOW),),
    station_ids=frozenset({"st-1"}),
    decided=True,
)


async def keep(db: Database, changes: ChangeSet, owner: str, at: datetime) -> ChangeSet:
    async with db.transaction() as session:
        return await record(session, changes, owner, at)


def test_a_change_set_comes_back_whole_until_delivered(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        kept = await keep(db, FAULT, "server-a", NOW)
        assert kept.pending is not None
        assert await keep(db, ChangeSet(), "server-a", NOW) == ChangeSet()  # nothing to keep

        again = await undelivered(db, "server-a", NOW + timedelta(seconds=5), own=True)
        assert again == [kept]  # every field, times with their zone, the row to strike off
        await delivered(db, again[0])
        assert await undelivered(db, "server-a", NOW + timedelta(seconds=6), own=True) == []

    with_database(database_url, scenario)


def test_only_orphans_are_taken_from_other_processes(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        live = [ClientIdLock(db, "server-a"), ClientIdLock(db, "server-b")]
        for lock in live:  # as each running server holds its id (PostgreSQL only)
            await lock.take()
        mine = await keep(db, FAULT, "server-a", NOW)
        fresh = await keep(db, FAULT, "server-b", NOW)
        orphan = await keep(db, FAULT, "server-c", NOW - ORPHANED_AFTER - timedelta(seconds=1))

        later = NOW + timedelta(seconds=1)
        assert [c.pending for c in await undelivered(db, "server-a", later, own=False)] == [
            orphan.pending
        ]  # not its own (being handed out), not another live process's
        taken = await undelivered(db, "server-a", later, own=True)
        assert [c.pending for c in taken] == [mine.pending, orphan.pending]  # taken over again
        assert await undelivered(db, "server-b", later, own=False) == []  # claimed: not orphaned
        assert [c.pending for c in await undelivered(db, "server-b", later, own=True)] == [
            fresh.pending
        ]
        for lock in live:
            await lock.release()

    with_database(database_url, scenario)


def test_a_process_gone_is_taken_over_at_once_on_postgres(postgres_url: str) -> None:
    """Its client id free (the lock went with its connection): no ten-minute wait."""

    async def scenario(db: Database) -> None:
        doomed, survivor = ClientIdLock(db, "server-d"), ClientIdLock(db, "server-a")
        await doomed.take()
        await survivor.take()
        left = await keep(db, FAULT, "server-d", NOW)
        assert await undelivered(db, "server-a", NOW, own=False) == []  # server-d lives
        await doomed.release()  # as a SIGKILL closes its connection
        assert [c.pending for c in await undelivered(db, "server-a", NOW, own=False)] == [
            left.pending
        ]
        await doomed.take()  # the lock taken for the look is free again once it committed
        await doomed.release()
        await survivor.release()

    with_database(postgres_url, scenario)


def test_the_fan_out_strikes_a_change_set_off_even_when_a_listener_fails(
    database_url: str,
) -> None:
    heard: list[ChangeSet] = []

    async def broken(changes: ChangeSet) -> None:
        raise RuntimeError("a bug in one listener")

    async def listener(changes: ChangeSet) -> None:
        heard.append(changes)

    async def scenario(db: Database) -> None:
        fan_out = FanOut(db, [broken, listener])
        kept = await keep(db, FAULT, "server-a", NOW)
        await fan_out(kept)
        assert heard == [kept]  # the others still ran
        assert fan_out.errors == 1
        assert await undelivered(db, "server-a", NOW, own=True) == []

    with_database(database_url, scenario)
