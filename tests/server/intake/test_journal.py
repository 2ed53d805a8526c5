"""The intake's journal and queue: what was acknowledged survives a restart, once each,
and a location's point is handed on but never written down."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from server.intake.journal import Journal
from server.intake.pending import Pending
from server.line.events import Kind, Point, ResidentEvent
from server.line.inbox import Received

pytestmark = pytest.mark.anyio
AT = datetime(2026, 12, 6, 4, 30, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def text(event_id: str, words: str = "充電") -> Received:
    return Received(ResidentEvent(event_id, "Uone", Kind.TEXT, 1, f"r-{event_id}", text=words), AT)


def location(event_id: str) -> Received:
    event = ResidentEvent(event_id, "Uone", Kind.LOCATION, 2, "r", point=Point(33.5, 132.5))
    return Received(event, AT)


async def test_stored_events_survive_a_restart_in_order_each_once(tmp_path: Path) -> None:
    pending = Pending(Journal(tmp_path / "journal.sqlite3"))
    assert await pending.open() == 0
    await asyncio.gather(pending.store([text("e1"), text("e2")]), pending.store([text("e3")]))
    await pending.store([text("e2"), text("e4")])  # e2 again: LINE redelivered it
    await pending.close()  # as if killed: nothing was handed on

    again = Pending(Journal(tmp_path / "journal.sqlite3"))
    assert await again.open() == 4
    waiting = await again.waiting(10)
    assert [item.event.event_id for _, item in waiting] == ["e1", "e2", "e3", "e4"]
    assert waiting[0][1] == text("e1")  # the whole event and when it came
    await again.close()


async def test_what_the_server_took_is_forgotten(tmp_path: Path) -> None:
    pending = Pending(Journal(tmp_path / "journal.sqlite3"))
    await pending.open()
    await pending.store([text("e1"), text("e2"), text("e3")])
    first = await pending.waiting(2)
    assert [item.event.event_id for _, item in first] == ["e1", "e2"]
    await pending.done(first[-1][0])
    assert len(pending) == 1
    await pending.close()

    again = Pending(Journal(tmp_path / "journal.sqlite3"))
    assert await again.open() == 1
    [(_, left)] = await again.waiting(10)
    assert left.event.event_id == "e3"
    await again.close()


async def test_a_point_is_handed_on_from_memory_and_never_written(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    pending = Pending(Journal(path))
    await pending.open()
    await pending.store([location("e1")])
    [(_, item)] = await pending.waiting(1)
    assert item.event.point == Point(33.5, 132.5)
    with sqlite3.connect(path) as db:
        written = " ".join(str(c) for row in db.execute("SELECT * FROM events") for c in row)
    assert "33.5" not in written and "132.5" not in written, written
    await pending.close()

    again = Pending(Journal(path))
    await again.open()
    [(_, read_back)] = await again.waiting(1)
    assert read_back.event.kind is Kind.LOCATION and read_back.event.point is None
    await again.close()


async def test_waiting_returns_once_an_event_is_stored(tmp_path: Path) -> None:
    pending = Pending(Journal(tmp_path / "journal.sqlite3"))
    await pending.open()
    waiter = asyncio.create_task(pending.waiting(10))
    await pending.store([text("e1")])
    async with asyncio.timeout(10):
        [(_, item)] = await waiter
    assert item.event.event_id == "e1"
    await pending.close()


async def test_a_journal_that_cannot_be_written_fails_the_request_not_the_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite3"
    pending = Pending(Journal(path))
    await pending.open()
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the file
    try:
        with pytest.raises(sqlite3.OperationalError):
            await pending.store([text("e1")])
    finally:
        blocker.rollback()
        blocker.close()
    await pending.store([text("e2")])  # the writer lives on
    [(_, item)] = await pending.waiting(10)
    assert item.event.event_id == "e2"
    await pending.close()
