"""The outbox sender on both stores, with scripted platforms: claims, leases, order, outcomes.

The platforms here are stand-ins answering from a script (the LINE transport against the
sandbox is in test_line_transport.py); the database, the claims and the timing are real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from server.db.models import OutboxMessage
from server.db.session import Database
from server.delivery.outbox import Platform, enqueue, enqueue_multicast
from server.delivery.sender import OutboxSender, recorded
from server.delivery.transport import Attempt, Outcome, Outgoing, Transport
from server.settings import Settings
from tests.conditions import async_read_until, async_wait_until
from tests.server.database import with_database

SETTINGS = Settings(line_reply_within_s=4.0, delivery_backoff_max_s=0.05)
"""Leases of 2 s (attempts cut off after 1 s), retries within 50 ms."""
QUIET_S = 60.0
"""A poll period no test waits for: what happens comes from wakes."""

Script = Callable[[Outgoing], Awaitable[Attempt]]


def utc_now() -> datetime:
    return datetime.now(UTC)


async def accept(_msg: Outgoing) -> Attempt:
    return Attempt.sent()


@dataclass
class ScriptedPlatform:
    """A platform stand-in: answers each send by `script`, logs every attempt in order."""

    platform: Platform = Platform.LINE
    script: Script = accept
    log: list[tuple[str, Outgoing]] = field(default_factory=list)
    name: str = "a"
    closed: bool = False

    async def send(self, msg: Outgoing) -> Attempt:
        self.log.append((self.name, msg))
        return await self.script(msg)

    async def aclose(self) -> None:
        self.closed = True


async def add(db: Database, target: str, platform: Platform = Platform.LINE, **kw: Any) -> int:
    async with db.transaction() as session:
        rows = await enqueue(session, platform, target, [{"type": "text", "text": target}],
                             now=utc_now(), **kw)  # fmt: skip
    return rows[0].id


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.transaction() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def settled(db: Database, what: str = "every row settled") -> list[OutboxMessage]:
    return await async_read_until(
        lambda: rows(db), lambda found: all(r.state != "pending" for r in found), what=what
    )


@asynccontextmanager
async def running(
    db: Database, transports: Sequence[Transport], settings: Settings = SETTINGS, **kw: Any
) -> AsyncIterator[OutboxSender]:
    sender = OutboxSender(db, settings, utc_now, transports, **{"poll_s": QUIET_S, **kw})
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        await sender.stop()
        await task


def test_each_target_in_order_once_under_retries(database_url: str) -> None:
    """Rows failing now and then (some twice) still reach each person in order, each once."""
    tries: dict[int, int] = {}

    async def flaky(msg: Outgoing) -> Attempt:
        tries[msg.id] = tries.get(msg.id, 0) + 1
        if msg.id % 3 == 0 and tries[msg.id] <= 1 + msg.id % 2:
            return Attempt.retry("LINE 500")
        return Attempt.sent()

    async def scenario(db: Database) -> None:
        line = ScriptedPlatform(script=flaky)
        ids = {f"U{t}": [await add(db, f"U{t}") for _ in range(3)] for t in range(5)}
        async with running(db, [line]) as sender:
            sender.wake()
            for t in range(5):  # more arrive while it sends
                ids[f"U{t}"].append(await add(db, f"U{t}"))
                sender.wake()
            found = await settled(db)
        assert {r.state for r in found} == {"sent"}
        for target, written in ids.items():
            attempts = [msg.id for _, msg in line.log if msg.target == target]
            assert attempts == sorted(attempts), f"{target} out of order: {attempts}"
            assert sorted(set(attempts)) == written
        assert sender.counts[Platform.LINE, Outcome.SENT] == 20
        assert sender.counts[Platform.LINE, Outcome.RETRY] == sum(t - 1 for t in tries.values())
        assert sender.counts[Platform.LINE, Outcome.RETRY] > 0

    with_database(database_url, scenario)


def test_two_senders_never_both_send_a_row(database_url: str) -> None:
    """Two processes' senders on one database: every row sent once, targets kept in order."""
    log: list[tuple[str, Outgoing]] = []

    async def slow(_msg: Outgoing) -> Attempt:
        await asyncio.sleep(0.002)  # a platform's latency, so the two overlap
        return Attempt.sent()

    async def scenario(db: Database) -> None:
        other = Database(db.url)
        try:
            ids = [await add(db, f"U{n % 40}") for n in range(120)]
            a = ScriptedPlatform(script=slow, log=log, name="a")
            b = ScriptedPlatform(script=slow, log=log, name="b")
            async with running(db, [a], poll_s=0.05), running(other, [b], poll_s=0.05):
                found = await settled(db)
        finally:
            await other.dispose()
        assert {r.state for r in found} == {"sent"}
        sent = sorted(msg.id for _, msg in log)
        assert sent == ids, "a row was sent twice or never"
        for target in {msg.target for _, msg in log}:
            order = [msg.id for _, msg in log if msg.target == target]
            assert order == sorted(order)

    with_database(database_url, scenario)


