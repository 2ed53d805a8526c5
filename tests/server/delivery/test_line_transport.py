"""The sender and the LINE transport against the LINE sandbox over real HTTP.

What the resident saw is read from the sandbox, which records each accepted request once:
a reply while the token is fresh, a push once it is not, outages (500s, 429 with
Retry-After, hangs) that end with the message delivered once, a reused retry key's 409
counted as sent, and LINE's refusals kept as the row's error.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from server.db.models import OutboxMessage
from server.db.session import Database
from server.delivery.outbox import Platform, enqueue
from server.delivery.transport import Outcome
from server.line.client import LineTransport
from server.settings import Settings
from tests.sandboxes import Sandbox
from tests.server.database import with_database
from tests.server.delivery.test_sender import rows, running, settled, utc_now
from tests.server.lineworks.works import works_settings

TEXT = [{"type": "text", "text": "予約しました / Booked"}]


def resident() -> str:
    """A user id shaped like LINE's, fresh per test: a call that an earlier test gave up on
    may still be carried out by the shared sandbox."""
    return f"U{uuid.uuid4().hex}"


def line_settings(sandbox: Sandbox, **overrides: Any) -> Settings:
    """Calls time out after 1 s, retries come within 0.2 s, leases last 5 s."""
    return works_settings(sandbox, **{"delivery_backoff_max_s": 0.2, "line_reply_within_s": 10.0,
                                      **overrides})  # fmt: skip


def sqlite(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'outbox.sqlite3'}"


async def add(
    db: Database, user: str, token: str | None = None, fresh_s: float = 30.0, text: Any = TEXT
) -> OutboxMessage:
    until = utc_now() + timedelta(seconds=fresh_s) if token else None
    async with db.transaction() as session:
        (row,) = await enqueue(session, Platform.LINE, user, text, now=utc_now(),
                               reply_token=token, reply_until=until)  # fmt: skip
    return row


async def deliver(db: Database, settings: Settings) -> list[OutboxMessage]:
    """Run a sender with the LINE transport until every row is sent or failed."""
    async with running(db, [LineTransport(settings)], settings, poll_s=0.2):
        return await settled(db)


def seen(sandbox: Sandbox, user: str) -> list[tuple[str, list[dict[str, Any]]]]:
    return [(d["via"], d["messages"]) for d in sandbox.line_messages(user)]


def test_reply_while_the_token_is_fresh(sandbox: Sandbox, tmp_path: Path) -> None:
    u1 = resident()
    token = sandbox.line_text(u1, "充電")["replyToken"]
    assert token

    async def scenario(db: Database) -> None:
        await add(db, u1, token)
        (row,) = await deliver(db, line_settings(sandbox))
        assert (row.state, row.attempts, row.reply_tried) == ("sent", 1, True)

    with_database(sqlite(tmp_path), scenario)
    assert seen(sandbox, u1) == [("reply", TEXT)]


def test_stale_token_means_a_push_with_the_retry_key(sandbox: Sandbox, tmp_path: Path) -> None:
    """Stale by our clock: pushed at once. Stale by LINE's: refused, then pushed."""
    u1, u2 = resident(), resident()
    ours = sandbox.line_text(u1, "充電")["replyToken"]
    theirs = sandbox.line_text(u2, "充電")["replyToken"]
    assert sandbox.line_expire_reply_tokens() >= 1

    async def scenario(db: Database) -> None:
        await add(db, u1, ours, fresh_s=-1.0)
        await add(db, u2, theirs)
        one, two = await deliver(db, line_settings(sandbox))
        assert (one.state, one.attempts, one.reply_tried) == ("sent", 1, False)
        assert (two.state, two.attempts, two.reply_tried, two.reply_token) == (
            "sent",
            2,
            True,
            None,
        )
        assert "Invalid reply token" in (two.last_error or "")
        keys = {d["retry_key"] for d in sandbox.line_deliveries()}
        assert keys == {one.retry_key, two.retry_key}

    with_database(sqlite(tmp_path), scenario)
    assert seen(sandbox, u1) == seen(sandbox, u2) == [("push", TEXT)]


