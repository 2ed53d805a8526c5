"""POST /line/webhook: LINE's events, verified, stored, answered 200, processed after.

LINE signs each request (`X-Line-Signature`: base64 HMAC-SHA256 of the raw body with the
channel secret); line-bot-sdk's `WebhookParser` checks it in constant time and parses the
body. A bad or missing signature is a 401, and so is every request while no channel secret
is set. `{"events": []}` (the console's "Verify" button) is a 200. The events are stored
in `line_events` by `webhookEventId` before the 200 (a redelivery, or a retry of a request
whose answer got lost, is stored once and processed once) and processed by the bot after
it: the answer never waits for a booking.

Speed: a burst of residents is hundreds of webhooks a second on a 2-core machine, and
FastAPI's routing and dependency solving cost more CPU than verifying and storing one
event. `WebhookLane` (ASGI middleware) answers the webhook directly, exactly as the route
below does; the route documents it in the OpenAPI and serves an app built without the lane.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.deps import Services, Svc
from server.api.errors import (
    TOO_LARGE,
    documented,
    read_body,
    send_json,
    send_refusal,
)
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


async def answer(services: Services, body: bytes, signature: str) -> dict[str, Any]:
    """Verify and store; the 200's body. Raises ServerError (401, 422) or the store's error."""
    secret = services.settings.line_channel_secret.get_secret_value()
    events = verified_events(secret, body, signature)
    if events:
        await services.line_bot.accept(events)
    return {}


@router.post(WEBHOOK_PATH, status_code=200, responses=documented(401, 413, 422, 503))
async def webhook(request: Request, svc: Svc) -> Response:
    """LINE's webhook: 200 once the events are stored; they are processed after.

    Served by `WebhookLane` in the app; this route documents it.
    """
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse(TOO_LARGE, 413)
    return JSONResponse(await answer(svc, body, request.headers.get("x-line-signature", "")))


class WebhookLane:
    """ASGI middleware: `POST /line/webhook` straight to `answer`, past FastAPI's routing."""

    def __init__(self, app: ASGIApp, path: str = WEBHOOK_PATH) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        raw = await read_body(receive, MAX_BODY)
        if raw is None:
            await send_json(send, 413, TOO_LARGE)
            return
        signature = dict(scope["headers"]).get(b"x-line-signature", b"").decode("latin-1")
        try:
            body = await answer(scope["app"].state.services, raw, signature)
        except Exception as exc:
            await send_refusal(send, exc)
            return
        await send_json(send, 200, body)
