"""The sender with the LINE WORKS transport against the sandbox over real HTTP: an outage
(500s, then a 429 with Retry-After) ends with each crew channel's messages delivered once,
in the order written; a refused content fails without holding up the channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.db.session import Database
from server.delivery.outbox import Platform, channel_target, enqueue
from server.lineworks.client import WorksTransport
from tests.sandboxes import Sandbox
from tests.server.database import with_database
from tests.server.delivery.test_line_transport import sqlite
from tests.server.delivery.test_sender import running, settled, utc_now
from tests.server.lineworks.works import works_settings


def content(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def test_an_outage_then_each_channel_in_order_once(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.faults("lineworks", count=4, status=500)
    sandbox.faults("lineworks", count=1, status=429, retry_after_s=1.0)
    channels = ("crew-ozu", "hq-ehime")

    async def scenario(db: Database) -> None:
        async with db.transaction() as session:
            for channel in channels:
                messages = [content(f"{channel} {n}") for n in range(3)]
                await enqueue(session, Platform.LINEWORKS, channel_target(channel), messages,
                              now=utc_now())  # fmt: skip
            await enqueue(session, Platform.LINEWORKS, channel_target("crew-ozu"),
                          [{"type": "nonsense"}], now=utc_now())  # fmt: skip
            await enqueue(session, Platform.LINEWORKS, channel_target("crew-ozu"),
                          [content("after the refused one")], now=utc_now())  # fmt: skip
        settings = works_settings(sandbox, delivery_backoff_max_s=0.2)
        async with running(db, [WorksTransport(settings)], settings, poll_s=0.2):
            found = await settled(db)
        states = [r.state for r in found]
        assert states == ["sent"] * 3 + ["sent"] * 3 + ["failed", "sent"]
        assert (found[6].last_error or "").startswith("LINE WORKS 400")
        assert sum(r.attempts for r in found) == len(found) + 5

    with_database(sqlite(tmp_path), scenario)
    ozu = [m["content"] for m in sandbox.works_channel("crew-ozu")]
    assert ozu == [content(f"crew-ozu {n}") for n in range(3)] + [content("after the refused one")]
    hq = [m["content"] for m in sandbox.works_channel("hq-ehime")]
    assert hq == [content(f"hq-ehime {n}") for n in range(3)]
