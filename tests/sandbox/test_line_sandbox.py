"""The LINE sandbox answers as the platform does: bodies validated by line-bot-sdk's models
and the documented limits, tokens checked, reply tokens once and fresh, retry keys once,
faults injected; and the webhooks it sends are signed and parse with line-bot-sdk."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from linebot.v3.messaging import (
    ApiException,
    AsyncApiClient,
    AsyncMessagingApi,
    Configuration,
    PushMessageRequest,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.webhook import WebhookParser
from linebot.v3.webhooks import (
    FollowEvent,
    ImageMessageContent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
)

from sandbox.config import LineConfig, load
from sandbox.line.api import router
from sandbox.line.state import LineState
from sandbox.line.validation import MAX_BUBBLE_BYTES, Invalid, validate
from sandbox.line.webhooks import CROCKFORD, signature, ulid
from server.settings import Settings
from tests.conditions import wait_until
from tests.sandbox.receiver import Receiver, receiving
from tests.sandboxes import Sandbox

pytestmark = pytest.mark.anyio
SECRET, TOKEN = "0123456789abcdef0123456789abcdef", "channel-access-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
USER, OTHER = "U" + "a" * 32, "U" + "b" * 32
TEXT = {"type": "text", "text": "こんにちは"}
BOOK = {"type": "postback", "label": "予約", "data": "a=book&o=1"}
BUBBLE: dict[str, Any] = {"type": "bubble", "body": {
    "type": "box", "layout": "vertical",
    "contents": [{"type": "text", "text": "大洲小学校"}, {"type": "button", "action": BOOK}],
}}  # fmt: skip


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving("/line/webhook") as got:
        yield got


def parsed(receiver: Receiver) -> list[Any]:
    """Every received webhook's events, signature checked and parsed by line-bot-sdk."""
    parser = WebhookParser(SECRET)
    return [e for headers, body in receiver.received
            for e in parser.parse(body.decode(), headers["x-line-signature"])]  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(receiver: Receiver, clock: Clock) -> LineState:
    config = LineConfig.model_validate({
        "channel_secret": SECRET, "access_token": TOKEN, "webhook_url": receiver.url,
        "reply_token_ttl_s": 30,
    })  # fmt: skip
    return LineState(config, clock=clock)


@pytest.fixture
async def line(state: LineState) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(router(state))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as http:
        yield http


async def send(line: httpx.AsyncClient, user: str, event: dict[str, Any]) -> dict[str, Any]:
    answer = await line.post(f"/_sandbox/line/users/{user}/send", json=event)
    assert answer.status_code == 200, answer.text
    sent: dict[str, Any] = answer.json()
    return sent


async def push(line: httpx.AsyncClient, key: str | None = None, to: str = USER) -> httpx.Response:
    headers = {**AUTH, **({"X-Line-Retry-Key": key} if key else {})}
    body = {"to": to, "messages": [TEXT]}
    return await line.post("/line/v2/bot/message/push", json=body, headers=headers)


async def reply(line: httpx.AsyncClient, token: str) -> httpx.Response:
    body = {"replyToken": token, "messages": [TEXT]}
    return await line.post("/line/v2/bot/message/reply", json=body, headers=AUTH)


async def messages(line: httpx.AsyncClient, user: str = USER) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await line.get(f"/_sandbox/line/users/{user}/messages")).json()
    return found


# The webhooks: what LINE sends, signed, parsed by line-bot-sdk.


