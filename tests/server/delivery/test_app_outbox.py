"""The app's outbox: a transport for each platform with credentials, `wake_outbox` sends
what was just committed, and stopping the app leaves nothing in flight."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.api.app import create_app
from server.api.deps import Services
from server.delivery.outbox import Platform, channel_target, enqueue
from server.settings import Settings
from tests.conditions import async_read_until
from tests.sandboxes import Sandbox
from tests.server.delivery.test_line_transport import resident, sqlite
from tests.server.delivery.test_sender import rows, utc_now
from tests.server.lineworks.works import works_settings

HELLO = {"type": "text", "text": "こんにちは"}


def test_wake_outbox_sends_to_both_platforms(sandbox: Sandbox, tmp_path: Path) -> None:
    user = resident()
    settings = works_settings(sandbox, database_url=sqlite(tmp_path), mqtt_url=None)

    async def scenario() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            assert services.outbox.platforms == {Platform.LINE, Platform.LINEWORKS}
            async with services.db.transaction() as session:
                await enqueue(session, Platform.LINE, user, [HELLO], now=utc_now())
                await enqueue(session, Platform.LINEWORKS, channel_target("crew-ozu"),
                              [HELLO], now=utc_now())  # fmt: skip
            services.wake_outbox()
            await async_read_until(lambda: rows(services.db),
                                   lambda found: {r.state for r in found} == {"sent"})  # fmt: skip

    asyncio.run(scenario())
    assert [(d["via"], d["messages"]) for d in sandbox.line_messages(user)] == [("push", [HELLO])]
    assert [m["content"] for m in sandbox.works_channel("crew-ozu")] == [HELLO]


def test_without_credentials_rows_wait(tmp_path: Path) -> None:
    settings = Settings(database_url=sqlite(tmp_path), mqtt_url=None)

    async def scenario() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            services: Services = app.state.services
            assert services.outbox.platforms == frozenset()
            async with services.db.transaction() as session:
                await enqueue(session, Platform.LINE, resident(), [HELLO], now=utc_now())
            services.wake_outbox()
        (row,) = await rows(services.db)
        assert (row.state, row.attempts) == ("pending", 0)

    asyncio.run(scenario())
