"""The app in-process on SQLite and PostgreSQL with the demo stations live, a generated
channel secret, and residents who send correctly signed webhooks over HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from server.api.app import create_app
from server.db.models import OutboxMessage
from server.line.messages import Postback, read_postback
from server.registry import load_demo_registry
from server.settings import Settings
from tests.server.api.conftest import live_ports
from tests.system.platforms import walk

SECRET = secrets.token_urlsafe(24)
OZU_01 = (33.5068, 132.5431)
"""Next to the demo's ozu-01 (大洲市立大洲小学校), which has two batteries."""
_ids = itertools.count(1)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def line_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url, mqtt_url=None, line_channel_secret=SecretStr(SECRET),
        report_period_s=60.0, **overrides,
    )  # fmt: skip


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(line_settings(database_url))
    async with application.router.lifespan_context(application):
        await load_demo_registry(application.state.services.db)
        await live_ports(application)
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def signature(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def event(user_id: str, kind: str, redelivery: bool = False, **fields: Any) -> dict[str, Any]:
    """A webhook event as LINE sends it (a fresh webhookEventId and reply token)."""
    number = next(_ids)
    found: dict[str, Any] = {
        "type": kind, "mode": "active", "timestamp": 1_764_000_000_000 + number,
        "webhookEventId": f"01TEST{number:020d}", "source": {"type": "user", "userId": user_id},
        "deliveryContext": {"isRedelivery": redelivery},
    }  # fmt: skip
    if kind != "unfollow":
        found["replyToken"] = f"reply-{number}"
    found.update(fields)
    return found


def message(user_id: str, content: dict[str, Any]) -> dict[str, Any]:
    content = {"id": str(next(_ids)), "quoteToken": "q", **content}
    return event(user_id, "message", message=content)


async def post_events(
    client: httpx.AsyncClient, events: list[dict[str, Any]], sign: str | None = None
) -> httpx.Response:
    body = json.dumps({"destination": "Ubot", "events": events}, ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json",
               "X-Line-Signature": sign if sign is not None else signature(body)}  # fmt: skip
    return await client.post("/line/webhook", content=body, headers=headers)


@dataclass(frozen=True)
class Sent:
    """An outbox row for LINE, as a test reads it."""

    id: int
    target: str
    body: list[dict[str, Any]]
    reply_token: str | None
    source: str

    @property
    def texts(self) -> list[str]:
        return [m.get("text") or m.get("altText", "") for m in self.body]

    def flat(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)


async def outbox(app: FastAPI, user_id: str | None = None, after: int = 0) -> list[Sent]:
    async with app.state.services.db.transaction() as session:
        query = select(OutboxMessage).where(
            OutboxMessage.platform == "line", OutboxMessage.id > after
        )
        if user_id is not None:
            query = query.where(OutboxMessage.target == user_id)
        rows = await session.scalars(query.order_by(OutboxMessage.id))
        return [Sent(r.id, r.target, r.body, r.reply_token, r.source) for r in rows]


@dataclass
class Resident:
    """A LINE user chatting with the bot over the app's webhook."""

    app: FastAPI
    client: httpx.AsyncClient
    user_id: str
    seen: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)

    async def send(self, *events: dict[str, Any]) -> list[Sent]:
        """Post the events in one signed request; what the bot answered to them."""
        self.sent.extend(events)
        reply = await post_events(self.client, list(events))
        assert reply.status_code == 200, reply.text
        await self.app.state.services.line_bot.idle()
        rows = await outbox(self.app, self.user_id, self.seen)
        if rows:
            self.seen = rows[-1].id
        return rows

    async def text(self, text: str) -> list[Sent]:
        return await self.send(message(self.user_id, {"type": "text", "text": text}))

    async def location(self, point: tuple[float, float] = OZU_01) -> list[Sent]:
        latitude, longitude = point
        return await self.send(message(self.user_id, {
            "type": "location", "latitude": latitude, "longitude": longitude,
            "address": "愛媛県大洲市",
        }))  # fmt: skip

    async def postback(self, data: str) -> list[Sent]:
        return await self.send(event(self.user_id, "postback", postback={"data": data}))

    async def follow(self) -> list[Sent]:
        return await self.send(event(self.user_id, "follow", follow={"isUnblocked": False}))


def postbacks(node: Any) -> list[str]:
    """Every postback data in a message, a list of them or outbox rows' bodies (buttons and
    quick replies), in order."""
    return [o["data"] for o in walk(node) if o.get("type") == "postback"]


def actions(node: Any, action: Postback) -> list[dict[str, str]]:
    """The parameters of every postback of this action in `node`, in order."""
    found = [read_postback(data) for data in postbacks(node)]
    return [dict(p.params) for p in found if p is not None and p.action is action]