def test_reply_tried_is_stored_before_the_reply(database_url: str) -> None:
    seen: list[bool] = []

    async def scenario(db: Database) -> None:
        async def look(msg: Outgoing) -> Attempt:
            (row,) = [r for r in await rows(db) if r.id == msg.id]
            seen.append(row.reply_tried)
            return Attempt.sent()

        line = ScriptedPlatform(script=look)
        await add(db, "U1", reply_token="tok-1", reply_until=utc_now() + timedelta(seconds=30))
        async with running(db, [line], poll_s=0.05):
            (row,) = await settled(db)
        (_, msg), = line.log  # fmt: skip
        assert (msg.reply_token, msg.reply_tried, msg.attempt) == ("tok-1", False, 1)
        assert seen == [True]
        assert (row.state, row.attempts, row.lease_until) == ("sent", 1, None)
        assert row.sent_at is not None

    with_database(database_url, scenario)


def test_stale_reply_token_is_not_offered(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        line = ScriptedPlatform()
        await add(db, "U1", reply_token="tok-1", reply_until=utc_now() - timedelta(seconds=1))
        async with running(db, [line], poll_s=0.05):
            (row,) = await settled(db)
        (_, msg), = line.log  # fmt: skip
        assert (msg.reply_token, msg.retry_key) == (None, row.retry_key)
        assert row.reply_tried is False

    with_database(database_url, scenario)


def test_refused_reply_token_means_a_push_at_once(database_url: str) -> None:
    async def reply_refused(msg: Outgoing) -> Attempt:
        if msg.reply_token:
            return Attempt.reply_unusable("LINE 400 Invalid reply token")
        return Attempt.sent()

    async def scenario(db: Database) -> None:
        line = ScriptedPlatform(script=reply_refused)
        await add(db, "U1", reply_token="tok-1", reply_until=utc_now() + timedelta(seconds=30))
        async with running(db, [line]) as sender:
            sender.wake()
            (row,) = await settled(db)  # within the deadline, long before any poll
        first, second = (msg for _, msg in line.log)
        assert (first.reply_token, second.reply_token) == ("tok-1", None)
        assert (second.attempt, second.reply_tried) == (2, True)
        assert (row.state, row.reply_token, row.last_error) == (
            "sent",
            None,
            "LINE 400 Invalid reply token",
        )

    with_database(database_url, scenario)


def test_failed_row_keeps_its_error_and_frees_the_target(database_url: str) -> None:
    async def refuse_first(msg: Outgoing) -> Attempt:
        return Attempt.failed("LINE 400 bad message") if msg.id == first else Attempt.sent()

    first = 0

    async def scenario(db: Database) -> None:
        nonlocal first
        first = await add(db, "U1")
        await add(db, "U1")
        async with running(db, [ScriptedPlatform(script=refuse_first)]) as sender:
            sender.wake()
            a, b = await settled(db)
        assert (a.state, a.last_error, a.sent_at, a.attempts) == (
            "failed",
            "LINE 400 bad message",
            None,
            1,
        )
        assert b.state == "sent"
        assert sender.counts[Platform.LINE, Outcome.FAILED] == 1

    with_database(database_url, scenario)


def test_a_dead_senders_row_is_taken_again_once_its_lease_ends(database_url: str) -> None:
    """Left as a sender dies mid-reply: leased, tried, its reply token still fresh."""

    async def scenario(db: Database) -> None:
        row_id = await add(db, "U1", reply_token="tok-1",
                           reply_until=utc_now() + timedelta(seconds=30))  # fmt: skip
        lease_until = utc_now() + timedelta(seconds=1.0)
        async with db.transaction() as session:
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id)
                .values(lease_until=lease_until, attempts=1, reply_tried=True)
            )
        sent_at: list[datetime] = []

        async def stamp(_msg: Outgoing) -> Attempt:
            sent_at.append(utc_now())
            return Attempt.sent()

        line = ScriptedPlatform(script=stamp)
        async with running(db, [line], poll_s=0.05):
            (row,) = await settled(db)
        (_, msg), = line.log  # fmt: skip
        assert sent_at[0] >= lease_until
        assert (msg.attempt, msg.reply_token, msg.reply_tried) == (2, "tok-1", True)
        assert row.state == "sent"

    with_database(database_url, scenario)