def test_down_for_a_while_then_delivered_once(sandbox: Sandbox, tmp_path: Path) -> None:
    u1 = resident()
    sandbox.faults("line", count=6, status=500)

    async def scenario(db: Database) -> None:
        await add(db, u1)
        await add(db, u1, text=[{"type": "text", "text": "second"}])
        settings = line_settings(sandbox)
        async with running(db, [LineTransport(settings)], settings, poll_s=0.2) as sender:
            first, second = await settled(db)
        assert (first.state, second.state) == ("sent", "sent")
        assert first.attempts == 7 and second.attempts == 1  # the second waited its turn
        assert "LINE 500" in (first.last_error or "")
        assert sender.counts[Platform.LINE, Outcome.RETRY] == 6

    with_database(sqlite(tmp_path), scenario)
    assert seen(sandbox, u1) == [("push", TEXT), ("push", [{"type": "text", "text": "second"}])]


def test_429_waits_as_told(sandbox: Sandbox, tmp_path: Path) -> None:
    u1 = resident()
    sandbox.faults("line", count=1, status=429, retry_after_s=1.5)

    async def scenario(db: Database) -> None:
        await add(db, u1)
        started = time.monotonic()
        (row,) = await deliver(db, line_settings(sandbox))
        assert time.monotonic() - started >= 1.5
        assert (row.state, row.attempts) == ("sent", 2)

    with_database(sqlite(tmp_path), scenario)
    assert seen(sandbox, u1) == [("push", TEXT)]


def test_a_retry_key_accepted_before_is_sent(sandbox: Sandbox, tmp_path: Path) -> None:
    """As after a push whose answer was lost: LINE's 409 means the resident has it."""
    u1 = resident()

    async def scenario(db: Database) -> None:
        row = await add(db, u1)
        settings = line_settings(sandbox)
        async with httpx.AsyncClient() as http:
            earlier = await http.post(
                f"{settings.line_api_url}/v2/bot/message/push",
                json={"to": u1, "messages": TEXT},
                headers={
                    "Authorization": f"Bearer {sandbox.line_access_token}",
                    "X-Line-Retry-Key": row.retry_key,
                },
            )
        assert earlier.status_code == 200
        (row,) = await deliver(db, settings)
        assert (row.state, row.attempts, row.last_error) == ("sent", 1, None)

    with_database(sqlite(tmp_path), scenario)
    assert seen(sandbox, u1) == [("push", TEXT)]


def test_hung_calls_are_retried_and_delivered_once(sandbox: Sandbox, tmp_path: Path) -> None:
    """LINE carries out a call its caller gave up on: the retry is the one accepted (it came
    first), or it meets a 409 (the push) or an invalid token (the reply): sent, once."""
    u1, u2 = resident(), resident()
    token = sandbox.line_text(u1, "充電")["replyToken"]
    sandbox.faults("line", count=2, delay_s=2.0)

    async def scenario(db: Database) -> None:
        await add(db, u1, token)
        await add(db, u2)
        reply, push = await deliver(db, line_settings(sandbox))
        assert (reply.state, reply.attempts, reply.reply_token) == ("sent", 2, token)
        assert (push.state, push.attempts) == ("sent", 2)
        assert "Timeout" in (reply.last_error or "") and "Timeout" in (push.last_error or "")

    with_database(sqlite(tmp_path), scenario)
    assert seen(sandbox, u1) == [("reply", TEXT)]
    assert seen(sandbox, u2) == [("push", TEXT)]


def test_refusals_fail_with_lines_reason(sandbox: Sandbox, tmp_path: Path) -> None:
    u1, u2, u3 = resident(), resident(), resident()

    async def scenario(db: Database) -> None:
        await add(db, u1, text=[{"type": "text", "text": "x" * 5001}])
        await add(db, u2, text=[{"type": "nonsense"}])
        too_long, nonsense = await deliver(db, line_settings(sandbox))
        assert (too_long.state, too_long.attempts) == ("failed", 1)
        assert (too_long.last_error or "").startswith("LINE 400")
        assert (nonsense.state, nonsense.attempts) == ("failed", 1)
        assert (nonsense.last_error or "").startswith("LINE 400")
        await add(db, u3)
        unauthorised = line_settings(sandbox, line_channel_access_token=uuid.uuid4().hex)
        *_, wrong_token = await deliver(db, unauthorised)
        assert (wrong_token.state, (wrong_token.last_error or "")[:8]) == ("failed", "LINE 401")
        assert len(await rows(db)) == 3

    with_database(sqlite(tmp_path), scenario)
    assert seen(sandbox, u1) == seen(sandbox, u2) == seen(sandbox, u3) == []
