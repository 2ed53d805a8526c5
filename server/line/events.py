"""LINE webhook events as chargenet sees them: small frozen dataclasses, no SDK types.

line-bot-sdk's `WebhookParser` checks the signature and parses the body into its pydantic-v1
models; `resident_events` turns those into `ResidentEvent`s at the edge, so the bot, the
routes and the handlers never touch the SDK. An event type or message type the SDK does not
know (it makes them `UnknownEvent`s without their source) is read from the raw JSON instead:
whoever sent it still gets a short hint.

What is stored (`stored_body`) is the event without its coordinates: a resident's location
is used for ranking and never written down. A stored event read back (`from_stored`) after
a crash is therefore a location without a point, and the resident is asked again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.models.events import UnknownEvent
from linebot.v3.webhooks import (
    FollowEvent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    TextMessageContent,
    UnfollowEvent,
)

from server.errors import Invalid, Unauthorized

MAX_TEXT: Final = 1000
"""Characters of a text message kept (LINE allows 5,000; no command is longer than a line)."""


class Kind(StrEnum):
    """What happened, as the routing table keys it."""

    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    TEXT = "text"
    LOCATION = "location"
    POSTBACK = "postback"
    MEDIA = "media"
    """A sticker, image, video, audio or file: nothing to read, a hint to give."""
    OTHER = "other"
    """Any other event or message type (unsend, join, a type added after this SDK)."""


MEDIA_TYPES: Final = frozenset({"sticker", "image", "video", "audio", "file"})


@dataclass(frozen=True, slots=True)
class Point:
    """A location the resident sent: for ranking, never stored."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class ResidentEvent:
    """One webhook event from one LINE user."""

    event_id: str
    """`webhookEventId`: the same for a redelivery."""
    user_id: str | None
    """None when the source names no user (a group event): nobody to answer."""
    kind: Kind
    timestamp_ms: int
    reply_token: str | None = None
    redelivery: bool = False
    text: str = ""
    """A text message's text, or a postback's data."""
    point: Point | None = None
    """A location message's point (None also once read back from the store)."""
    subtype: str = ""
    """The LINE type behind MEDIA and OTHER (`sticker`, `unsend` ...), for the logs."""

    def stored_body(self) -> dict[str, Any]:
        """What `line_events.body` keeps: everything but the point."""
        body: dict[str, Any] = {"kind": self.kind.value, "timestamp": self.timestamp_ms}
        if self.reply_token:
            body["replyToken"] = self.reply_token
        if self.text:
            body["text"] = self.text
        if self.subtype:
            body["subtype"] = self.subtype
        return body

    @classmethod
    def from_stored(
        cls, event_id: str, user_id: str | None, body: dict[str, Any], redelivery: bool
    ) -> ResidentEvent:
        """An event read back from `line_events` (a location without its point)."""
        return cls(
            event_id=event_id, user_id=user_id, kind=Kind(body.get("kind", Kind.OTHER)),
            timestamp_ms=int(body.get("timestamp", 0)), reply_token=body.get("replyToken"),
            redelivery=redelivery, text=str(body.get("text", "")),
            subtype=str(body.get("subtype", "")),
        )  # fmt: skip


def verified_events(secret: str, body: bytes, signature: str) -> list[ResidentEvent]:
    """The events of a request signed with `secret`.

    Raises Unauthorized (bad signature, no secret) or Invalid (not a webhook body).
    """
    if not secret or not signature:
        raise Unauthorized("X-Line-Signature missing or no channel secret set")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:  # signed or not? the SDK only takes text, so check here
        mac = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
        if not hmac.compare_digest(mac, signature.encode()):
            raise Unauthorized("X-Line-Signature does not match the body") from None
        raise Invalid("not a LINE webhook body (not UTF-8)") from None
    try:
        parsed = WebhookParser(secret).parse(text, signature)
    except InvalidSignatureError:
        raise Unauthorized("X-Line-Signature does not match the body") from None
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError,
            RecursionError) as exc:  # fmt: skip
        raise Invalid(f"not a LINE webhook body ({type(exc).__name__})") from None
    return resident_events(parsed, text)


def resident_events(parsed: Sequence[Any], body: str) -> list[ResidentEvent]:
    """Our events from the SDK's, in order; `body` is the raw JSON they were parsed from
    (read only when the SDK did not know an event)."""
    raw: list[dict[str, Any]] | None = None
    events = []
    for index, event in enumerate(parsed):
        if type(event) is UnknownEvent:  # exact types: the SDK's isinstance is an ABC's, slow
            if raw is None:
                raw = json.loads(body).get("events", [])
            events.append(_unknown(raw[index] if index < len(raw) else {}))
        else:
            events.append(_known(event))
    return events


def _known(event: Any) -> ResidentEvent:
    source = getattr(event, "source", None)
    common: dict[str, Any] = {
        "event_id": event.webhook_event_id,
        "user_id": getattr(source, "user_id", None),
        "timestamp_ms": event.timestamp,
        "reply_token": getattr(event, "reply_token", None),
        "redelivery": bool(event.delivery_context and event.delivery_context.is_redelivery),
    }
    if type(event) is FollowEvent:
        return ResidentEvent(kind=Kind.FOLLOW, **common)
    if type(event) is UnfollowEvent:
        return ResidentEvent(kind=Kind.UNFOLLOW, **common)
    if type(event) is PostbackEvent:
        return ResidentEvent(kind=Kind.POSTBACK, text=event.postback.data, **common)
    if type(event) is MessageEvent:
        message = event.message
        if type(message) is TextMessageContent:
            return ResidentEvent(kind=Kind.TEXT, text=message.text[:MAX_TEXT], **common)
        if type(message) is LocationMessageContent:
            point = Point(message.latitude, message.longitude)
            return ResidentEvent(kind=Kind.LOCATION, point=point, **common)
        kind = Kind.MEDIA if message.type in MEDIA_TYPES else Kind.OTHER
        return ResidentEvent(kind=kind, subtype=message.type, **common)
    return ResidentEvent(kind=Kind.OTHER, subtype=str(event.type), **common)


_LENIENT: Final = {"follow": Kind.FOLLOW, "unfollow": Kind.UNFOLLOW}
"""Kinds kept when the SDK refused the event's details (a follow without `follow`)."""


def _unknown(raw: dict[str, Any]) -> ResidentEvent:
    """An event the SDK could not model, read from its JSON (only what routing needs)."""
    source = raw.get("source") or {}
    message = raw.get("message") or {}
    context = raw.get("deliveryContext") or {}
    kind = _LENIENT.get(str(raw.get("type")), Kind.OTHER)
    return ResidentEvent(
        event_id=str(raw.get("webhookEventId", "")), user_id=source.get("userId"),
        kind=kind, timestamp_ms=int(raw.get("timestamp", 0)),
        reply_token=raw.get("replyToken"), redelivery=bool(context.get("isRedelivery")),
        subtype=str(message.get("type") or raw.get("type", ""))[:32],
    )  # fmt: skip
