"""Public booking routes: book a window, look a booking up, cancel it.

The booking id is the resident's handle (unguessable); the service guarantees one active
booking per resident and never overbooks. Every change is pushed to the dashboards.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api import schemas
from server.api.deps import Services, Svc
from server.api.errors import (
    TOO_LARGE,
    documented,
    error_body,
    invalid_body,
    is_json,
    read_body,
    send_json,
    send_refusal,
    unsupported,
)
from server.api.identity import Client, booking_client

router = APIRouter(tags=["bookings"], responses=documented(422, 503))


def _out(booking: Any) -> schemas.BookingOut:
    return schemas.BookingOut.model_validate(booking)


def _announce(svc: Services, booking: schemas.BookingOut, what: str) -> None:
    svc.hub.publish(
        {"type": "booking", "what": what, "stations": [booking.station_id],
         "window_start": booking.window_start.isoformat()}
    )  # fmt: skip


@router.post(
    "/bookings", response_model=schemas.BookingOut, status_code=201,
    responses=documented(400, 401, 403, 404, 409, 413, 415, 429),
)  # fmt: skip
async def book(
    request: schemas.BookingRequest, svc: Svc, client: Annotated[Client, Depends(booking_client)]
) -> schemas.BookingOut:
    """Book a port at a station for a window; 409 when full or already booked.

    The request carries a verified identity (`server.api.identity`): a LINE Login ID token,
    a partner's API key or the desk's bearer token; 401 without, 403 for a resident the
    credentials do not vouch for, 429 beyond the rate limits.

    Served by `BookingLane` in the app; this route documents it (and serves an app
    built without the lane).
    """
    return await _book(svc, request, client)


async def _book(
    svc: Services, request: schemas.BookingRequest, client: Client
) -> schemas.BookingOut:
    svc.identities.vouch(client, request.resident_id)
    booking = _out(
        await svc.booking.book(
            request.resident_id, request.station_id, request.window_start, request.origin()
        )
    )
    _announce(svc, booking, "booked")
    return booking


@router.get("/bookings/{booking_id}", response_model=schemas.BookingOut, responses=documented(404))
async def get_booking(booking_id: schemas.Id, svc: Svc) -> schemas.BookingOut:
    return _out(await svc.booking.get(booking_id))


@router.delete(
    "/bookings/{booking_id}", response_model=schemas.BookingOut, responses=documented(404, 409)
)
async def cancel_booking(booking_id: schemas.Id, svc: Svc) -> schemas.BookingOut:
    """Cancel; the place goes back to the window at once."""
    booking = _out(await svc.booking.cancel(booking_id))
    _announce(svc, booking, "cancelled")
    return booking


class BookingLane:
    """ASGI middleware: `POST /api/v1/bookings` straight to the booking service.

    A booking burst is thousands of these per second on a 2-core machine, and FastAPI's
    routing, dependency solving and middleware cost more CPU per request than the
    booking itself. The lane answers exactly as the route above does (same validation
    model, same body, same error shape and codes); every other request, and the OpenAPI
    description of this one, goes through the app as usual.
    """

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, MAX_BODY)
        if body is None:
            await send_json(send, 413, TOO_LARGE)
            return
        services = scope["app"].state.services
        headers = Headers(scope=scope)
        try:  # who asks, before what they ask is looked at
            client = await services.identities.authenticate(headers)
        except Exception as exc:
            await send_refusal(send, exc)
            return
        content_type = headers.get("content-type", "")
        if body and not is_json(content_type):
            refusal = error_body("unsupported_media_type", unsupported(content_type))
            await send_json(send, 415, refusal)
            return
        try:
            request = schemas.BookingRequest.model_validate_json(body)
        except ValidationError as exc:
            await send_json(send, 422, invalid_body(exc.errors()))
            return
        try:
            booking = await _book(services, request, client)
        except Exception as exc:
            await send_refusal(send, exc)
            return
        await send_json(send, 201, booking.model_dump_json().encode())


MAX_BODY = 16_384
"""A booking request is ~150 bytes."""