async def test_each_resident_action_is_a_signed_webhook_line_bot_sdk_parses(
    line: httpx.AsyncClient, receiver: Receiver, state: LineState
) -> None:
    actions: list[dict[str, Any]] = [
        TEXT,
        {"type": "location", "latitude": 33.5065, "longitude": 132.5447, "title": "大洲市役所",
         "address": "愛媛県大洲市大洲690-1"},
        {"type": "postback", "data": "a=book&o=1"},
        {"type": "sticker"},
        {"type": "image"},
        {"type": "follow", "language": "en"},
        {"type": "unfollow"},
    ]  # fmt: skip
    sent = [await send(line, USER, action) for action in actions]
    assert [s["status"] for s in sent] == [200] * len(actions)
    events = parsed(receiver)
    kinds = [MessageEvent, MessageEvent, PostbackEvent, MessageEvent, MessageEvent]
    assert [type(e) for e in events] == [*kinds, FollowEvent, UnfollowEvent]
    contents = [type(e.message) for e in events if isinstance(e, MessageEvent)]
    assert contents == [TextMessageContent, LocationMessageContent, StickerMessageContent,
                        ImageMessageContent]  # fmt: skip
    text, location, postback = events[0], events[1], events[2]
    assert text.message.text == "こんにちは" and len(text.message.quote_token) > 0
    assert (location.message.latitude, location.message.title) == (33.5065, "大洲市役所")
    assert isinstance(postback, PostbackEvent) and postback.postback.data == "a=book&o=1"
    for event, answer in zip(events, sent, strict=True):
        assert event.source.user_id == USER and event.mode.value == "active"
        assert event.webhook_event_id == answer["webhookEventId"]
        assert event.delivery_context.is_redelivery is False
        assert getattr(event, "reply_token", None) == answer["replyToken"]
    assert sent[-1]["replyToken"] is None  # an unfollow cannot be answered
    headers, body = receiver.received[0]
    assert headers["x-line-signature"] == signature(SECRET, body)
    payload = json.loads(body)
    assert payload["destination"] == state.destination and len(payload["events"]) == 1
    assert payload["events"][0]["timestamp"] == int(state.clock() * 1000)
    profile = await line.get(f"/line/v2/bot/profile/{USER}", headers=AUTH)
    assert profile.json()["language"] == "en"  # as the resident's LINE app is set


async def test_a_redelivery_is_the_same_event_marked_redelivered(
    line: httpx.AsyncClient, receiver: Receiver
) -> None:
    first = await send(line, USER, TEXT)
    await send(line, USER, {"type": "postback", "data": "a=status"})
    again = await send(line, USER, {"redeliver": True, "webhookEventId": first["webhookEventId"]})
    assert (again["webhookEventId"], again["replyToken"]) == (
        first["webhookEventId"], first["replyToken"])  # fmt: skip
    original, _, redelivered = parsed(receiver)
    assert redelivered.delivery_context.is_redelivery is True
    assert redelivered.message.text == original.message.text
    last = await send(line, USER, {"redeliver": True})  # the resident's last event
    assert parsed(receiver)[-1].postback.data == "a=status" and last["status"] == 200
    missing = await line.post(f"/_sandbox/line/users/{OTHER}/send", json={"redeliver": True})
    assert missing.status_code == 404


async def test_a_follow_after_an_unfollow_is_an_unblock(
    line: httpx.AsyncClient, receiver: Receiver
) -> None:
    for action in ("follow", "unfollow", "follow"):
        await send(line, USER, {"type": action})
    first, _, again = parsed(receiver)
    assert (first.follow.is_unblocked, again.follow.is_unblocked) == (False, True)


async def test_the_server_status_or_its_absence_is_reported(
    line: httpx.AsyncClient, receiver: Receiver, state: LineState
) -> None:
    receiver.status = 401
    assert (await send(line, USER, TEXT))["status"] == 401
    state.webhook_url = "http://127.0.0.1:9/line/webhook"
    down = await send(line, USER, TEXT)
    assert down["status"] is None and "ConnectError" in down["error"]
    bad = await line.post(f"/_sandbox/line/users/{USER}/send", json={"type": "dance"})
    assert bad.status_code == 422


