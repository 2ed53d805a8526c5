"""Webhooks as LINE sends them when a resident acts in the chat.

One event per webhook: `{"destination": <bot user id>, "events": [event]}`, the event with
`type`, `mode` "active", `timestamp` (ms), `source` `{"type": "user", "userId"}`,
`webhookEventId` (a ULID), `deliveryContext.isRedelivery`, a `replyToken` (not on unfollow)
and its `message` (text, location, sticker, image), `postback` or `follow`. The raw body is
compact UTF-8 JSON, signed: `X-Line-Signature` is the base64 HMAC-SHA256 of it with the
channel secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

WEBHOOK_TIMEOUT_S: Final = 10.0
"""How long the stand-in waits for the bot's server to answer a webhook."""
CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    language: Literal["ja", "en"] | None = None
    """The resident's LINE language, which the profile then reports."""
    display_name: str | None = Field(default=None, alias="displayName", max_length=100)
    """The resident's LINE name, which the profile then reports."""


class Text(_Strict):
    type: Literal["text"]
    text: str = Field(min_length=1, max_length=5000)


class Location(_Strict):
    type: Literal["location"]
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    title: str | None = None
    address: str | None = None


class Postback(_Strict):
    type: Literal["postback"]
    data: str = Field(min_length=1, max_length=300)
    params: dict[str, str] | None = None


class Follow(_Strict):
    type: Literal["follow"]


class Unfollow(_Strict):
    type: Literal["unfollow"]


class Sticker(_Strict):
    type: Literal["sticker"]
    package_id: str = Field(default="11537", alias="packageId")
    sticker_id: str = Field(default="52002734", alias="stickerId")


class Image(_Strict):
    type: Literal["image"]


Action = Annotated[
    Text | Location | Postback | Follow | Unfollow | Sticker | Image, Field(discriminator="type")
]
"""What a resident does in the chat (the control API's `send` body)."""


@dataclass(frozen=True, slots=True)
class Ids:
    """The fresh identifiers one event carries."""

    event_id: str
    reply_token: str | None
    message_id: str
    quote_token: str


def ulid(timestamp_ms: int) -> str:
    """A ULID as `webhookEventId`s are: 26 Crockford base-32 characters, time first."""
    number = (timestamp_ms << 80) | secrets.randbits(80)
    return "".join(CROCKFORD[(number >> (5 * i)) & 31] for i in reversed(range(26)))


def event(
    action: Action, user_id: str, ids: Ids, timestamp_ms: int, unblocked: bool
) -> dict[str, Any]:
    """The webhook event of `action` by `user_id` (`unblocked`: a follow after an unfollow)."""
    found: dict[str, Any] = {
        "type": "message", "mode": "active", "timestamp": timestamp_ms,
        "source": {"type": "user", "userId": user_id}, "webhookEventId": ids.event_id,
        "deliveryContext": {"isRedelivery": False},
    }  # fmt: skip
    if ids.reply_token is not None:
        found["replyToken"] = ids.reply_token
    message: dict[str, Any] = {"id": ids.message_id}
    match action:
        case Text():
            message |= {"type": "text", "quoteToken": ids.quote_token, "text": action.text}
        case Location():
            message |= {"type": "location", "latitude": action.latitude,
                        "longitude": action.longitude}  # fmt: skip
            message |= {
                k: v for k, v in (("title", action.title), ("address", action.address)) if v
            }
        case Sticker():
            message |= {"type": "sticker", "quoteToken": ids.quote_token,
                        "packageId": action.package_id, "stickerId": action.sticker_id,
                        "stickerResourceType": "STATIC", "keywords": []}  # fmt: skip
        case Image():
            message |= {"type": "image", "quoteToken": ids.quote_token,
                        "contentProvider": {"type": "line"}}  # fmt: skip
        case Postback():
            found["type"] = "postback"
            found["postback"] = {
                "data": action.data,
                **({"params": action.params} if action.params else {}),
            }
        case Follow():
            found["type"] = "follow"
            found["follow"] = {"isUnblocked": unblocked}
        case Unfollow():
            found["type"] = "unfollow"
    if found["type"] == "message":
        found["message"] = message
    return found


def redelivered(original: dict[str, Any]) -> dict[str, Any]:
    """The same event again, as the platform redelivers one the server did not take."""
    return {**original, "deliveryContext": {"isRedelivery": True}}


def payload(destination: str, events: list[dict[str, Any]]) -> bytes:
    """The raw body of a webhook."""
    body = {"destination": destination, "events": events}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """`X-Line-Signature` of a raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@dataclass(frozen=True, slots=True)
class Posted:
    """How the bot's server answered: its status, or why there was none."""

    status: int | None
    error: str | None = None


class Webhooks:
    """Posts signed webhooks to the bot's server over one connection pool."""

    def __init__(self, secret: str, timeout_s: float = WEBHOOK_TIMEOUT_S) -> None:
        self._secret = secret
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def post(self, url: str, body: bytes) -> Posted:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "LineBotWebhook/2.0",
            "X-Line-Signature": signature(self._secret, body),
        }
        try:
            answer = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return Posted(None, f"{type(error).__name__}: {error}")
        return Posted(answer.status_code)

    async def aclose(self) -> None:
        await self._client.aclose()