def test_an_attempt_ends_before_its_lease(database_url: str) -> None:
    """A platform that never answers: the attempt is cut off and retried, not left leased."""
    hung: list[float] = []

    async def hang_once(msg: Outgoing) -> Attempt:
        if msg.attempt == 1:
            hung.append(time.monotonic())
            try:
                await asyncio.Event().wait()
            finally:
                hung.append(time.monotonic())  # cut off
        return Attempt.sent()

    async def scenario(db: Database) -> None:
        await add(db, "U1")
        async with running(db, [ScriptedPlatform(script=hang_once)]) as sender:
            sender.wake()
            (row,) = await settled(db)
        began, cut = hung
        assert cut - began < sender.lease_s  # its lease taken before it began: still leased
        assert (row.state, row.attempts, row.last_error) == (
            "sent",
            2,
            "no answer before the lease ended",
        )

    with_database(database_url, scenario)


def test_a_transport_raising_is_retried(database_url: str) -> None:
    async def bug_once(msg: Outgoing) -> Attempt:
        if msg.attempt == 1:
            raise RuntimeError("a bug")
        return Attempt.sent()

    async def scenario(db: Database) -> None:
        await add(db, "U1")
        async with running(db, [ScriptedPlatform(script=bug_once)]) as sender:
            sender.wake()
            (row,) = await settled(db)
        assert (row.state, row.attempts, row.last_error) == (
            "sent",
            2,
            "transport raised RuntimeError",
        )

    with_database(database_url, scenario)


