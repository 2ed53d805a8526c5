"""POST /lineworks/callback: signatures, and presses handled, audited and answered at once."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from server import audit
from server.db.models import Incident
from server.lineworks.callbacks import verified
from server.settings import Settings
from tests.server.incidents.changes import T0, fault
from tests.server.lineworks.conftest import (
    BOT_ID,
    SECRET,
    Clock,
    outbox,
    post_callback,
    press_body,
    signature,
)

pytestmark = pytest.mark.anyio


async def open_incident(app: FastAPI, port: int = 3) -> int:
    await app.state.services.incidents.on_changes(fault(T0, port=port))
    async with app.state.services.db.transaction() as session:
        row: Incident | None = await session.scalar(select(Incident).where(Incident.port == port))
        assert row is not None
        return row.id


async def incident(app: FastAPI, incident_id: int) -> Incident:
    async with app.state.services.db.transaction() as session:
        row: Incident | None = await session.get(Incident, incident_id)
        assert row is not None
        return row


async def presses(app: FastAPI, incident_id: int) -> list[tuple[str, str, str]]:
    async with app.state.services.db.transaction() as session:
        entries = await audit.entries(session, subject=f"incident:{incident_id}")
    return [(e.actor, e.action, e.detail.get("result", "")) for e in reversed(entries)
            if e.action == "incident.button_pressed"]  # fmt: skip


async def last_id(app: FastAPI) -> int:
    sent = await outbox(app)
    return len(sent)


@pytest.mark.parametrize("case", ["forged", "other secret", "wrong bot", "no signature"])
async def test_unverified_callbacks_are_refused(
    app: FastAPI, client: httpx.AsyncClient, case: str
) -> None:
    incident_id = await open_incident(app)
    body = press_body(f"ack:{incident_id}")
    if case == "forged":
        reply = await post_callback(client, body, sign=signature(b"something else"))
    elif case == "other secret":
        reply = await post_callback(client, body, sign=signature(body, "not-the-secret"))
    elif case == "wrong bot":
        reply = await post_callback(client, body, bot_id="2000002")
    else:
        reply = await client.post("/lineworks/callback", content=body,
                                  headers={"X-WORKS-BotId": BOT_ID})  # fmt: skip
    assert reply.status_code == 401
    assert reply.json()["error"]["code"] == "unauthorized"
    assert (await incident(app, incident_id)).state == "open"
    assert await presses(app, incident_id) == []


def test_an_empty_secret_or_bot_id_verifies_nothing() -> None:
    body = b'{"type":"message"}'
    unset = Settings(lineworks_bot_id=BOT_ID)
    assert not verified(unset, BOT_ID, signature(body, ""), body)
    no_bot = Settings(lineworks_bot_secret=SecretStr(SECRET))
    assert not verified(no_bot, "", signature(body), body)
    both = Settings(lineworks_bot_id=BOT_ID, lineworks_bot_secret=SecretStr(SECRET))
    assert verified(both, BOT_ID, signature(body), body)
    assert not verified(both, BOT_ID, signature(body + b" "), body)


async def test_an_ack_press_acknowledges_audits_and_answers_the_presser(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    incident_id = await open_incident(app)
    before = await last_id(app)
    clock.now = T0 + timedelta(minutes=2)
    reply = await post_callback(client, press_body(f"ack:{incident_id}", user_id="tanaka"))
    assert reply.status_code == 200
    row = await incident(app, incident_id)
    assert (row.state, row.acknowledged_by, row.acknowledged_at) == (
        "acknowledged", "lineworks:tanaka", T0 + timedelta(minutes=2),
    )  # fmt: skip
    assert await presses(app, incident_id) == [
        ("lineworks:tanaka", "incident.button_pressed", "acknowledged"),
    ]  # fmt: skip
    sent = (await outbox(app))[before:]
    [answer] = [s for s in sent if s.target == "user:tanaka"]
    assert answer.text.splitlines() == [
        f"受付しました: #{incident_id} ポート故障 大洲市立大洲小学校",
        f"Acknowledged: #{incident_id} port fault, Ozu Elementary School",
    ]
    notices = [s.target for s in sent if s.target.startswith("channel:")]
    assert notices == ["channel:ch-ozu", "channel:ch-nanyo", "channel:ch-hq"]


async def test_a_resolve_press_resolves_and_answers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    incident_id = await open_incident(app)
    before = await last_id(app)
    reply = await post_callback(client, press_body(f"resolve:{incident_id}", user_id="suzuki"))
    assert reply.status_code == 200
    row = await incident(app, incident_id)
    assert (row.state, row.resolved_by) == ("resolved", "lineworks:suzuki")
    assert await presses(app, incident_id) == [
        ("lineworks:suzuki", "incident.button_pressed", "resolved"),
    ]  # fmt: skip
    sent = (await outbox(app))[before:]
    [answer] = [s for s in sent if s.target == "user:suzuki"]
    assert answer.text.startswith(f"解決を記録しました: #{incident_id}")
    assert any(s.text.startswith("☑️ 解決(suzuki)") for s in sent if s.target == "channel:ch-hq")


async def test_a_press_on_a_resolved_incident_is_answered_politely(
    app: FastAPI, client: httpx.AsyncClient, clock: Clock
) -> None:
    incident_id = await open_incident(app)
    clock.now = T0 + timedelta(minutes=5)
    await post_callback(client, press_body(f"resolve:{incident_id}", user_id="suzuki"))
    before = await last_id(app)
    clock.now = T0 + timedelta(minutes=6)
    for data in (f"ack:{incident_id}", f"resolve:{incident_id}"):
        reply = await post_callback(client, press_body(data, user_id="tanaka"))
        assert reply.status_code == 200
    sent = (await outbox(app))[before:]
    assert [s.target for s in sent] == ["user:tanaka", "user:tanaka"]  # no notice to channels
    for answer in sent:
        assert answer.text.splitlines() == [
            f"既に解決済みです(suzuki 18:05): #{incident_id} ポート故障 大洲市立大洲小学校",
            f"Already resolved by suzuki at 18:05: #{incident_id} port fault, "
            "Ozu Elementary School",
        ]
    row = await incident(app, incident_id)
    assert (row.state, row.resolved_by) == ("resolved", "lineworks:suzuki")
    assert [r for _, _, r in await presses(app, incident_id)] == [
        "resolved", "already_resolved", "already_resolved",
    ]  # fmt: skip


async def test_acknowledge_all_is_one_notice_per_channel(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    ids = [await open_incident(app, port) for port in (1, 2)]
    before = await last_id(app)
    data = f"ack:{ids[0]}.{ids[1]}"
    assert (await post_callback(client, press_body(data))).status_code == 200
    sent = (await outbox(app))[before:]
    assert [s.target for s in sent] == [
        "channel:ch-ozu", "channel:ch-nanyo", "channel:ch-hq", "user:tanaka",
    ]  # fmt: skip
    assert f"#{ids[0]} #{ids[1]}" in sent[0].text
    assert [(await incident(app, i)).state for i in ids] == ["acknowledged", "acknowledged"]


async def test_the_postback_event_shape_is_read_too(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    incident_id = await open_incident(app)
    body = json.dumps({"type": "postback", "source": {"userId": "kato", "channelId": "ch-hq"},
                       "issuedTime": "2026-11-24T09:00:00.000Z",
                       "data": f"ack:{incident_id}"}).encode()  # fmt: skip
    assert (await post_callback(client, body)).status_code == 200
    assert (await incident(app, incident_id)).acknowledged_by == "lineworks:kato"


@pytest.mark.parametrize("data", ["action=buy", "ack:999999", "ack:abc", "x" * 2000])
async def test_unknown_presses_get_a_short_answer_never_an_error(
    app: FastAPI, client: httpx.AsyncClient, data: str
) -> None:
    reply = await post_callback(client, press_body(data, user_id="tanaka"))
    assert reply.status_code == 200
    [answer] = await outbox(app)
    assert answer.target == "user:tanaka"
    expected = "#999999 は見つかりません" if data == "ack:999999" else "このボタンは使えません"
    assert answer.text.startswith(expected)


@pytest.mark.parametrize("body", [
    b"not json", b"{}", b'{"type": "message"}', b'{"type": "join", "source": {"userId": "u"}}',
    json.dumps({"type": "message", "source": {"userId": "u", "channelId": "ch-ozu"},
                "content": {"type": "text", "text": "了解"}}).encode(),
])  # fmt: skip
async def test_other_callbacks_are_200_and_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, body: bytes
) -> None:
    reply = await post_callback(client, body)
    assert reply.status_code == 200
    assert await outbox(app) == []


async def test_a_message_to_the_bot_itself_gets_a_hint(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    body = json.dumps({"type": "message", "source": {"userId": "tanaka"},
                       "content": {"type": "text", "text": "hello"}}).encode()  # fmt: skip
    assert (await post_callback(client, body)).status_code == 200
    [answer] = await outbox(app)
    assert (answer.target, answer.text.split("\n")[0]) == (
        "user:tanaka", "このボットはアラートのボタンで操作します(対応・解決)。",
    )  # fmt: skip


async def test_the_callback_is_not_in_the_public_api(app: FastAPI) -> None:
    assert "/lineworks/callback" not in app.openapi()["paths"]
