"""Crews on the LINE WORKS sandbox process, over real HTTP both ways, on both stores: a fault
is paged to the demo registry's three channels (the sandbox validates every message), a
crew member's press comes back as a signed callback, acknowledges the incident at once, is
answered to the presser and told to the channels, and is in the audit log; another's press
of the resolve button in another channel resolves it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from chargenet.demo import free_port
from server import audit
from server.api.app import create_app
from server.db.models import Incident
from server.registry import load_demo_registry
from tests.conditions import async_read_until, async_wait_until
from tests.sandboxes import CHANNELS, Sandbox
from tests.server.incidents.changes import fault
from tests.server.lineworks.works import works_settings

pytestmark = pytest.mark.anyio
CREW = "crew-tanaka"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def served(database_url: str, sandbox: Sandbox) -> AsyncIterator[FastAPI]:
    """The app on a free port, pointed at the sandbox and the sandbox's callbacks at it."""
    # the default timeout: a 1 s one, passed on a loaded machine, sends an alert the
    # sandbox did take again (the platform keeps no idempotency key), doubling it
    settings = works_settings(sandbox, database_url=database_url, mqtt_url=None,
                              admin_token=SecretStr("unused"), delivery_timeout_s=10.0)  # fmt: skip
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await async_wait_until(lambda: server.started, 30, "the server to start")
    try:
        await load_demo_registry(app.state.services.db)
        await asyncio.to_thread(sandbox.point_at, f"http://127.0.0.1:{port}")
        yield app
    finally:
        server.should_exit = True
        await task


async def channel(sandbox: Sandbox, channel_id: str, count: int) -> list[dict[str, Any]]:
    """The channel's first `count` messages, once that many arrived (the outbox sends)."""
    return await async_read_until(
        lambda: asyncio.to_thread(sandbox.works_channel, channel_id),
        lambda found: len(found) >= count, 20, f"{count} messages in {channel_id}",
    )  # fmt: skip


async def test_a_press_in_the_sandbox_acknowledges_the_incident(
    served: FastAPI, sandbox: Sandbox
) -> None:
    svc = served.state.services
    await svc.incidents.on_changes(fault(datetime.now(UTC)))
    async with svc.db.transaction() as session:
        [incident] = (await session.scalars(select(Incident))).all()
    for channel_id in CHANNELS:  # crew-ozu, group-nanyo, hq-ehime: all three at once
        [alert] = await channel(sandbox, channel_id, 1)
        assert alert["content"]["type"] == "button_template"
        assert "大洲市立大洲小学校" in alert["content"]["contentText"]

    pressed = await asyncio.to_thread(sandbox.works_press, "crew-ozu", CREW, f"ack:{incident.id}")

    assert pressed["status"] == 200
    async with svc.db.transaction() as session:  # recorded before the callback's 200
        row = await session.get(Incident, incident.id)
        assert row is not None
        assert (row.state, row.acknowledged_by) == ("acknowledged", f"lineworks:{CREW}")
        entries = await audit.entries(session, subject=f"incident:{incident.id}")
    assert [(e.action, e.actor) for e in reversed(entries)] == [
        ("incident.opened", "system"), ("incident.paged", "system"),
        ("incident.acknowledged", f"lineworks:{CREW}"), ("incident.notice_sent", "system"),
        ("incident.button_pressed", f"lineworks:{CREW}"),
    ]  # fmt: skip
    assert entries[0].detail["result"] == "acknowledged"
    assert entries[-2].detail["channels"] == list(CHANNELS)
    [answer] = await async_read_until(
        lambda: asyncio.to_thread(sandbox.works_user, CREW), bool, 20, "the presser's answer"
    )
    assert answer["content"]["text"].startswith(f"受付しました: #{incident.id} ポート故障")
    for channel_id in CHANNELS:
        notice = (await channel(sandbox, channel_id, 2))[1]
        assert notice["content"]["text"].startswith(f"👤 対応中({CREW}): #{incident.id}")

    # the same alert's other button, pressed from the counterpart group's channel
    pressed = await asyncio.to_thread(
        sandbox.works_press, "group-nanyo", "crew-suzuki", f"resolve:{incident.id}"
    )
    assert pressed["status"] == 200
    async with svc.db.transaction() as session:
        row = await session.get(Incident, incident.id)
        assert row is not None
        assert (row.state, row.resolved_by) == ("resolved", "lineworks:crew-suzuki")
    for channel_id in CHANNELS:
        notice = (await channel(sandbox, channel_id, 3))[2]
        assert notice["content"]["text"].startswith(f"☑️ 解決(crew-suzuki): #{incident.id}")
