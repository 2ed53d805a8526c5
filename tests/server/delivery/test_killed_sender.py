"""A sender process SIGKILLed while LINE holds its requests, then started again: each
message reaches its resident exactly once, in order (the LINE sandbox over real HTTP).

The killed sender's requests are carried out by LINE after it died (the sandbox, like the
platform, finishes a call whose caller went away). The new process takes the rows once
their leases end, while their reply tokens are still fresh: the replies are refused as
used (so they were delivered) and the pushes meet their retry keys' 409.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import func, select

from server.db.migrate import upgrade
from server.db.models import OutboxMessage
from server.db.session import Database
from server.delivery.outbox import Platform, enqueue
from tests.conditions import wait_until
from tests.sandboxes import Sandbox

RESIDENTS: Final = 6
HANG_S: Final = 3.0
"""How long LINE holds each first request: longer than it takes to kill the sender, shorter
than the lease (half of the 10 s reply window)."""


def text(n: int) -> list[dict[str, str]]:
    return [{"type": "text", "text": f"message {n}"}]


async def write(url: str, tokens: dict[str, str | None]) -> None:
    """Two rows per resident: a reply (or a push for those without a token), then a push."""
    db = Database(url)
    now = datetime.now(UTC)
    async with db.transaction() as session:
        for user, token in tokens.items():
            await enqueue(session, Platform.LINE, user, text(1), now=now, reply_token=token,
                          reply_until=now + timedelta(seconds=40) if token else None)  # fmt: skip
            await enqueue(session, Platform.LINE, user, text(2), now=now)
    await db.dispose()


async def count(url: str, **where: object) -> int:
    db = Database(url)
    try:
        async with db.transaction() as session:
            query = select(func.count()).select_from(OutboxMessage).filter_by(**where)
            found: int = await session.scalar(query) or 0
            return found
    finally:
        await db.dispose()


@contextmanager
def sender(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("a") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.server.delivery.sender_process"],
            env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline() == "sending\n"
        yield process
    finally:
        process.kill()
        process.wait(timeout=10)


def faults_left(sandbox: Sandbox, probes: list[int]) -> int:
    """LINE's message faults still queued, read by queueing one on a call never made."""
    probes.append(1)
    queued: int = sandbox.call("POST", "/_sandbox/line/faults",
                               {"delay_s": 0.1, "calls": ["profile"]})["queued"]  # fmt: skip
    return queued - len(probes)


def test_killed_mid_send_then_each_delivered_once(
    database_url: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    upgrade(database_url)
    users = [f"U{uuid.uuid4().hex}" for _ in range(RESIDENTS)]
    tokens = {u: sandbox.line_text(u, "充電")["replyToken"] if n % 2 else None
              for n, u in enumerate(users)}  # fmt: skip
    asyncio.run(write(database_url, tokens))
    sandbox.faults("line", count=RESIDENTS, delay_s=HANG_S)
    env = {**os.environ, **sandbox.server_env, "CHARGENET_DATABASE_URL": database_url,
           "CHARGENET_LINE_REPLY_WITHIN_S": "10", "CHARGENET_DELIVERY_TIMEOUT_S": "8",
           "CHARGENET_DELIVERY_BACKOFF_MAX_S": "0.5"}  # fmt: skip
    log = tmp_path / "senders.log"
    probes: list[int] = []

    with sender(env, log) as first:
        wait_until(lambda: faults_left(sandbox, probes) == 0, what="every first request held")
        first.kill()  # SIGKILL, each resident's first message in LINE's hands
    assert asyncio.run(count(database_url, state="sent")) == 0
    assert asyncio.run(count(database_url, attempts=1)) == RESIDENTS

    with sender(env, log):
        wait_until(lambda: asyncio.run(count(database_url, state="sent")) == 2 * RESIDENTS,
                   timeout_s=30, what="every message sent")  # fmt: skip

    for user, token in tokens.items():
        seen = [(d["via"], d["messages"]) for d in sandbox.line_messages(user)]
        first_via = "reply" if token else "push"
        assert seen == [(first_via, text(1)), ("push", text(2))], f"{user}: {seen}"
    assert asyncio.run(count(database_url, attempts=2)) == RESIDENTS
