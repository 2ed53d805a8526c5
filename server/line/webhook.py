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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.deps import Services, Svc
from server.api.errors import (
    TOO_LARGE,
    documented,
    read_body,
    send_json,
    send_refusal,
)
from server.intake import wire
from server.line.events import verified_events

log = logging.getLogger(__name__)

WEBHOOK_PATH: Final = "/line/webhook"
MAX_BODY: Final = 1_000_000
"""LINE batches events; a request of a few hundred of them is far below this."""

router = APIRouter(tags=["line"])

Answerer = Callable[[Services, bytes, str], Awaitable[dict[str, Any]]]


async def answer(services: Services, body: bytes, signature: str) -> dict[str, Any]:
    """Verify and store; the 200's body. Raises ServerError (401, 422) or the store's error."""
    secret = services.settings.line_channel_secret.get_secret_value()
    events = verified_events(secret, body, signature)
    if events:
        bot = services.line_bot
        await bot.accept(bot.inbox.stamped(events))
    return {}


async def answer_relayed(services: Services, body: bytes, signature: str) -> dict[str, Any]:
    """The intake's hand-on (`server.intake.wire`): verify and store, as `answer` does."""
    secret = services.settings.line_channel_secret.get_secret_value()
    items = wire.verified(secret, body, signature)
    if items:
        await services.line_bot.accept(items)
    return {}


LANES: Final[Mapping[str, tuple[Answerer, bytes]]] = {
    WEBHOOK_PATH: (answer, b"x-line-signature"),
    wire.RELAYED_PATH: (answer_relayed, wire.SIGNATURE_HEADER.encode()),
}
"""Each path the lane answers: its answerer and the header that carries the signature."""


@router.post(WEBHOOK_PATH, status_code=200, responses=documented(401, 413, 422, 503))
async def webhook(request: Request, svc: Svc) -> Response:
    """LINE's webhook: 200 once the events are stored; they are processed after.

    Served by `WebhookLane` in the app; this route documents it.
    """
    return await _served(request, svc, WEBHOOK_PATH)


@router.post(wire.RELAYED_PATH, status_code=200, responses=documented(401, 413, 422, 503))
async def relayed(request: Request, svc: Svc) -> Response:
    """The webhook intake's hand-on of the events it stored (`server.intake`).

    Served by `WebhookLane` in the app; this route documents it.
    """
    return await _served(request, svc, wire.RELAYED_PATH)


async def _served(request: Request, svc: Services, path: str) -> Response:
    answerer, header = LANES[path]
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse(TOO_LARGE, 413)
    return JSONResponse(await answerer(svc, body, request.headers.get(header.decode(), "")))


class WebhookLane:
    """ASGI middleware: `POST` to a path of `LANES` straight to its answerer, past FastAPI's
    routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = LANES.get(scope["path"]) if scope["type"] == "http" else None
        if lane is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        raw = await read_body(receive, MAX_BODY)
        if raw is None:
            await send_json(send, 413, TOO_LARGE)
            return
        answerer, header = lane
        signature = dict(scope["headers"]).get(header, b"").decode("latin-1")
        try:
            body = await answerer(scope["app"].state.services, raw, signature)
        except Exception as exc:
            await send_refusal(send, exc)
            return
        await send_json(send, 200, body)
