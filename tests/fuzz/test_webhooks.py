"""Door: the webhooks. LINE's webhook, the intake's relayed events and LINE WORKS'
callbacks, through the pure functions their routes call: the signature check with a
generated secret, then the parsing.

A forged, missing or misplaced signature is refused (Unauthorized, a 401) before the body
is read; a signed body that is not what we expect is Invalid (a 422), never another
exception (a 500). Valid events come out as they went in. A LINE WORKS callback that does
not parse is ignored (a 200), and a button's data we did not write decodes to None.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from server.errors import Invalid, Unauthorized
from server.intake import wire
from server.line.events import MAX_TEXT, Kind, Point, ResidentEvent, verified_events
from server.line.inbox import Received
from server.lineworks.buttons import POSTBACK_MAX, Button, Press, decode, encode
from server.lineworks.callbacks import Callback, verified
from server.settings import Settings
from tests.fuzz.hostile import SQL_LIKE, byte_edits, json_values, mutated

secrets = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=64)
texts = (st.text(max_size=60) | st.sampled_from(SQL_LIKE)
         | st.text(min_size=MAX_TEXT - 2, max_size=MAX_TEXT + 5))  # fmt: skip
user_ids = st.from_regex(r"U[0-9a-f]{32}", fullmatch=True)


def line_signature(secret: str, body: bytes) -> str:
    """As LINE signs: base64 HMAC-SHA256 of the raw body with the channel secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@st.composite
def line_events(draw: st.DrawFn) -> dict[str, Any]:
    """One webhook event as LINE sends it: a text, location, postback, follow or sticker."""
    kind = draw(st.sampled_from(["text", "location", "postback", "follow", "unfollow",
                                 "sticker", "unsend"]))  # fmt: skip
    found: dict[str, Any] = {
        "type": "message" if kind in ("text", "location", "sticker") else kind,
        "mode": "active", "timestamp": draw(st.integers(0, 2**53)),
        "source": {"type": "user", "userId": draw(user_ids)},
        "webhookEventId": draw(st.from_regex(r"[0-9A-Z]{26}", fullmatch=True)),
        "deliveryContext": {"isRedelivery": draw(st.booleans())},
    }  # fmt: skip
    if kind not in ("unfollow", "unsend"):
        found["replyToken"] = draw(st.from_regex(r"[0-9a-f]{32}", fullmatch=True))
    if kind == "text":
        found["message"] = {"type": "text", "id": "1", "quoteToken": "q", "text": draw(texts)}
    elif kind == "location":
        found["message"] = {"type": "location", "id": "1",
                            "latitude": draw(st.floats(-90, 90)),
                            "longitude": draw(st.floats(-180, 180))}  # fmt: skip
    elif kind == "sticker":
        found["message"] = {"type": "sticker", "id": "1", "packageId": "1", "stickerId": "2",
                            "stickerResourceType": "STATIC", "quoteToken": "q"}  # fmt: skip
    elif kind == "postback":
        found["postback"] = {"data": draw(texts)}
    elif kind == "follow":
        found["follow"] = {"isUnblocked": draw(st.booleans())}
    elif kind == "unsend":
        found["unsend"] = {"messageId": "1"}
    return found


webhook_bodies = st.lists(line_events(), max_size=4).map(
    lambda events: {"destination": "U" + "0" * 32, "events": events}
)


def expected(raw: dict[str, Any]) -> tuple[Kind, str, str | None]:
    message = raw.get("message", {})
    if raw["type"] == "message":
        kind = {"text": Kind.TEXT, "location": Kind.LOCATION}.get(message["type"], Kind.MEDIA)
    else:
        kind = {"postback": Kind.POSTBACK, "follow": Kind.FOLLOW, "unfollow": Kind.UNFOLLOW}.get(
            raw["type"], Kind.OTHER
        )
    text = message.get("text", raw.get("postback", {}).get("data", ""))
    return kind, text[:MAX_TEXT] if kind == Kind.TEXT else text, raw.get("replyToken")


def refusal(secret: str, body: bytes, signature: str) -> str:
    """What `verified_events` makes of a request: "accepted", "401" or "422"."""
    try:
        verified_events(secret, body, signature)
    except Unauthorized:
        return "401"
    except Invalid:
        return "422"
    return "accepted"


@given(secret=secrets, body=webhook_bodies, compact=st.booleans())
def test_a_signed_webhook_gives_its_events_back(secret: str, body: dict[str, Any],
                                                compact: bool) -> None:  # fmt: skip
    raw = json.dumps(body, ensure_ascii=compact, separators=(",", ":") if compact else None)
    events = verified_events(secret, raw.encode(), line_signature(secret, raw.encode()))
    assert [(e.event_id, e.user_id, e.timestamp_ms) for e in events] == [
        (r["webhookEventId"], r["source"]["userId"], r["timestamp"]) for r in body["events"]
    ]
    assert [(e.kind, e.text, e.reply_token) for e in events] == [
        expected(r) for r in body["events"]
    ]
    for e, r in zip(events, body["events"], strict=True):
        if e.kind == Kind.LOCATION:
            assert e.point == Point(r["message"]["latitude"], r["message"]["longitude"])
            assert "latitude" not in json.dumps(e.stored_body())  # never written down


@given(secret=secrets, body=webhook_bodies, data=st.data())
def test_a_forged_or_missing_signature_is_401(secret: str, body: dict[str, Any],
                                              data: st.DataObject) -> None:  # fmt: skip
    raw = json.dumps(body).encode()
    good = line_signature(secret, raw)
    forged = data.draw(st.sampled_from([
        "", good[:-2] + ("AA" if not good.endswith("AA") else "BB"), good.lower(),
        line_signature(secret + "x", raw), line_signature(secret, raw + b" "),
        " " + good, data.draw(st.text(max_size=60)),
    ]))  # fmt: skip
    if forged == good:
        return
    edited = data.draw(byte_edits(raw))
    assert refusal(secret, raw, forged) == "401"
    assert edited == raw or refusal(secret, edited, good) == "401"
    assert refusal("", raw, good) == "401"  # no channel secret set: nothing verifies
    event("refused: 401")