def test_webhook_event_ids_are_ulids_in_time_order() -> None:
    ids = [ulid(ms) for ms in (1_700_000_000_000, 1_700_000_000_001, 1_800_000_000_000)]
    assert all(len(i) == 26 and set(i) <= set(CROCKFORD) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 3


# The Messaging API: bodies, tokens, reply tokens, retry keys, faults.


@pytest.mark.parametrize(
    ("messages", "property_"),
    [
        ([{"type": "text"}], "text"),
        ([{"type": "bogus", "text": "a"}], ""),
        ([TEXT] * 6, "messages"),
        ([], "messages"),
        ([{"type": "text", "text": "a" * 5001}], "messages[0].text"),
        ([{"type": "flex", "altText": "a" * 1501, "contents": BUBBLE}], "messages[0].altText"),
        ([{"type": "flex", "altText": "a",
           "contents": {"type": "carousel", "contents": [BUBBLE] * 13}}],
         "messages[0].contents.contents"),
        ([{"type": "flex", "altText": "a", "contents": {"type": "box", "layout": "vertical"}}], ""),
        ([{"type": "flex", "altText": "a", "contents": {**BUBBLE, "body": {
            "type": "box", "layout": "vertical",
            "contents": [{"type": "text", "text": "x" * MAX_BUBBLE_BYTES}]}}}],
         "messages[0].contents"),
        ([{"type": "flex", "altText": "a", "contents": {"type": "carousel", "contents": [
            {**BUBBLE, "body": {"type": "box", "layout": "vertical",
                                "contents": [{"type": "text", "text": "x" * 4500}]}}] * 12}}],
         "messages[0].contents"),
        ([{"type": "text", "text": "a", "quickReply": {"items": [
            {"type": "action", "action": {"type": "message", "label": "l", "text": "t"}}] * 14}}],
         "items"),
        ([{"type": "text", "text": "a", "quickReply": {"items": [
            {"type": "action", "action": {"type": "message", "label": "l" * 21, "text": "t"}}]}}],
         "messages[0].quickReply.items[0].action.label"),
        ([{"type": "flex", "altText": "a", "contents": {"type": "bubble", "body": {
            "type": "box", "layout": "vertical", "contents": [{"type": "button", "action": {
                "type": "postback", "label": "l", "data": "d" * 301}}]}}}], "data"),
    ],
)  # fmt: skip
async def test_an_invalid_body_is_a_400_naming_the_problem(
    line: httpx.AsyncClient, messages: list[Any], property_: str
) -> None:
    body = {"to": USER, "messages": messages}
    answer = await line.post("/line/v2/bot/message/push", json=body, headers=AUTH)
    assert answer.status_code == 400, answer.text
    [detail] = answer.json()["details"]
    assert detail["property"] == property_ and detail["message"]
    assert answer.json()["message"] == "The request body has 1 error(s)"
    assert (await line.get("/_sandbox/line/deliveries")).json() == []


def test_valid_bodies_at_the_limits_are_taken() -> None:
    quick = {"items": [{"type": "action", "action": {"type": "location", "label": "l" * 20}}] * 13}
    messages = [
        {"type": "text", "text": "a" * 5000, "quickReply": quick},
        {"type": "flex", "altText": "a" * 1500,
         "contents": {"type": "carousel", "contents": [BUBBLE] * 12}},
        {"type": "location", "title": "大洲駅", "address": "愛媛県大洲市",
         "latitude": 33.508, "longitude": 132.553},
    ]  # fmt: skip
    assert validate("push", {"to": USER, "messages": messages})["messages"] == messages
    assert validate("multicast", {"to": [USER, OTHER], "messages": [TEXT]})
    assert validate("loading", {"chatId": USER, "loadingSeconds": 10})
    with pytest.raises(Invalid):
        validate("reply", [TEXT])
    with pytest.raises(Invalid):
        validate("multicast", {"to": [], "messages": [TEXT]})


def test_messages_seen_before_are_judged_the_same_again() -> None:
    """Each message's verdict is remembered by its JSON; the envelope is always checked."""
    for _ in range(2):
        assert validate("push", {"to": USER, "messages": [TEXT]})
        with pytest.raises(Invalid) as refused:
            validate("push", {"to": USER, "messages": [TEXT, {"type": "text"}]})
        assert [d["property"] for d in refused.value.details] == ["text"]
        with pytest.raises(Invalid) as refused:
            validate("push", {"to": 7, "messages": [TEXT]})
        assert [d["property"] for d in refused.value.details] == ["to"]


async def test_recipients_must_be_user_ids_and_only_push_and_multicast_take_retry_keys(
    line: httpx.AsyncClient,
) -> None:
    answer = await push(line, to="U1")
    assert (answer.status_code, answer.json()["details"][0]["property"]) == (400, "to")
    multicast = {"to": [USER, "alice"], "messages": [TEXT]}
    answer = await line.post("/line/v2/bot/message/multicast", json=multicast, headers=AUTH)
    assert (answer.status_code, answer.json()["details"][0]["property"]) == (400, "to[1]")
    token = (await send(line, USER, TEXT))["replyToken"]
    body = {"replyToken": token, "messages": [TEXT]}
    headers = {**AUTH, "X-Line-Retry-Key": str(uuid.uuid4())}
    answer = await line.post("/line/v2/bot/message/reply", json=body, headers=headers)
    assert answer.status_code == 400 and "Retry-Key" in answer.json()["message"]
    assert (await reply(line, token)).status_code == 200  # the refused call used nothing up
    assert (await line.post("/_sandbox/line/users/U1/send", json=TEXT)).status_code == 422


async def test_every_call_needs_the_channel_access_token(line: httpx.AsyncClient) -> None:
    calls = [
        line.post("/line/v2/bot/message/push", json={"to": USER, "messages": [TEXT]}),
        line.post("/line/v2/bot/message/reply", json={"replyToken": "x", "messages": [TEXT]},
                  headers={"Authorization": "Bearer wrong"}),
        line.post("/line/v2/bot/message/multicast", json={"to": [USER], "messages": [TEXT]},
                  headers={"Authorization": TOKEN}),
        line.post("/line/v2/bot/chat/loading/start", json={"chatId": USER}),
        line.get(f"/line/v2/bot/profile/{USER}"),
    ]  # fmt: skip
    for call in calls:
        answer = await call
        assert answer.status_code == 401 and "Authentication failed" in answer.json()["message"]
        assert uuid.UUID(answer.headers["x-line-request-id"])
    assert (await line.get("/_sandbox/line/deliveries")).json() == []


async def test_a_reply_token_works_once_while_fresh(line: httpx.AsyncClient, clock: Clock) -> None:
    first = (await send(line, USER, TEXT))["replyToken"]
    answer = await reply(line, first)
    assert answer.status_code == 200 and len(answer.json()["sentMessages"]) == 1
    again = await reply(line, first)
    assert (again.status_code, again.json()) == (400, {"message": "Invalid reply token"})
    late = (await send(line, USER, TEXT))["replyToken"]
    clock.now += 30
    assert (await reply(line, late)).status_code == 400
    assert (await reply(line, "never-issued")).status_code == 400
    fresh = (await send(line, USER, TEXT))["replyToken"]
    assert (await line.post("/_sandbox/line/reply-tokens/expire")).json() == {"expired": 1}
    assert (await reply(line, fresh)).status_code == 400
    [delivered] = await messages(line)
    assert (delivered["via"], delivered["messages"]) == ("reply", [TEXT])


async def test_a_reused_retry_key_is_a_409_and_not_delivered_twice(
    line: httpx.AsyncClient,
) -> None:
    key = str(uuid.uuid4())
    first = await push(line, key)
    assert first.status_code == 200
    again = await push(line, key)
    assert again.status_code == 409
    assert again.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert again.json()["sentMessages"] == first.json()["sentMessages"]
    assert (await push(line, str(uuid.uuid4()))).status_code == 200
    assert (await push(line, "not-a-uuid")).status_code == 400
    multicast = {"to": [USER, OTHER], "messages": [TEXT]}
    headers = {**AUTH, "X-Line-Retry-Key": str(uuid.uuid4())}
    for status in (200, 409):
        answer = await line.post("/line/v2/bot/message/multicast", json=multicast, headers=headers)
        assert answer.status_code == status
    assert [d["via"] for d in await messages(line)] == ["push", "push", "multicast"]
    assert (await messages(line))[0]["retry_key"] == key
    assert [d["via"] for d in await messages(line, OTHER)] == ["multicast"]


async def test_a_push_to_a_resident_who_blocked_us_is_taken_but_not_seen(
    line: httpx.AsyncClient,
) -> None:
    for action in ("follow", "unfollow"):
        await send(line, USER, {"type": action})
    assert (await push(line)).status_code == 200
    assert await messages(line) == []
    [taken] = (await line.get("/_sandbox/line/deliveries")).json()
    assert taken["blocked"] == [USER]
    await send(line, USER, {"type": "follow"})
    assert (await push(line)).status_code == 200
    assert len(await messages(line)) == 1


async def test_faults_hit_the_next_sending_calls_then_stop(line: httpx.AsyncClient) -> None:
    key = str(uuid.uuid4())
    await line.post("/_sandbox/line/faults", json={"status": 500, "count": 2})
    fault = {"status": 429, "count": 1, "retry_after_s": 3}
    assert (await line.post("/_sandbox/line/faults", json=fault)).json() == {"queued": 3}
    loading = await line.post("/line/v2/bot/chat/loading/start", json={"chatId": USER},
                              headers=AUTH)  # fmt: skip
    assert loading.status_code == 202  # faults hit reply, push and multicast unless told
    statuses = [(await push(line, key)) for _ in range(4)]
    assert [a.status_code for a in statuses] == [500, 500, 429, 200]
    assert statuses[2].headers["Retry-After"] == "3" and "x-line-request-id" in statuses[0].headers
    assert len(await messages(line)) == 1  # a refused call accepts nothing, not its key either
    named = {"status": 503, "count": 1, "calls": ["profile"]}
    await line.post("/_sandbox/line/faults", json=named)
    await send(line, USER, {"type": "follow"})
    assert (await line.get(f"/line/v2/bot/profile/{USER}", headers=AUTH)).status_code == 503
    assert (await line.get(f"/line/v2/bot/profile/{USER}", headers=AUTH)).status_code == 200
    nothing = await line.post("/_sandbox/line/faults", json={"count": 1})
    assert nothing.status_code == 422


async def test_reset_forgets_what_was_sent_and_the_faults(line: httpx.AsyncClient) -> None:
    token = (await send(line, USER, TEXT))["replyToken"]
    await push(line)
    await line.post("/_sandbox/line/faults", json={"status": 500, "count": 5})
    await line.post("/_sandbox/line/reset")
    assert await messages(line) == []
    assert (await line.get("/_sandbox/line/users")).json() == []
    assert (await push(line)).status_code == 200
    assert (await reply(line, token)).status_code == 400


# The process: `chargenet sandbox`, line-bot-sdk against it, the server's settings.


async def test_line_bot_sdk_talks_to_the_sandbox_process(sandbox: Sandbox) -> None:
    """The server's own client: reply, push with a retry key, a hang its timeout gives up on."""
    sent = sandbox.line_text(USER, "充電")
    assert sent["status"] is None  # pointed nowhere yet
    env = sandbox.server_env
    configuration = Configuration(
        host=env["CHARGENET_LINE_API_URL"], access_token=env["CHARGENET_LINE_CHANNEL_ACCESS_TOKEN"]
    )
    async with AsyncApiClient(configuration) as client:
        api = AsyncMessagingApi(client)
        asked = [TextMessage(text="どこにいますか")]
        replied = await api.reply_message(
            ReplyMessageRequest(reply_token=sent["replyToken"], messages=asked)
        )
        assert len(replied.sent_messages) == 1
        key = str(uuid.uuid4())
        request = PushMessageRequest(to=USER, messages=[TextMessage(text="予約を移しました")])
        await api.push_message(request, x_line_retry_key=key)
        with pytest.raises(ApiException) as refused:
            await api.push_message(request, x_line_retry_key=key)
        assert refused.value.status == 409
        sandbox.faults("line", delay_s=2)
        with pytest.raises(TimeoutError):
            await api.push_message(
                request, x_line_retry_key=str(uuid.uuid4()), _request_timeout=0.3
            )
    assert [d["via"] for d in sandbox.line_messages(USER)] == ["reply", "push"]


def test_a_call_its_caller_gave_up_on_is_carried_out_late_and_its_retry_is_a_409(
    sandbox: Sandbox,
) -> None:
    url = sandbox.server_env["CHARGENET_LINE_API_URL"] + "/v2/bot/message/push"
    headers = {"Authorization": f"Bearer {sandbox.line_access_token}",
               "X-Line-Retry-Key": str(uuid.uuid4())}  # fmt: skip
    body = {"to": USER, "messages": [TEXT]}
    sandbox.faults("line", delay_s=0.5)
    with pytest.raises(httpx.TimeoutException):
        httpx.post(url, json=body, headers=headers, timeout=0.1)
    wait_until(lambda: sandbox.line_messages(USER), 10, "the push carried out late")
    assert httpx.post(url, json=body, headers=headers, timeout=10).status_code == 409
    assert len(sandbox.line_deliveries()) == 1


def test_the_process_points_its_webhooks_where_told(sandbox: Sandbox, receiver: Receiver) -> None:
    sandbox.set_urls(line_webhook_url=receiver.url)
    sent = sandbox.line_location(USER, 33.5080, 132.5530, title="大洲駅")
    assert sent["status"] == 200
    [(headers, body)] = receiver.received
    assert headers["x-line-signature"] == signature(sandbox.line_channel_secret, body)
    sandbox.point_at("http://127.0.0.1:9")
    urls = sandbox.call("POST", "/_sandbox/config", {})
    assert urls == {"line_webhook_url": "http://127.0.0.1:9/line/webhook",
                    "lineworks_callback_url": "http://127.0.0.1:9/lineworks/callback"}  # fmt: skip
    assert sandbox.line_follow(OTHER)["status"] is None
    assert sandbox.stop() == 0  # SIGTERM: a clean stop


def test_the_server_env_names_real_settings_and_the_config_is_the_sandboxes(
    sandbox: Sandbox,
) -> None:
    fields = set(Settings.model_fields)
    assert {k.removeprefix("CHARGENET_").lower() for k in sandbox.server_env} <= fields
    config = load(sandbox.config_path)
    assert config.line.channel_secret.get_secret_value() == sandbox.line_channel_secret
    assert config.lineworks.bot_id == sandbox.works_bot_id
    assert sandbox.config_path.stat().st_mode & 0o077 == 0
    assert sandbox.line_access_token not in sandbox.log_text()


async def test_the_web_chat_is_served_offline(line: httpx.AsyncClient) -> None:
    page = await line.get("/_sandbox/line/chat")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("chat.js", "chat.css"):
        served = await line.get(f"/_sandbox/line/chat/{asset}")
        assert served.status_code == 200 and asset in page.text
        assert "<script src" not in served.text and "@import" not in served.text
    assert "http" not in page.text  # nothing from a CDN: the demo works without a network
    assert (await line.get("/_sandbox/line/chat/secrets.toml")).status_code == 422


def test_a_bad_config_is_named_key_by_key_without_its_values(tmp_path: Path) -> None:
    secret = "s3cret-" + uuid.uuid4().hex
    bad = tmp_path / "sandbox.toml"
    bad.write_text(f'[line]\nchannel_secret = "{secret}"\nacess_token = "{secret}"\n')
    run = subprocess.run(
        [sys.executable, "-m", "chargenet", "sandbox", "--config", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and run.stdout == ""
    assert "line.acess_token" in run.stderr and "line.access_token" in run.stderr
    assert "lineworks" in run.stderr and secret not in run.stderr


async def test_a_multicast_is_refused_as_line_refuses_it(line: httpx.AsyncClient) -> None:
    """At most 500 user ids, 5 messages, 5,000 characters a text, a UUID retry key; faults
    can hit multicast alone, and a refused call delivers nothing."""
    many = [f"U{n:032x}" for n in range(501)]
    url = "/line/v2/bot/message/multicast"

    async def multicast(body: dict[str, object], key: str | None = None) -> httpx.Response:
        headers = {**AUTH, "X-Line-Retry-Key": key or str(uuid.uuid4())}
        return await line.post(url, json=body, headers=headers)

    assert (await multicast({"to": many, "messages": [TEXT]})).status_code == 400
    assert (await multicast({"to": many[:500], "messages": [TEXT] * 6})).status_code == 400
    long = {"type": "text", "text": "a" * 5001}
    refused = await multicast({"to": many[:2], "messages": [long]})
    assert refused.status_code == 400
    assert refused.json()["details"][0]["property"] == "messages[0].text"
    odd = await multicast({"to": [USER, "Uxyz"], "messages": [TEXT]})
    assert odd.json()["details"] == [{"message": "Invalid user ID", "property": "to[1]"}]
    assert (await multicast({"to": [USER], "messages": [TEXT]}, "key-1")).status_code == 400
    assert await messages(line) == []
    faults = {"status": 429, "count": 2, "calls": ["multicast"]}
    assert (await line.post("/_sandbox/line/faults", json=faults)).is_success
    assert (await push(line)).status_code == 200  # a push is not hit
    body = {"to": many[:500], "messages": [TEXT] * 5}
    assert [(await multicast(body)).status_code for _ in range(3)] == [429, 429, 200]
    delivered = await line.get("/_sandbox/line/deliveries")
    assert [(d["via"], len(d["to"])) for d in delivered.json()] == [("push", 1), ("multicast", 500)]
