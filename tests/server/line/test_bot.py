"""The bot's own parts: look-ups coalesced per turn of the loop, recovery by age and by
lease."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from server.db.models import LineEvent
from server.line.bot import BookingDesk, Coalesced, LineBot
from server.line.events import ResidentEvent
from server.line.inbox import LEASE, Received
from tests.server.line.conftest import line_settings

pytestmark = pytest.mark.anyio


async def test_lookups_of_one_turn_are_fetched_in_one_call() -> None:
    calls: list[list[int]] = []

    async def fetch(keys: list[int]) -> list[int]:
        calls.append(keys)
        return [k * 10 for k in keys]

    looked_up = Coalesced(fetch)
    first = await asyncio.gather(*(looked_up.get(k) for k in (1, 2, 3)))
    later = await looked_up.get(4)
    assert (first, later) == ([10, 20, 30], 40)
    assert calls == [[1, 2, 3], [4]]


async def test_a_failed_fetch_fails_each_lookup_of_its_turn() -> None:
    async def fetch(keys: list[int]) -> list[int]:
        raise OSError("store down")

    looked_up = Coalesced(fetch)
    found = await asyncio.gather(looked_up.get(1), looked_up.get(2), return_exceptions=True)
    assert [type(f) for f in found] == [OSError, OSError]


def asking(name: str, received_at: datetime, **lease: Any) -> LineEvent:
    """Resident `U{name}` asking for their booking, stored and not yet processed."""
    return LineEvent(webhook_event_id=name, user_id=f"U{name}", kind="text",
                     body={"kind": "text", "text": "予約確認"}, redelivery=False,
                     received_at=received_at, **lease)  # fmt: skip


async def processed(app: FastAPI, *names: str) -> list[bool]:
    async with app.state.services.db.transaction() as session:
        rows = [await session.get(LineEvent, name) for name in names]
    return [row is not None and row.processed_at is not None for row in rows]


async def test_recovery_takes_old_unprocessed_events_once(app: FastAPI) -> None:
    bot = app.state.services.line_bot
    now = datetime.now(UTC)
    async with app.state.services.db.transaction() as session:
        for name, age_s in (("old", 120), ("young", 1)):
            session.add(asking(name, now - timedelta(seconds=age_s)))
    assert await bot.recover(now, older_than_s=30) == 1  # the young one is someone's, in hand
    assert await bot.recover(now, older_than_s=30) == 0  # queued already: not again
    await bot.idle()
    assert await processed(app, "old", "young") == [True, False]


async def test_a_live_process_s_queue_is_not_recovered_by_another_until_its_lease_runs_out(
    app: FastAPI, database_url: str
) -> None:
    """Process A stored an event and holds it queued (its worker busy): B's recovery leaves
    it while A renews, takes it once A stops renewing (dead), and only one of them does."""
    svc = app.state.services
    now = datetime.now(UTC)
    desk = BookingDesk(svc.db, svc.booking, svc.clock, ZoneInfo("Asia/Tokyo"))
    busy = LineBot(svc.db, line_settings(database_url, mqtt_client_id="server-a"), desk,
                   svc.clock)  # fmt: skip  # never started: its worker never gets to it
    event = ResidentEvent.from_stored("held", "Uheld", {"kind": "text", "text": "予約確認"},
                                      False)  # fmt: skip
    received = now - timedelta(seconds=40)  # old enough for recovery to look at it
    [stored] = await busy.inbox.store([Received(event, received)])
    busy.submit([stored])
    recovering = svc.line_bot  # process B
    assert await recovering.recover(now, older_than_s=30) == 0  # A's lease holds
    renewed = received + LEASE - timedelta(seconds=5)
    await busy.renew(renewed)  # A is alive
    assert await recovering.recover(received + LEASE + timedelta(seconds=1), 30) == 0
    gone = renewed + LEASE + timedelta(seconds=1)  # A renews no more
    assert await recovering.recover(gone, older_than_s=30) == 1
    assert await recovering.recover(gone, older_than_s=30) == 0
    await recovering.idle()
    assert await processed(app, "held") == [True]


async def test_at_start_a_process_takes_back_what_its_earlier_run_held(app: FastAPI) -> None:
    bot = app.state.services.line_bot
    now = datetime.now(UTC)
    async with app.state.services.db.transaction() as session:
        for name, owner in (("mine", "chargenet-server"), ("theirs", "server-a")):
            session.add(asking(name, now - timedelta(seconds=5), leased_by=owner,
                               leased_until=now + LEASE))  # fmt: skip
    assert await bot.recover(now) == 0  # both leases hold
    assert await bot.recover(now, starting=True) == 1  # its own earlier run's, at once
    await bot.idle()
    assert await processed(app, "mine", "theirs") == [True, False]


async def test_processed_events_are_forgotten_after_a_week(app: FastAPI) -> None:
    bot = app.state.services.line_bot
    now = datetime.now(UTC)
    ages = {"old-done": (8, True), "old-pending": (8, False), "recent-done": (6, True)}
    async with app.state.services.db.transaction() as session:
        for name, (days, done) in ages.items():
            at = now - timedelta(days=days)
            session.add(LineEvent(webhook_event_id=name, user_id="Uold", kind="other",
                                  body={"kind": "other"}, redelivery=False, received_at=at,
                                  processed_at=at if done else None))  # fmt: skip
    assert await bot.forget(now) == 1
    async with app.state.services.db.transaction() as session:
        left = set(await session.scalars(select(LineEvent.webhook_event_id)))
    assert left == {"old-pending", "recent-done"}