@given(secret=secrets, data=st.data())
def test_a_signed_body_is_accepted_or_422(secret: str, data: st.DataObject) -> None:
    valid = data.draw(webhook_bodies)
    raw = data.draw(mutated(valid) | st.binary(max_size=300)
                    | json_values.map(lambda v: json.dumps(v).encode()))  # fmt: skip
    found = refusal(secret, raw, line_signature(secret, raw))
    assert found in ("accepted", "422")
    event(f"refused: {found}" if found != "accepted" else "accepted")


received = st.builds(
    Received,
    st.builds(ResidentEvent, event_id=st.text(min_size=1, max_size=40),
              user_id=user_ids | st.none(), kind=st.sampled_from(Kind),
              timestamp_ms=st.integers(0, 2**53), reply_token=st.text(max_size=40) | st.none(),
              redelivery=st.booleans(), text=texts, subtype=st.text(max_size=32)),
    st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
)  # fmt: skip


@given(secret=secrets, items=st.lists(received, max_size=4), data=st.data())
def test_relayed_events_round_trip_and_anything_else_is_refused(
    secret: str, items: list[Received], data: st.DataObject
) -> None:
    body = wire.encode(items)
    back = wire.verified(secret, body, wire.signature(secret, body))
    assert [(r.event.event_id, r.event.user_id, r.event.kind, r.event.text) for r in back] == [
        (r.event.event_id, r.event.user_id, r.event.kind, r.event.text) for r in items
    ]
    assert all(abs((a.received_at - b.received_at).total_seconds()) < 1e-3
               for a, b in zip(back, items, strict=True))  # fmt: skip
    hostile = data.draw(mutated(json.loads(body)) | st.binary(max_size=200))
    try:
        wire.verified(secret, hostile, wire.signature(secret, hostile))
        event("accepted")
    except Invalid:
        event("refused: 422")
    with pytest.raises(Unauthorized):  # a LINE signature is no intake signature
        wire.verified(secret, body, line_signature(secret, body))


def works_settings(secret: str, bot_id: str) -> Settings:
    return Settings(database_url="sqlite+aiosqlite://", mqtt_url=None,
                    lineworks_bot_secret=SecretStr(secret), lineworks_bot_id=bot_id)  # fmt: skip


callbacks = st.fixed_dictionaries({
    "type": st.sampled_from(["message", "postback", "join", "leave"]),
    "source": st.fixed_dictionaries({"userId": st.text(min_size=1, max_size=60)},
                                    optional={"channelId": st.text(max_size=60)}),
    "issuedTime": st.just("2026-11-24T09:00:00.000Z"),
}, optional={
    "content": st.fixed_dictionaries({"type": st.just("text"), "text": texts},
                                     optional={"postback": texts}),
    "data": texts,
})  # fmt: skip


@given(secret=secrets, bot_id=st.text(st.characters(max_codepoint=126), min_size=1, max_size=20),
       body=callbacks, data=st.data())  # fmt: skip
def test_a_lineworks_callback_is_verified_then_read_or_ignored(
    secret: str, bot_id: str, body: dict[str, Any], data: st.DataObject
) -> None:
    settings = works_settings(secret, bot_id)
    raw = json.dumps(body).encode()
    good = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()
    assert verified(settings, bot_id, good, raw)
    assert not verified(settings, bot_id + "x", good, raw)
    assert not verified(settings, bot_id, good, raw + b"\n")
    assert not verified(settings, None, good, raw) and not verified(settings, bot_id, None, raw)
    assert not verified(works_settings("", bot_id), bot_id, good, raw)
    assert not verified(settings, bot_id, line_signature(secret + "x", raw), raw)
    callback = Callback.model_validate_json(raw)
    assert callback.source.user_id == body["source"]["userId"]
    hostile = data.draw(mutated(body) | st.binary(max_size=200))
    try:
        read = Callback.model_validate_json(hostile)
    except ValidationError:
        event("refused: ignored (ValidationError)")
        return
    event("read")
    press = None if read.postback is None else decode(read.postback)
    assert press is None or isinstance(press, Press)


@given(button=st.sampled_from(Button), ids=st.lists(st.integers(1, 2**31 - 1), min_size=1,
                                                     max_size=40, unique=True))  # fmt: skip
def test_a_button_round_trips_within_its_limit(button: Button, ids: list[int]) -> None:
    try:
        data = encode(button, ids)
    except ValueError:
        assert len(f"{button}:" + ".".join(map(str, ids))) > POSTBACK_MAX
        event("refused: over the postback limit")
        return
    assert decode(data) == Press(button, tuple(ids))


@given(data=st.text(max_size=400) | st.sampled_from(SQL_LIKE)
       | st.builds(lambda b, tail: f"{b}:{tail}", st.sampled_from(["ack", "resolve", "ACK"]),
                   st.text(st.sampled_from("0123456789.-+ ٣"), max_size=40)))  # fmt: skip
def test_button_data_we_did_not_write_is_none_or_a_press_of_real_ids(data: str) -> None:
    press = decode(data)
    event("refused: None" if press is None else "press")
    if press is not None:
        assert press.incident_ids and all(1 <= i < 2**31 for i in press.incident_ids)
        assert decode(encode(press.button, press.incident_ids)) == press
