"""Every error the API returns has one shape: `{"error": {"code", "message", ...}}`.

Clients branch on `code` (machine-readable, stable), never on `message` (for humans).
`ServerError`s map to their own status and code; request validation to 422 `invalid` with
the offending field; unknown paths to 404 `not_found`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from server.db.session import OUTAGES, is_outage
from server.errors import ServerError

log = logging.getLogger(__name__)

HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 409: "conflict", 413: "too_large",
              415: "unsupported_media_type", 422: "invalid", 429: "rate_limited"}  # fmt: skip


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


async def on_server_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServerError)
    if exc.status >= 500:
        log.error("server error %s: %s", exc.code, exc.message)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(error_body(exc.code, exc.message), exc.status, headers=headers)


RETRY_AFTER_S = 5
UNAVAILABLE = error_body(
    "database_unavailable", f"the database is unavailable; try again in {RETRY_AFTER_S} s"
)


def database_unavailable(exc: BaseException) -> None:
    """Log an outage once per request, briefly: it is the database's state, not our bug."""
    log.warning("request refused, database unavailable: %s", type(exc).__name__)


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


async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "error")
    return JSONResponse(
        error_body(code, str(exc.detail)), exc.status_code, headers=exc.headers or None
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServerError, on_server_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    for outage in (*OUTAGES, DBAPIError):
        app.add_exception_handler(outage, on_database_error)
