"""Callbacks as LINE WORKS sends them when a crew member presses a button or types.

A message action's press posts its text (else its label) in the talk as the presser and
calls the bot back with a message event whose `content.postback` is the action's data; a
postback action (quick replies) calls back with a postback event and `data`. Each callback
is signed: `X-WORKS-Signature` is the base64 HMAC-SHA256 of the raw body with the bot
secret, beside `X-WORKS-BotId`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Final

import httpx

CALLBACK_TIMEOUT_S: Final = 10.0
"""The platform waits this long for the bot's server before giving up on a callback."""


@dataclass(frozen=True, slots=True)
class Presser:
    """Who acts, and in which talk: a channel, or the 1:1 talk with the bot (None)."""

    user_id: str
    channel_id: str | None
    domain_id: int


def signature(secret: str, body: bytes) -> str:
    """`X-WORKS-Signature` of a raw body."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def source(presser: Presser) -> dict[str, Any]:
    """The event's `source`; a 1:1 talk has no `channelId`."""
    found: dict[str, Any] = {"userId": presser.user_id, "domainId": presser.domain_id}
    if presser.channel_id is not None:
        found["channelId"] = presser.channel_id
    return found


def press_event(action: dict[str, Any], presser: Presser, issued: str) -> dict[str, Any]:
    """The callback of pressing `action` (a message or postback action)."""
    if action["type"] == "postback":
        return {"type": "postback", "source": source(presser), "issuedTime": issued,
                "data": action["data"]}  # fmt: skip
    content = {"type": "text", "text": action.get("text") or action["label"]}
    if action.get("postback") is not None:
        content["postback"] = action["postback"]
    return {"type": "message", "source": source(presser), "issuedTime": issued,
            "content": content}  # fmt: skip


def text_event(text: str, presser: Presser, issued: str) -> dict[str, Any]:
    """The callback of a crew member typing `text` in the talk."""
    return {"type": "message", "source": source(presser), "issuedTime": issued,
            "content": {"type": "text", "text": text}}  # fmt: skip


async def post(url: str, event: dict[str, Any], bot_id: str, secret: str) -> int:
    """Send the signed callback; the bot server's HTTP status (httpx errors propagate)."""
    body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WORKS-Signature": signature(secret, body),
        "X-WORKS-BotId": bot_id,
    }
    async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S) as client:
        response = await client.post(url, content=body, headers=headers)
    return response.status_code
