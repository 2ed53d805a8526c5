"""The LINE WORKS sandbox answers as the platform does: tokens for a good service-account JWT
only, bodies validated, tokens checked, faults injected, presses sent as signed callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

from sandbox.config import WorksConfig
from sandbox.lineworks.api import JWT_GRANT, router
from sandbox.lineworks.state import WorksState
from tests.sandbox.receiver import Receiver, receiving

pytestmark = pytest.mark.anyio

CLIENT_ID, SERVICE_ACCOUNT, BOT_ID = "client-1", "abc.serviceaccount@example", "4000001"
CLIENT_SECRET, BOT_SECRET = secrets.token_urlsafe(16), secrets.token_urlsafe(24)
TOKEN_URL = "/lineworks/oauth2/v2.0/token"
API = f"/lineworks/v1.0/bots/{BOT_ID}"
CONTROL = "/_sandbox/lineworks"
BUTTONS: dict[str, Any] = {
    "type": "button_template",
    "contentText": "ポート故障 / port fault\nozu-01 port 3",
    "actions": [
        {"type": "message", "label": "対応する Acknowledge", "postback": "ack:42"},
        {"type": "message", "label": "解決 Resolve", "postback": "resolve:42"},
        {"type": "uri", "label": "地図 map", "uri": "https://example.com/map"},
    ],
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()  # fmt: skip
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


PRIVATE_PEM, PUBLIC_PEM = pem_pair()
OTHER_PRIVATE_PEM, _ = pem_pair()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving("/lineworks/callback") as got:
        yield got


def works_config(callback_url: str, **extra: Any) -> WorksConfig:
    return WorksConfig.model_validate({
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "service_account": SERVICE_ACCOUNT, "public_key_pem": PUBLIC_PEM, "bot_id": BOT_ID,
        "bot_secret": BOT_SECRET, "callback_url": callback_url, "token_ttl_s": 3600,
        "channels": {"ch-ozu": "大洲市 保守班"}, **extra,
    })  # fmt: skip


@pytest.fixture
async def state(receiver: Receiver) -> WorksState:
    return WorksState(works_config(receiver.url))


@pytest.fixture
async def sandbox(state: WorksState) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router(state))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield http


def assertion(key: str = PRIVATE_PEM, algorithm: str = "RS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": CLIENT_ID, "sub": SERVICE_ACCOUNT, "iat": now, "exp": now + 3600}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm)


def grant(**fields: str) -> dict[str, str]:
    form = {"assertion": assertion(), "grant_type": JWT_GRANT, "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET, "scope": "bot"}  # fmt: skip
    form.update(fields)
    return form


async def access_token(sandbox: httpx.AsyncClient) -> str:
    response = await sandbox.post(TOKEN_URL, data=grant())
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_a_good_jwt_earns_a_token_that_sends(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post(TOKEN_URL, data=grant())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "bot"
    assert body["expires_in"] == "3600"  # a string, as the platform writes it
    assert body["access_token"] and body["refresh_token"]
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    sent = await sandbox.post(f"{API}/channels/ch-ozu/messages", json={"content": BUTTONS},
                              headers=auth)  # fmt: skip
    assert sent.status_code == 201 and sent.content == b""
    log = (await sandbox.get(f"{CONTROL}/channels/ch-ozu/messages")).json()
    assert [entry["content"] for entry in log] == [BUTTONS]
    assert (await sandbox.get(f"{CONTROL}/tokens")).json() == {"issued": 1, "live": 1}


async def test_a_refresh_token_earns_a_new_access_token(sandbox: httpx.AsyncClient) -> None:
    first = (await sandbox.post(TOKEN_URL, data=grant())).json()
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}  # fmt: skip
    again = await sandbox.post(TOKEN_URL, data=form)
    assert again.status_code == 200, again.text
    assert again.json()["access_token"] != first["access_token"]
    form["refresh_token"] = "made-up"
    refused = await sandbox.post(TOKEN_URL, data=form)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")


NOW = int(time.time())


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"assertion": assertion(OTHER_PRIVATE_PEM)}, 400, "invalid_grant"),
        ({"assertion": assertion(iat=NOW - 7200, exp=NOW - 3600)}, 400, "invalid_grant"),
        ({"assertion": assertion(iss="someone-else")}, 400, "invalid_grant"),
        ({"assertion": assertion(sub="admin@example")}, 400, "invalid_grant"),
        ({"assertion": assertion(iat=NOW, exp=NOW + 3601)}, 400, "invalid_grant"),
        ({"assertion": assertion(iat=NOW + 600, exp=NOW + 1200)}, 400, "invalid_grant"),
        ({"assertion": assertion(exp=None)}, 400, "invalid_grant"),
        ({"assertion": assertion(key=PUBLIC_PEM[:40] + "x", algorithm="HS256")}, 400,
         "invalid_grant"),
        ({"assertion": "not.a.jwt"}, 400, "invalid_grant"),
        ({"assertion": ""}, 400, "invalid_request"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "other-client"}, 401, "invalid_client"),
        ({"scope": "user.read"}, 400, "invalid_scope"),
    ],
    ids=["wrong-key", "expired", "wrong-iss", "wrong-sub", "over-an-hour", "iat-ahead",
         "no-exp", "hs256", "garbage", "no-assertion", "grant-type", "client-secret",
         "client-id", "scope"],
)  # fmt: skip
async def test_the_token_endpoint_refuses(
    sandbox: httpx.AsyncClient, form: dict[str, str], status: int, error: str
) -> None:
    response = await sandbox.post(TOKEN_URL, data=grant(**form))
    assert (response.status_code, response.json()["error"]) == (status, error), response.text
    assert response.json()["error_description"]
    assert (await sandbox.get(f"{CONTROL}/tokens")).json()["issued"] == 0


async def test_the_token_endpoint_wants_a_form(sandbox: httpx.AsyncClient) -> None:
    response = await sandbox.post(TOKEN_URL, json=grant())
    assert (response.status_code, response.json()["error"]) == (400, "invalid_request")


@pytest.mark.parametrize(
    "content",
    [
        {"type": "text", "text": ""},
        {"type": "text", "text": "x" * 2001},
        {"type": "image", "previewImageUrl": "https://example.com/a.png"},
        {"type": "button_template", "contentText": "x", "actions": []},
        {"type": "button_template", "contentText": "x" * 1001, "actions": BUTTONS["actions"]},
        {**BUTTONS, "actions": BUTTONS["actions"] * 4},
        {**BUTTONS, "actions": [{"type": "message", "label": "x" * 21, "postback": "ack:1"}]},
        {**BUTTONS, "actions": [{"type": "message", "label": "ok", "postback": "p" * 1001}]},
        {**BUTTONS, "actions": [{"type": "postback", "label": "ok", "data": "ack:1"}]},
        {**BUTTONS, "actions": [{"type": "uri", "label": "ok", "uri": "javascript:alert(1)"}]},
        {**BUTTONS, "contenttext": "typo"},
        {"type": "text", "text": "hi", "quickReply": {"items": [{"action": {
            "type": "postback", "label": "ok", "data": "d" * 301}}]}},
        {"type": "flex", "altText": "", "contents": {}},
    ],
)  # fmt: skip
async def test_an_invalid_body_is_a_400(
    sandbox: httpx.AsyncClient, content: dict[str, Any]
) -> None:
    auth = {"Authorization": f"Bearer {await access_token(sandbox)}"}
    response = await sandbox.post(f"{API}/channels/ch-ozu/messages", json={"content": content},
                                  headers=auth)  # fmt: skip
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_PARAMETER" and response.json()["description"]
    not_json = await sandbox.post(f"{API}/users/u1/messages", content=b"{", headers=auth)
    assert not_json.status_code == 400
    assert (await sandbox.get(f"{CONTROL}/channels/ch-ozu/messages")).json() == []


async def test_valid_bodies_of_each_kind_are_taken(sandbox: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await access_token(sandbox)}"}
    contents = [
        {"type": "text", "text": "対応しました / acknowledged"},
        {"type": "text", "text": "x", "quickReply": {"items": [{"action": {
            "type": "postback", "label": "再送", "data": "again", "displayText": "再送"}}]}},
        {"type": "flex", "altText": "alert", "contents": {"type": "bubble"}},
    ]  # fmt: skip
    for content in contents:
        response = await sandbox.post(f"{API}/users/crew-7/messages", json={"content": content},
                                      headers=auth)  # fmt: skip
        assert response.status_code == 201, response.text
    log = (await sandbox.get(f"{CONTROL}/users/crew-7/messages")).json()
    assert [entry["content"] for entry in log] == contents


async def test_an_unknown_bot_or_unlisted_channel_is_a_404(receiver: Receiver) -> None:
    state = WorksState(works_config(receiver.url, listed_channels_only=True))
    app = FastAPI()
    app.include_router(router(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sandbox") as sandbox:  # fmt: skip
        auth = {"Authorization": f"Bearer {await access_token(sandbox)}"}
        body = {"content": {"type": "text", "text": "hi"}}
        other_bot = await sandbox.post("/lineworks/v1.0/bots/999/channels/ch-ozu/messages",
                                       json=body, headers=auth)  # fmt: skip
        unlisted = await sandbox.post(f"{API}/channels/ch-elsewhere/messages", json=body,
                                      headers=auth)  # fmt: skip
        listed = await sandbox.post(f"{API}/channels/ch-ozu/messages", json=body, headers=auth)
    assert (other_bot.status_code, unlisted.status_code, listed.status_code) == (404, 404, 201)


async def test_a_missing_unknown_expired_or_revoked_token_is_a_401(
    sandbox: httpx.AsyncClient,
) -> None:
    body = {"content": {"type": "text", "text": "hi"}}
    url = f"{API}/channels/ch-ozu/messages"

    async def status(token: str | None) -> tuple[int, str]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = await sandbox.post(url, json=body, headers=headers)
        return response.status_code, response.json()["description"] if response.content else ""

    assert await status(None) == (401, "access token missing")
    assert await status("made-up") == (401, "access token unknown")
    expiring = await access_token(sandbox)
    assert (await sandbox.post(f"{CONTROL}/tokens/expire")).json() == {"expired": 1}
    assert await status(expiring) == (401, "access token expired")
    revoked = await access_token(sandbox)
    assert await status(revoked) == (201, "")
    assert (await sandbox.post(f"{CONTROL}/tokens/revoke")).json() == {"revoked": 1}
    assert await status(revoked) == (401, "access token revoked")
    assert await status(await access_token(sandbox)) == (201, "")
    assert len((await sandbox.get(f"{CONTROL}/channels/ch-ozu/messages")).json()) == 2


async def test_faults_refuse_the_next_calls_then_stop(sandbox: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await access_token(sandbox)}"}
    body = {"content": {"type": "text", "text": "hi"}}
    url = f"{API}/channels/ch-ozu/messages"
    await sandbox.post(f"{CONTROL}/faults", json={"status": 500, "count": 2})
    await sandbox.post(f"{CONTROL}/faults", json={"status": 429, "retry_after_s": 7})
    queued = (await sandbox.get(f"{CONTROL}/faults")).json()
    assert queued == {"queued": 3, "dropped": 0}
    answers = [await sandbox.post(url, json=body, headers=auth) for _ in range(4)]
    assert [a.status_code for a in answers] == [500, 500, 429, 201]
    assert answers[2].headers["Retry-After"] == "7"
    assert answers[2].json()["code"] == "TOO_MANY_REQUESTS"
    assert len((await sandbox.get(f"{CONTROL}/channels/ch-ozu/messages")).json()) == 1
    await sandbox.post(f"{CONTROL}/faults", json={"status": 503, "calls": ["token"]})
    assert (await sandbox.post(TOKEN_URL, data=grant())).status_code == 503
    assert (await sandbox.post(TOKEN_URL, data=grant())).status_code == 200
    refused = await sandbox.post(f"{CONTROL}/faults", json={"count": 3})
    assert refused.status_code == 422


def verify(headers: dict[str, str], body: bytes) -> None:
    """The callback is signed as LINE WORKS signs it."""
    digest = hmac.new(BOT_SECRET.encode(), body, hashlib.sha256).digest()
    assert headers["x-works-signature"] == base64.b64encode(digest).decode()
    assert headers["x-works-botid"] == BOT_ID
    assert headers["content-type"] == "application/json"


async def test_a_press_sends_a_signed_message_callback(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    auth = {"Authorization": f"Bearer {await access_token(sandbox)}"}
    await sandbox.post(f"{API}/channels/ch-ozu/messages", json={"content": BUTTONS},
                       headers=auth)  # fmt: skip
    receiver.status = 202
    press = {"channelId": "ch-ozu", "userId": "crew-1@example", "postback": "ack:42"}
    answer = await sandbox.post(f"{CONTROL}/press", json=press)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == 202
    [(headers, body)] = receiver.received
    verify(headers, body)
    event = json.loads(body)
    assert event == answer.json()["callback"]
    assert set(event) == {"type", "source", "issuedTime", "content"}
    assert event["type"] == "message"
    assert event["source"] == {"userId": "crew-1@example", "channelId": "ch-ozu",
                               "domainId": 10000001}  # fmt: skip
    assert event["content"] == {"type": "text", "text": "対応する Acknowledge",
                                "postback": "ack:42"}  # fmt: skip
    assert event["issuedTime"].endswith("Z")
    presses = (await sandbox.get(f"{CONTROL}/talks")).json()["presses"]
    assert [(p["userId"], p["status"]) for p in presses] == [("crew-1@example", 202)]


async def test_a_quick_reply_postback_and_typed_text_in_a_one_to_one_talk(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    auth = {"Authorization": f"Bearer {await access_token(sandbox)}"}
    quick = {"type": "text", "text": "もう一度? / again?", "quickReply": {"items": [
        {"action": {"type": "postback", "label": "はい yes", "data": "again:1"}}]}}  # fmt: skip
    await sandbox.post(f"{API}/users/crew-2/messages", json={"content": quick}, headers=auth)
    pressed = await sandbox.post(f"{CONTROL}/press", json={"userId": "crew-2",
                                                           "postback": "again:1"})  # fmt: skip
    typed = await sandbox.post(f"{CONTROL}/press", json={"userId": "crew-2", "text": "状況?"})
    assert pressed.json()["status"] == typed.json()["status"] == 200
    (h1, postback), (h2, text) = receiver.received
    verify(h1, postback)
    verify(h2, text)
    source = {"userId": "crew-2", "domainId": 10000001}
    assert {k: v for k, v in json.loads(postback).items() if k != "issuedTime"} == {
        "type": "postback", "source": source, "data": "again:1"}  # fmt: skip
    assert json.loads(text)["content"] == {"type": "text", "text": "状況?"}


async def test_a_press_of_a_button_nobody_sent_is_a_404(
    sandbox: httpx.AsyncClient, receiver: Receiver
) -> None:
    press = {"channelId": "ch-ozu", "userId": "crew-1", "postback": "ack:1"}
    assert (await sandbox.post(f"{CONTROL}/press", json=press)).status_code == 404
    assert receiver.received == []


async def test_a_press_when_the_server_is_down_is_a_502(
    sandbox: httpx.AsyncClient, state: WorksState
) -> None:
    state.callback_url = "http://127.0.0.1:9/lineworks/callback"
    response = await sandbox.post(f"{CONTROL}/press", json={"userId": "u", "text": "hi"})
    assert response.status_code == 502
    assert "callback failed" in response.json()["error"]


async def test_reset_forgets_messages_presses_and_faults(sandbox: httpx.AsyncClient) -> None:
    auth = {"Authorization": f"Bearer {await access_token(sandbox)}"}
    await sandbox.post(f"{API}/channels/ch-x/messages", json={"content": BUTTONS}, headers=auth)
    await sandbox.post(f"{CONTROL}/press", json={"channelId": "ch-x", "userId": "u",
                                                 "postback": "resolve:42"})  # fmt: skip
    await sandbox.post(f"{CONTROL}/faults", json={"status": 500, "count": 5})
    talks = (await sandbox.get(f"{CONTROL}/talks")).json()
    assert [c["id"] for c in talks["channels"]] == ["ch-ozu", "ch-x"]
    assert talks["channels"][0]["title"] == "大洲市 保守班" and len(talks["presses"]) == 1
    await sandbox.post(f"{CONTROL}/reset")
    talks = (await sandbox.get(f"{CONTROL}/talks")).json()
    assert [c["messages"] for c in talks["channels"]] == [[]] and talks["presses"] == []
    sent = await sandbox.post(f"{API}/channels/ch-x/messages", json={"content": BUTTONS},
                              headers=auth)  # fmt: skip
    assert sent.status_code == 201  # the faults went, the token stayed


async def test_the_web_view_is_served_offline(sandbox: httpx.AsyncClient) -> None:
    page = await sandbox.get(f"{CONTROL}/view")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "data-user-picker" in page.text and "http" not in page.text.replace("http-equiv", "")
    script = await sandbox.get(f"{CONTROL}/view/view.js")
    assert script.status_code == 200 and "/_sandbox/lineworks/press" in script.text.replace(
        "${CONTROL}", "/_sandbox/lineworks")  # fmt: skip
    assert (await sandbox.get(f"{CONTROL}/view/view.css")).status_code == 200
    assert (await sandbox.get(f"{CONTROL}/view/secrets.toml")).status_code == 422


async def test_the_rate_limit_refuses_calls_beyond_it_in_a_minute(receiver: Receiver) -> None:
    now = [time.time()]
    state = WorksState(works_config(receiver.url, requests_per_min=2), clock=lambda: now[0])
    app = FastAPI()
    app.include_router(router(state))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://sandbox") as sandbox:  # fmt: skip
        auth = {"Authorization": f"Bearer {await access_token(sandbox)}"}

        async def send() -> httpx.Response:
            body = {"content": {"type": "text", "text": "hi"}}
            return await sandbox.post(f"{API}/users/u1/messages", json=body, headers=auth)

        assert [(await send()).status_code for _ in range(2)] == [201, 201]
        now[0] += 20
        limited = await send()
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "40"
        now[0] += 40
        assert (await send()).status_code == 201
    assert len(state.messages("users", "u1")) == 3