def test_a_platform_without_transport_waits(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        await add(db, "channel:c1", Platform.LINEWORKS)
        await add(db, "U1")
        async with running(db, [ScriptedPlatform()]) as sender:
            sender.wake()
            found = await async_read_until(lambda: rows(db),
                                           lambda r: r[1].state == "sent")  # fmt: skip
        assert (found[0].state, found[0].attempts) == ("pending", 0)
        assert sender.platforms == {Platform.LINE}

    with_database(database_url, scenario)


def test_stop_lets_the_send_in_flight_end_then_closes(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        gate = asyncio.Event()

        async def gated(_msg: Outgoing) -> Attempt:
            await gate.wait()
            return Attempt.sent()

        line = ScriptedPlatform(script=gated)
        # A lease far longer than the test: SETTINGS' 2 s cut the gated send off by itself
        # on a loaded machine before stop was even called.
        settings = SETTINGS.model_copy(update={"line_reply_within_s": 120.0})
        sender = OutboxSender(db, settings, utc_now, [line], poll_s=QUIET_S)
        task = asyncio.create_task(sender.run())
        await add(db, "U1")
        sender.wake()

        async def in_flight() -> int:
            return len(line.log)

        await async_read_until(in_flight, bool, what="a send in flight")
        stopping = asyncio.create_task(sender.stop())
        done, _ = await asyncio.wait({stopping}, timeout=0.2)
        assert not done and not line.closed, "stop did not wait for the send"
        gate.set()
        await stopping
        await task
        (row,) = await rows(db)
        assert row.state == "sent" and line.closed

    with_database(database_url, scenario)


def test_each_platform_at_its_rate(database_url: str) -> None:
    """5 requests a second: the first 5 at once (the bucket), the other 10 over 2 seconds."""
    settings = Settings(line_reply_within_s=8.0, line_requests_per_s=5.0)
    stamps: list[float] = []

    async def stamp(_msg: Outgoing) -> Attempt:
        stamps.append(time.monotonic())
        return Attempt.sent()

    async def scenario(db: Database) -> None:
        for n in range(15):
            await add(db, f"U{n}")
        async with running(db, [ScriptedPlatform(script=stamp)], settings) as sender:
            sender.wake()
            await settled(db)
        assert len(stamps) == 15
        assert stamps[-1] - stamps[0] >= 1.7

    with_database(database_url, scenario)


def test_a_reply_the_platform_refused_leaves_the_token_unused() -> None:
    """A 500 to a reply used nothing: a later "Invalid reply token" is no proof of ours;
    after a timeout (or with an earlier timeout still unaccounted for) it may be."""
    now = datetime(2026, 12, 3, tzinfo=UTC)
    refused = Attempt.retry("LINE 500", answered=True)
    assert recorded(refused, 1, now, 300.0)["reply_tried"] is False
    assert "reply_tried" not in recorded(refused, 2, now, 300.0, tried_before=True)
    assert "reply_tried" not in recorded(Attempt.retry("TimeoutError"), 1, now, 300.0)


def test_multicasts_waiting_never_hold_the_slots_replies_need(database_url: str) -> None:
    """An announcement's batches (multicast rows) stuck at LINE fill their own slots only: a
    resident's message written after them is sent meanwhile, and each batch goes once."""
    released = asyncio.Event()

    async def stuck_multicasts(msg: Outgoing) -> Attempt:
        if msg.recipients:
            await released.wait()
        return Attempt.sent()

    async def scenario(db: Database) -> None:
        line = ScriptedPlatform(script=stuck_multicasts)
        users = [f"U{n:032x}" for n in range(1200)]
        async with db.transaction() as session:
            news = [{"type": "text", "text": "お知らせ"}]
            batches = await enqueue_multicast(session, users, news, now=utc_now(),
                                              source="announcement:1")  # fmt: skip
        assert [len(b.recipients or []) for b in batches] == [500, 500, 200]
        async with running(db, [line], in_flight=2) as sender:
            sender.wake()
            await async_wait_until(lambda: len(line.log) == 2,
                                   what="two batches in flight, filling their slots")  # fmt: skip
            reply = await add(db, "U-resident")
            sender.wake()
            found = await async_read_until(
                lambda: rows(db), lambda r: any(x.id == reply and x.state == "sent" for x in r),
                what="the resident's message sent while the batches wait")  # fmt: skip
            assert sum(r.state == "pending" for r in found) == 3  # the batches are still out
            released.set()
            found = await settled(db)
        assert {r.state for r in found} == {"sent"}
        sent = [msg for _, msg in line.log if msg.recipients]
        assert sorted(len(m.recipients) for m in sent) == [200, 500, 500]  # each batch once
        assert {m.target for m in sent} == {b.target for b in batches}

    with_database(database_url, scenario)


def test_a_batch_sent_or_failed_for_good_keeps_its_count_and_no_user_id(database_url: str) -> None:
    """Once a multicast batch is sent or refused for good, its user ids are emptied in the
    same transaction (the count stays for the delivery counts); a batch still retrying keeps
    them, and a message to one person is never made to look like a batch."""
    turns: dict[str, int] = {}

    async def by_batch(msg: Outgoing) -> Attempt:
        turns[msg.target] = turns.get(msg.target, 0) + 1
        if msg.target.endswith(":1"):
            return Attempt.failed("LINE 400: bad request")
        if msg.target.endswith(":2") and turns[msg.target] == 1:
            return Attempt.retry("LINE 500", answered=True)
        if not msg.recipients:
            return Attempt.failed("LINE 400: not a friend")
        return Attempt.sent()

    async def scenario(db: Database) -> None:
        users = [f"U{n:032x}" for n in range(1100)]
        async with db.transaction() as session:
            news = [{"type": "text", "text": "お知らせ"}]
            await enqueue_multicast(session, users, news, now=utc_now(), source="announcement:1")
        one = await add(db, "U-resident")
        line = ScriptedPlatform(script=by_batch)
        async with running(db, [line]) as sender:
            sender.wake()
            found = await settled(db)
        batches = [r for r in found if r.id != one]
        assert [(r.state, r.recipients, r.recipient_count) for r in batches] == [
            ("sent", [], 500), ("failed", [], 500), ("sent", [], 100)]  # fmt: skip
        (single,) = [r for r in found if r.id == one]
        assert (single.state, single.recipients, single.recipient_count) == ("failed", None, None)
        retried = [m for _, m in line.log if m.target.endswith(":2")]
        assert [len(m.recipients) for m in retried] == [100, 100]  # kept while it retried
        sent = sorted(len(m.recipients) for _, m in line.log if m.recipients)
        assert sent == [100, 100, 500, 500]

    with_database(database_url, scenario)
