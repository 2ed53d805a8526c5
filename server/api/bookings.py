"""Public booking routes: book a window, look a booking up, cancel it.

The booking id is the resident's handle (unguessable); the service guarantees one active
booking per resident and never overbooks. Every change is pushed to the dashboards.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.api import schemas
from server.api.deps import Services, Svc

router = APIRouter(tags=["bookings"])


def _out(booking: Any) -> schemas.BookingOut:
    return schemas.BookingOut.model_validate(booking)


def _announce(svc: Services, booking: schemas.BookingOut, what: str) -> None:
    svc.hub.publish(
        {"type": "booking", "what": what, "stations": [booking.station_id],
         "window_start": booking.window_start.isoformat()}
    )  # fmt: skip


@router.post("/bookings", response_model=schemas.BookingOut, status_code=201)
async def book(request: schemas.BookingRequest, svc: Svc) -> schemas.BookingOut:
    """Book a port at a station for a window; 409 when full or already booked."""
    booking = _out(
        await svc.booking.book(request.resident_id, request.station_id, request.window_start)
    )
    _announce(svc, booking, "booked")
    return booking


@router.get("/bookings/{booking_id}", response_model=schemas.BookingOut)
async def get_booking(booking_id: str, svc: Svc) -> schemas.BookingOut:
    return _out(await svc.booking.get(booking_id))


@router.delete("/bookings/{booking_id}", response_model=schemas.BookingOut)
async def cancel_booking(booking_id: str, svc: Svc) -> schemas.BookingOut:
    """Cancel; the place goes back to the window at once."""
    booking = _out(await svc.booking.cancel(booking_id))
    _announce(svc, booking, "cancelled")
    return booking
