"""Reminders: once, `reminder_before_min` before the window, only for bookings still active."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from server.api.app import create_app
from server.booking.moves import NOTIFY_REMINDER
from server.db.models import Booking, LineResident, Notification, OutboxMessage
from server.line.reminders import due, remind
from tests.conditions import async_read_until
from tests.server.booking_shell.world import (
    T0,
    W1,
    W2,
    Clock,
    StationSpec,
    open_world,
    seed,
    settings,
)

A = StationSpec("A", 33.840, 132.770, ports=4)
LEAD = timedelta(minutes=10)


def test_due_within_the_lead_and_not_for_a_booking_made_inside_it() -> None:
    booked = W1 - timedelta(hours=1)
    assert not due(booked, W1, W1 - LEAD - timedelta(seconds=1), LEAD)
    assert due(booked, W1, W1 - LEAD, LEAD)
    assert due(booked, W1, W1 - timedelta(seconds=1), LEAD)
    assert not due(booked, W1, W1, LEAD)  # the window has started: too late
    assert not due(W1 - timedelta(minutes=4), W1, W1 - timedelta(minutes=3), LEAD)


def test_a_reminder_once_at_the_right_time_and_never_for_a_cancelled_one(
    database_url: str,
) -> None:
    async def scenario() -> None:
        clock = Clock(T0)  # 25 minutes before W1
        db, service, _units = await open_world(database_url, [A], clock)
        try:
            kept = await service.book("line:Ukept", "A", W1)
            dropped = await service.book("line:Udropped", "A", W1)
            later = await service.book("api:later", "A", W2)
            await service.cancel(dropped.id)
            config = settings(database_url)
            assert config.reminder_before_min == 10
            assert await remind(db, config, W1 - LEAD - timedelta(seconds=1)) == []
            both = await asyncio.gather(remind(db, config, W1 - LEAD),
                                        remind(db, config, W1 - LEAD))  # fmt: skip
            assert sorted(both) == [[], [kept.id]]  # two processes' timers at once: one
            assert await remind(db, config, W1 - timedelta(minutes=2)) == []
            assert await remind(db, config, W2 - LEAD) == [later.id]
            async with db.transaction() as session:
                rows = list(await session.scalars(select(Notification).order_by(Notification.id)))
                reminded_at = await session.scalar(
                    select(Booking.reminded_at).where(Booking.id == kept.id))  # fmt: skip
            assert [(n.kind, n.booking_id) for n in rows] == [
                (NOTIFY_REMINDER, kept.id), (NOTIFY_REMINDER, later.id)]  # fmt: skip
            assert rows[0].payload["ticket_code"] == kept.ticket_code
            assert reminded_at == W1 - LEAD
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_the_app_timers_remind_and_the_resident_is_pushed_it_once(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock(T0)
        app = create_app(settings(database_url), clock)
        async with app.router.lifespan_context(app):
            services = app.state.services
            await seed(services.db, [A], T0)
            async with services.db.transaction() as session:
                session.add(LineResident(user_id="U5", language="en", following=True,
                                         step_data={}, created_at=T0, updated_at=T0))  # fmt: skip
            booking = await services.booking.book("line:U5", "A", W1)

            async def pushes() -> list[OutboxMessage]:
                async with services.db.transaction() as session:
                    return list(await session.scalars(select(OutboxMessage)))

            clock.now = W1 - LEAD
            await app.state.timers()
            [push] = await async_read_until(pushes, bool, what="the reminder's push")
            assert push.target == "U5" and push.source.startswith("notification:")
            assert push.body[0]["text"] == (
                f"Your window starts soon: A 09:30–10:00, code {booking.ticket_code}. "
                "Please bring your charging cable."
            )
            clock.now = W1 - timedelta(minutes=5)
            await app.state.timers()
            async with services.db.transaction() as session:
                told = list(await session.scalars(select(Notification)))
            assert [(n.kind, n.delivered_at) for n in told] == [(NOTIFY_REMINDER, W1 - LEAD)]
            assert len(await pushes()) == 1

    asyncio.run(scenario())
