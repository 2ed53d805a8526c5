"""The app in-process on a fresh database of each store (SQLite, PostgreSQL), with a clock
the test moves, the demo registry, crew routes for its stations, and a generated bot secret
to sign callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from server.api.app import create_app
from server.db.models import OutboxMessage
from server.registry import load_demo_registry
from server.settings import Settings
from tests.server.incidents.changes import T0

TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
BOT_ID = "2000001"
SECRET = secrets.token_urlsafe(32)
ROUTES = {
    ("municipality", "大洲市"): "ch-ozu",
    ("group", "南予"): "ch-nanyo",
    ("hq", ""): "ch-hq",
}
"""The demo stations ozu-01.. are in 大洲市, counterpart group 南予."""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Sent:
    """An outbox row as a test reads it."""

    target: str
    content: dict[str, Any]
    source: str

    @property
    def text(self) -> str:
        return str(self.content.get("contentText") or self.content.get("text") or "")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def app(database_url: str, clock: Clock) -> AsyncIterator[FastAPI]:
    settings = Settings(
        database_url=database_url, mqtt_url=None,
        admin_token=SecretStr(TOKEN), lineworks_bot_id=BOT_ID,
        lineworks_bot_secret=SecretStr(SECRET),
    )  # fmt: skip
    application = create_app(settings, clock)
    async with application.router.lifespan_context(application):
        await load_demo_registry(application.state.services.db)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for (scope, key), channel in ROUTES.items():
            put = await http.put(f"/api/v1/crew-routes/{scope}", params={"key": key},
                                 json={"channel_id": channel}, headers=ADMIN)  # fmt: skip
            assert put.status_code == 200, put.text
        yield http


def signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def press_body(data: str, user_id: str = "tanaka", channel_id: str | None = "ch-ozu") -> bytes:
    """A button press as LINE WORKS calls back: a message event carrying the postback."""
    source: dict[str, Any] = {"userId": user_id, "domainId": 40029600}
    if channel_id is not None:
        source["channelId"] = channel_id
    return json.dumps({
        "type": "message", "source": source, "issuedTime": "2026-11-24T09:00:00.000Z",
        "content": {"type": "text", "text": "対応 Ack", "postback": data},
    }, ensure_ascii=False).encode()  # fmt: skip


async def post_callback(
    client: httpx.AsyncClient, body: bytes, *, sign: str | None = None, bot_id: str = BOT_ID
) -> httpx.Response:
    headers = {"Content-Type": "application/json; charset=UTF-8", "X-WORKS-BotId": bot_id,
               "X-WORKS-Signature": sign if sign is not None else signature(body)}  # fmt: skip
    return await client.post("/lineworks/callback", content=body, headers=headers)


async def outbox(app: FastAPI, after: int = 0) -> list[Sent]:
    """LINE WORKS rows written so far (after row id `after`), in order."""
    async with app.state.services.db.transaction() as session:
        rows = await session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.platform == "lineworks", OutboxMessage.id > after)
            .order_by(OutboxMessage.id)
        )
        return [Sent(row.target, row.body[0], row.source) for row in rows]
