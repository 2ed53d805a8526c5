"""Every error the API returns has one shape: `{"error": {"code", "message", ...}}`.

Clients branch on `code` (machine-readable, stable), never on `message` (for humans).
`ServerError`s map to their own status and code; request validation to 422 `invalid` with
the offending field; unknown paths to 404 `not_found`; a body that is not JSON to 415
`unsupported_media_type`; any other exception, a bug, to 500 `internal_error` with its
traceback logged. Routes declare theirs in the OpenAPI with `documented(...)`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.schemas import ErrorOut
from server.db.session import OUTAGES, is_outage
from server.errors import Invalid, RateLimited, ServerError

log = logging.getLogger(__name__)

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 422: "invalid", 429: "rate_limited"}  # fmt: skip


ANSWERS = {
    400: "the body could not be read (not UTF-8)",
    401: "no valid operator bearer token (or, for a booking, no verified identity)",
    403: "the credentials do not allow it (`forbidden`): a viewer's write, another"
    " municipality's thing, another resident's booking",
    404: "no such resource (`not_found`)",
    409: "refused by the current state; `code` says why",
    413: "request body too large",
    415: "the body is not `application/json`",
    422: "invalid request (`invalid`): `field` names the first offending one",
    429: "too many requests (`rate_limited`); retry after `Retry-After`",
    503: "the database is unavailable (`database_unavailable`); retry after `Retry-After`",
}
"""What each error status means, as the OpenAPI describes it."""


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error statuses it answers, each with the error body."""
    return {status: {"model": ErrorOut, "description": ANSWERS[status]} for status in statuses}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


TOO_LARGE: Final = error_body("too_large", "request body too large")


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """A request's whole body from ASGI middleware; None once it passes `limit` bytes."""
    chunks = []
    size, more = 0, True
    while more:
        event = await receive()
        chunk = event.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = event.get("more_body", False)
    return b"".join(chunks)


async def send_json(
    send: Send,
    status: int,
    body: bytes | dict[str, Any],
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """A whole JSON response from ASGI middleware (which answers before any route runs)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(content)).encode()),
        *headers,
    ]})  # fmt: skip
    await send({"type": "http.response.body", "body": content})


async def on_server_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServerError)
    if exc.status >= 500:
        log.error("server error %s: %s", exc.code, exc.message)
    extra = {"field": exc.field} if isinstance(exc, Invalid) and exc.field else {}
    return JSONResponse(error_body(exc.code, exc.message, **extra), exc.status,
                        headers=refusal_headers(exc))  # fmt: skip


def refusal_headers(exc: ServerError) -> dict[str, str]:
    """401 names the scheme; 429 says when to try again."""
    if exc.status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, RateLimited):
        return {"Retry-After": str(exc.retry_after_s)}
    return {}


RETRY_AFTER_S = 5
UNAVAILABLE = error_body(
    "database_unavailable", f"the database is unavailable; try again in {RETRY_AFTER_S} s"
)


def database_unavailable(exc: BaseException) -> None:
    """Log an outage once per request, briefly: it is the database's state, not our bug."""
    log.warning("request refused, database unavailable: %s", type(exc).__name__)


async def send_refusal(send: Send, exc: Exception) -> None:
    """An ASGI lane's answer to what its work raised: a ServerError's own status and code,
    503 `database_unavailable` for an outage; anything else is re-raised (a bug: the
    app's `ErrorsAsJson` answers it 500)."""
    if isinstance(exc, ServerError):
        headers = [(k.lower().encode(), v.encode()) for k, v in refusal_headers(exc).items()]
        await send_json(send, exc.status, error_body(exc.code, exc.message), headers)
        return
    if not is_outage(exc):
        raise exc
    database_unavailable(exc)
    await send_json(send, 503, UNAVAILABLE, [(b"retry-after", str(RETRY_AFTER_S).encode())])


async def on_database_error(_request: Request, exc: Exception) -> JSONResponse:
    """503 `database_unavailable` (with Retry-After) for an outage; anything else is a bug."""
    if not is_outage(exc):
        raise exc
    database_unavailable(exc)
    return JSONResponse(UNAVAILABLE, 503, headers={"Retry-After": str(RETRY_AFTER_S)})


def invalid_body(errors: Sequence[Any]) -> dict[str, Any]:
    """422 `invalid` naming the first offending field (pydantic's error list)."""
    first = errors[0] if errors else {}
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
    field = ".".join(location) or None
    message = f"{field}: {first.get('msg', 'invalid')}" if field else "invalid request"
    return error_body("invalid", message, field=field)


async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(invalid_body(exc.errors()), 422)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request.app, request.url.path)
    return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers or None)


def allowed_methods(app: FastAPI, path: str) -> str:
    """Every method the OpenAPI lists for this path (Starlette's 405 names only those of the
    first route matching it, and GET /stations and POST /stations live in two routers)."""
    methods = {
        method.upper()
        for template, operations in app.openapi()["paths"].items()
        if compile_path(template)[0].match(path)
        for method in operations
    }
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


INTERNAL = error_body("internal_error", "internal server error; it has been logged")


class ErrorsAsJson:
    """ASGI middleware, outermost: an exception no handler took (a bug) is logged with its
    traceback and answered 500 `internal_error` in the error body, never as plain text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:
                raise
            await send_json(send, 500, INTERNAL)


def is_json(content_type: str | None) -> bool:
    """`application/json` or `application/*+json`, any parameters (charset)."""
    media = (content_type or "").partition(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def json_body(request: Request) -> None:
    """A dependency of every API route: a body sent to a route that takes JSON must say
    `Content-Type: application/json` (415 otherwise). The CSV import declares its own type;
    a request without a body needs none. The booking lane applies the same `is_json`."""
    route = request.scope.get("route")
    field = getattr(route, "body_field", None)
    declared = getattr(getattr(field, "field_info", None), "media_type", None)
    content_type = request.headers.get("content-type")
    if is_json(declared) and not is_json(content_type) and await request.body():
        raise HTTPException(415, unsupported(content_type))


def unsupported(content_type: str | None) -> str:
    return f"the body must be application/json, not {(content_type or 'untyped')[:100]}"


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServerError, on_server_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    for outage in (*OUTAGES, DBAPIError):
        app.add_exception_handler(outage, on_database_error)
