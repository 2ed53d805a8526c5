"""POST /line/webhook on both stores: signatures, the empty list, storage before the 200,
redeliveries processed once, locations never stored, recovery after a crash, rate limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from server.api.app import create_app
from server.db.models import LineEvent
from server.registry import load_demo_registry
from server.settings import Settings
from tests.server.api.conftest import live_ports
from tests.server.line.conftest import (
    Resident,
    event,
    line_settings,
    message,
    outbox,
    post_events,
    signature,
)

pytestmark = pytest.mark.anyio


async def stored(app: FastAPI) -> list[LineEvent]:
    async with app.state.services.db.transaction() as session:
        return list(await session.scalars(select(LineEvent).order_by(LineEvent.received_at)))


@pytest.mark.parametrize("case", ["forged", "other secret", "missing", "body changed"])
async def test_unsigned_or_forged_webhooks_are_refused(
    app: FastAPI, client: httpx.AsyncClient, case: str
) -> None:
    body = json.dumps({"events": [event("Umallory", "follow")]}).encode()
    headers = {"Content-Type": "application/json"}
    if case == "forged":
        headers["X-Line-Signature"] = signature(b"something else")
    elif case == "other secret":
        headers["X-Line-Signature"] = signature(body, "not-the-channel-secret")
    elif case == "body changed":
        headers["X-Line-Signature"] = signature(body)
        body = body.replace(b"Umallory", b"Uvictim0")
    reply = await client.post("/line/webhook", content=body, headers=headers)
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "unauthorized"
    assert await stored(app) == []
    assert await outbox(app) == []


async def test_signed_webhooks_are_stored_before_the_200(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    follow = event("Usigned", "follow")
    reply = await post_events(client, [follow])
    assert reply.status_code == 200
    [row] = await stored(app)  # already there: the 200 came after the commit
    assert (row.webhook_event_id, row.user_id, row.kind) == (
        follow["webhookEventId"], "Usigned", "follow"
    )  # fmt: skip
    await app.state.services.line_bot.idle()
    [greeting] = await outbox(app, "Usigned")
    assert greeting.reply_token == follow["replyToken"]
    assert greeting.source == f"line_event:{follow['webhookEventId']}"


async def test_the_console_verify_request_and_bad_bodies(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert (await post_events(client, [])).status_code == 200
    assert (await post_events(client, [])).json() == {}
    not_json = b"{not json"
    reply = await client.post("/line/webhook", content=not_json,
                              headers={"X-Line-Signature": signature(not_json)})  # fmt: skip
    assert reply.status_code == 422
    assert await stored(app) == []


async def test_no_channel_secret_verifies_nothing(database_url: str) -> None:
    application = create_app(Settings(database_url=database_url, mqtt_url=None))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            body = b'{"events": []}'
            sign = signature(body, "")
            reply = await http.post("/line/webhook", content=body,
                                    headers={"X-Line-Signature": sign})  # fmt: skip
    assert reply.status_code == 401


async def test_a_redelivered_event_is_processed_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    resident = Resident(app, client, "Uredelivered")
    first = message(resident.user_id, {"type": "text", "text": "充電"})
    again = {**first, "deliveryContext": {"isRedelivery": True}}
    assert len(await resident.send(first)) == 1
    assert await resident.send(again) == []
    both = await asyncio.gather(post_events(client, [first]), post_events(client, [again, again]))
    assert [r.status_code for r in both] == [200, 200]
    await app.state.services.line_bot.idle()
    assert len(await outbox(app, resident.user_id)) == 1
    [row] = await stored(app)
    assert row.processed_at is not None and row.redelivery is False

    late = message(resident.user_id, {"type": "text", "text": "予約確認"})
    redelivered = {**late, "deliveryContext": {"isRedelivery": True}}  # its first got lost
    assert len(await resident.send(redelivered)) == 1
    assert [r.redelivery for r in await stored(app)] == [False, True]


async def test_many_residents_at_once_each_in_order(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    residents = [Resident(app, client, f"Ucrowd{i:03d}") for i in range(40)]
    requests = []
    for r in residents:  # each: charge, then status, in one request; all requests at once
        requests.append(post_events(client, [
            message(r.user_id, {"type": "text", "text": "充電"}),
            message(r.user_id, {"type": "text", "text": "予約確認"}),
        ]))  # fmt: skip
    replies = await asyncio.gather(*requests)
    assert {r.status_code for r in replies} == {200}
    await app.state.services.line_bot.idle()
    for r in residents:
        sent = await outbox(app, r.user_id)
        assert [s.texts[0][:4] for s in sent] == ["現在地を", "いま予約"], r.user_id
        assert all(s.reply_token for s in sent)


async def test_a_location_is_used_never_stored(app: FastAPI, client: httpx.AsyncClient) -> None:
    resident = Resident(app, client, "Uwhere")
    sent = await resident.location((33.50683, 132.54311))
    assert "予約する" in sent[0].flat()
    [row] = await stored(app)
    kept = json.dumps(row.body)
    assert "33.50" not in kept and "132.54" not in kept and "大洲" not in kept


async def test_events_stored_but_unprocessed_are_recovered_at_start(database_url: str) -> None:
    """A crash after the 200 and before processing: the next start processes them; a
    location comes back without its point, so the resident is asked again."""
    now = datetime.now(UTC)
    application = create_app(line_settings(database_url))
    async with application.router.lifespan_context(application):
        await load_demo_registry(application.state.services.db)
        await live_ports(application)
        async with application.state.services.db.transaction() as session:
            for number, (kind, body) in enumerate([
                ("text", {"kind": "text", "text": "予約確認", "replyToken": "r1"}),
                ("location", {"kind": "location", "replyToken": "r2"}),
            ]):  # fmt: skip
                session.add(LineEvent(webhook_event_id=f"crashed-{number}", user_id="Ucrash",
                                      kind=kind, body={**body, "timestamp": number},
                                      redelivery=False, received_at=now))  # fmt: skip
    restarted = create_app(line_settings(database_url))
    async with restarted.router.lifespan_context(restarted):
        await restarted.state.services.line_bot.idle()
        sent = await outbox(restarted, "Ucrash")
        assert [s.texts[0][:4] for s in sent] == ["いま予約", "位置情報"]
        assert [s.reply_token for s in sent] == ["r1", "r2"]
        assert all(r.processed_at is not None for r in await stored(restarted))


@pytest.fixture
async def strict_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(line_settings(database_url, resident_requests_per_min=3))
    async with application.router.lifespan_context(application):
        yield application


async def test_a_flooding_resident_is_asked_once_to_slow_down(strict_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=strict_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        flood = Resident(strict_app, http, "Uflood")
        calm = Resident(strict_app, http, "Ucalm")
        answers = [await flood.text("予約確認") for _ in range(6)]
        assert [len(a) for a in answers] == [1, 1, 1, 1, 0, 0]
        assert "少し時間をおいて" in answers[3][0].texts[0]
        assert len(await calm.text("予約確認")) == 1  # others are not held back
        assert len(await flood.send(event(flood.user_id, "unfollow"))) == 0
        assert len(await flood.follow()) == 1  # following is not a request: still greeted


async def test_the_webhook_is_described_in_the_openapi(client: httpx.AsyncClient) -> None:
    described = (await client.get("/openapi.json")).json()["paths"]["/line/webhook"]["post"]
    assert {"200", "401", "422", "503"} <= set(described["responses"])


async def test_a_body_beyond_a_megabyte_is_refused_unread(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    body = b'{"events": [], "pad": "' + b"x" * 1_000_001 + b'"}'
    reply = await client.post("/line/webhook", content=body,
                              headers={"X-Line-Signature": signature(body)})  # fmt: skip
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "too_large"
