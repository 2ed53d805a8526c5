"""What the port says of a booked phone is told to its resident: check-in and completion."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select

from server.booking.moves import NOTIFY_CHECKED_IN, NOTIFY_COMPLETED
from server.db.models import Notification
from server.ingest.changeset import ChangeSet, PortChange
from server.ingest.live import OFFLINE
from tests.server.booking_shell.world import W1, Clock, StationSpec, open_world

A = StationSpec("A", 33.840, 132.770, ports=2)


def occupancy(unit_pk: int, port: int, at: datetime, before: bool, after: bool,
              status: str = "charging") -> ChangeSet:  # fmt: skip
    change = PortChange(unit_pk=unit_pk, station_id="A", gw_id="gw-A", unit="rs485-1.1",
                        port=port, before_status="charging" if before else "available",
                        after_status=status, before_occupied=before, after_occupied=after,
                        error="none", at=at)  # fmt: skip
    return ChangeSet(ports=(change,), station_ids=frozenset({"A"}))


async def told(db: object) -> list[tuple[str, str | None, str | None]]:
    async with db.transaction() as session:  # type: ignore[attr-defined]
        rows = await session.scalars(select(Notification).order_by(Notification.id))
        return [(n.kind, n.booking_id, n.payload.get("ended")) for n in rows]


def test_plugging_in_checks_in_and_unplugging_completes_each_told_once(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [A], clock)
        try:
            booking = await service.book("r1", "A", W1)
            pk, port = units["A"], booking.port
            in_window = W1 + timedelta(minutes=2)
            await service.on_changes(occupancy(pk, port, in_window, False, True))
            await service.on_changes(occupancy(pk, port, in_window, False, True))  # a repeat
            assert (await service.get(booking.id)).status == "checked_in"
            assert await told(db) == [(NOTIFY_CHECKED_IN, booking.id, None)]
            # out of sight is not an unplug, even if the port's last word said no phone
            await service.on_changes(occupancy(pk, port, in_window, True, False, status=OFFLINE))
            assert (await service.get(booking.id)).status == "checked_in"
            unplugged = W1 + timedelta(minutes=25)
            await service.on_changes(occupancy(pk, port, unplugged, True, False, "available"))
            assert (await service.get(booking.id)).status == "completed"
            assert await service.active_for_resident("r1") is None  # may book again
            await service.release_no_shows(W1 + timedelta(minutes=31))  # no second thanks
            assert await told(db) == [
                (NOTIFY_CHECKED_IN, booking.id, None),
                (NOTIFY_COMPLETED, booking.id, "unplugged"),
            ]
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_a_phone_still_plugged_when_the_window_ends_completes_then(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [A], clock)
        try:
            came = await service.book("r1", "A", W1)
            other = await service.book("r2", "A", W1)
            await service.on_changes(occupancy(units["A"], came.port, W1, False, True))
            # the other port's phone leaves: nobody was checked in there, nothing is told
            await service.on_changes(occupancy(units["A"], other.port, W1, True, False))
            await service.release_no_shows(W1 + timedelta(minutes=20))
            assert [k for k, _b, _e in await told(db)] == [NOTIFY_CHECKED_IN]
            await service.release_no_shows(W1 + timedelta(minutes=31))
            await service.release_no_shows(W1 + timedelta(minutes=45))
            assert (await told(db))[1:] == [(NOTIFY_COMPLETED, came.id, "window_over")]
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())
