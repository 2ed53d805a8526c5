"""Reminders: a resident hears of their booking `reminder_before_min` before its window.

A job of the app's timers: each active booking whose window starts within that lead and
that was not reminded yet gets a `booking_reminder` notification and `reminded_at`, in one
transaction, so it is reminded once however many server processes run the job (PostgreSQL:
the rows are claimed with SKIP LOCKED; SQLite: the write lock taken at BEGIN).
`server.line.notices` delivers those of LINE residents; the others stay in the API.

A booking made (or moved there) inside the lead is not reminded: its ticket, or the push
that moved it, is the news and only minutes old.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from server.booking.moves import NOTIFY_REMINDER
from server.booking.upkeep import place_of
from server.db.models import Booking, Notification
from server.db.session import Database
from server.settings import Settings


def due(created_at: datetime, window_start: datetime, now: datetime, lead: timedelta) -> bool:
    """Remind now: the window starts within `lead`, and the booking is older than that."""
    return now < window_start <= now + lead and created_at <= window_start - lead


async def remind(db: Database, settings: Settings, now: datetime) -> list[str]:
    """Record a reminder for every booking `due`; the ids reminded."""
    lead = timedelta(minutes=settings.reminder_before_min)
    reminded: list[str] = []
    async with db.transaction() as session:
        rows = await session.scalars(
            select(Booking)
            .where(
                Booking.status == "active",
                Booking.reminded_at.is_(None),
                Booking.window_start > now,
                Booking.window_start <= now + lead,
            )
            .order_by(Booking.window_start, Booking.id)
            .with_for_update(skip_locked=True)
        )
        for row in rows:
            if not due(row.created_at, row.window_start, now, lead):
                continue
            row.reminded_at = now
            session.add(Notification(kind=NOTIFY_REMINDER, resident_id=row.resident_id,
                                     booking_id=row.id, payload=place_of(row),
                                     created_at=now))  # fmt: skip
            reminded.append(row.id)
    return reminded
