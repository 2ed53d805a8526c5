"""POST /line/webhook: LINE's events, verified, stored, answered 200, processed after.

LINE signs each request (`X-Line-Signature`: base64 HMAC-SHA256 of the raw body with the
channel secret); line-bot-sdk's `WebhookParser` checks it in constant time and parses the
body. A bad or missing signature is a 401, and so is every request while no channel secret
is set. `{"events": []}` (the console's "Verify" button) is a 200. The events are stored
in `line_events` by `webhookEventId` before the 200 (a redelivery, or a retry of a request
whose answer got lost, is stored once and processed once) and processed by the bot after
it: the answer never waits for a booking.
"""

from __future__ import annotations

import logging
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError

from server.api.deps import Svc
from server.api.errors import documented, error_body
from server.errors import Invalid, Unauthorized
from server.line.events import ResidentEvent, resident_events

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/line/webhook"
MAX_BODY: Final = 1_000_000
"""LINE batches events; a request of a few hundred of them is far below this."""

router = APIRouter(tags=["line"])


def verified_events(secret: str, body: bytes, signature: str) -> list[ResidentEvent]:
    """The events of a request signed with `secret`.

    Raises Unauthorized (bad signature, no secret) or Invalid (not a webhook body).
    """
    if not secret or not signature:
        raise Unauthorized("X-Line-Signature missing or no channel secret set")
    try:
        text = body.decode("utf-8")
        parsed = WebhookParser(secret).parse(text, signature)
    except InvalidSignatureError:
        raise Unauthorized("X-Line-Signature does not match the body") from None
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Invalid(f"not a LINE webhook body ({type(exc).__name__})") from None
    return resident_events(parsed, text)


@router.post(WEBHOOK_PATH, status_code=200, responses=documented(401, 413, 422, 503))
async def webhook(request: Request, svc: Svc) -> Response:
    """LINE's webhook: 200 once the events are stored; they are processed after."""
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse(error_body("too_large", "request body too large"), 413)
    secret = svc.settings.line_channel_secret.get_secret_value()
    events = verified_events(secret, body, request.headers.get("x-line-signature", ""))
    if events:
        await svc.line_bot.accept(events)
    return JSONResponse({}, 200)
