"""`BodyLimit`: no request body past a bound is read, on any route.

FastAPI reads a route's body before its dependencies run, so without this an anonymous
client could make the server buffer gigabytes before the bearer check answers 401. The
booking lane and the webhooks keep their own, tighter limits; this is the floor under
everything else (operator, registry and incident routes, the CSV import).
"""

from __future__ import annotations

from contextlib import suppress
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.errors import TOO_LARGE, send_json

MAX_BODY: Final = 2_000_000
"""A prefecture's station CSV (2,000 rows) is ~200 KB; no JSON body comes near this."""


class _TooLarge(Exception):
    """Raised from `receive` once the body passes the limit: the route stops reading."""


class BodyLimit:
    """ASGI middleware: 413 when `Content-Length` says too much (nothing read), or once a
    streamed body passes the limit (read up to the limit, then refused)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:  # the HTTP server checked its form
            await send_json(send, 413, TOO_LARGE)
            return
        size, exceeded, started = 0, False, False

        async def receiving() -> Message:
            nonlocal size, exceeded
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.limit:
                exceeded = True
                raise _TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            if not exceeded:  # else the route's answer to the cut body (FastAPI says 400)
                started = started or message["type"] == "http.response.start"
                await send(message)

        with suppress(_TooLarge):
            await self.app(scope, receiving, sending)
        if exceeded and not started:  # a route answering while it reads has answered
            await send_json(send, 413, TOO_LARGE)
