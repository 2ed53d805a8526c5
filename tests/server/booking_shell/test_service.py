"""BookingService on real SQLite and PostgreSQL: book, get, cancel, the rules it enforces."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from server.db.models import Booking
from server.errors import Conflict, Invalid, NotFound
from tests.server.booking_shell.world import (
    T0,
    W1,
    W2,
    Clock,
    StationSpec,
    displays,
    load,
    open_world,
)

A = StationSpec("A", 33.84, 132.77, ports=2)


def test_book_get_cancel_and_the_display(database_url: str) -> None:
    async def scenario() -> None:
        db, service, units = await open_world(database_url, [A], Clock())
        try:
            booking = await service.book("r1", "A", W1)
            assert (booking.station_id, booking.window_start, booking.status) == ("A", W1, "active")
            assert (booking.unit_pk, booking.port) == (units["A"], 1)
            assert booking.window_end == W1 + timedelta(minutes=30)
            assert len(booking.ticket_code) == 4
            assert await service.get(booking.id) == booking
            assert await service.active_for_resident("r1") == booking
            assert await load(db, "A", W1) == 1
            assert await displays(db) == [(1, booking.ticket_code)]

            cancelled = await service.cancel(booking.id)
            assert cancelled.status == "cancelled"
            assert await service.cancel(booking.id) == cancelled  # idempotent
            assert await load(db, "A", W1) == 0
            assert sorted(await displays(db)) == [(1, ""), (1, booking.ticket_code)]
            assert await service.active_for_resident("r1") is None
            again = await service.book("r1", "A", W1)  # the place and the resident are free
            assert again.port == 1
            with pytest.raises(NotFound):
                await service.get("nope")
            with pytest.raises(NotFound):
                await service.cancel("nope")
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_one_active_booking_per_resident_and_full_windows(database_url: str) -> None:
    async def scenario() -> None:
        db, service, _units = await open_world(database_url, [A], Clock())
        try:
            await service.book("r1", "A", W1)
            with pytest.raises(Conflict) as already:
                await service.book("r1", "A", W2)
            assert already.value.code == "already_booked"
            await service.book("r2", "A", W1)
            with pytest.raises(Conflict) as full:
                await service.book("r3", "A", W1)
            assert full.value.code == "window_full"
            assert (await service.book("r3", "A", W2)).window_start == W2
            assert await load(db, "A", W1) == 2
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_energy_bounds_the_whole_station(database_url: str) -> None:
    """30 Wh left at 15 Wh a phone: two phones, whatever the windows."""
    low = StationSpec("L", 33.84, 132.77, ports=4, soc_pct=3.0, rated_wh=1000.0)

    async def scenario() -> None:
        db, service, _units = await open_world(database_url, [low], Clock())
        try:
            await service.book("r1", "L", W1)
            await service.book("r2", "L", W2)
            with pytest.raises(Conflict) as full:
                await service.book("r3", "L", W2 + timedelta(minutes=30))
            assert full.value.code == "window_full"
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_invalid_windows_and_unknown_stations(database_url: str) -> None:
    day = StationSpec("D", 33.84, 132.77, opens_at="08:00", closes_at="20:00")

    async def scenario() -> None:
        db, service, _units = await open_world(database_url, [A, day], Clock())
        try:
            for bad in (
                W1 + timedelta(minutes=10),  # not on the slot grid
                W1 - timedelta(minutes=30),  # started before now (T0 is 00:05 UTC)
                W1 + timedelta(hours=13),  # beyond the 12-hour horizon
                W1.replace(tzinfo=None),  # no time zone
            ):
                with pytest.raises(Invalid):
                    await service.book("r1", "A", bad)
            with pytest.raises(Invalid):  # 20:30 JST: the station is closed
                await service.book("r1", "D", T0.replace(hour=11, minute=30))
            with pytest.raises(NotFound):
                await service.book("r1", "nowhere", W1)
            assert await service.active_for_resident("r1") is None
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_options_rank_nearby_free_windows_and_skip_full_ones(database_url: str) -> None:
    near = StationSpec("N", 33.840, 132.770, ports=1)
    far = StationSpec("F", 33.850, 132.780, ports=1)

    async def scenario() -> None:
        db, service, _units = await open_world(database_url, [near, far], Clock())
        try:
            first = await service.options(33.840, 132.770, T0, limit=3)
            assert first[0].station_id == "N"
            assert first[0].window_start == W1
            await service.book("r1", "N", W1)
            after = await service.options(33.840, 132.770, T0, limit=3)
            assert ("N", W1) not in {(o.station_id, o.window_start) for o in after}
            assert all(o.cost == pytest.approx(2 * o.walk_min + o.wait_min) for o in after)
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_booking_rows_carry_the_ticket_code(database_url: str) -> None:
    async def scenario() -> None:
        db, service, _units = await open_world(database_url, [A], Clock())
        try:
            booking = await service.book("r1", "A", W1)
            async with db.transaction() as session:
                row = await session.get(Booking, booking.id)
            assert row is not None and row.ticket_code == booking.ticket_code
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())
