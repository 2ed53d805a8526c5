"""Stations out of sight: bookings held there, moved only after `offline_move_after_s`,
restored when the station comes back while their window is still ahead."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from server.db.models import Booking, Notification, Unit
from server.errors import Conflict
from server.ingest.changeset import ChangeSet, GatewayChange
from tests.server.booking_shell.world import (
    W1,
    W2,
    Clock,
    StationSpec,
    displays,
    load,
    open_world,
    set_gateway,
)

A = StationSpec("A", 33.840, 132.770, ports=2)
NEAR = StationSpec("N", 33.845, 132.775, ports=2)
FAR = StationSpec("F", 34.300, 133.300, ports=2)
"""Some 65 km away: beyond walking reach, so never a move target for A."""


def gateway(station: str, state: str, at: object) -> ChangeSet:
    change = GatewayChange(gw_id=f"gw-{station}", state=state, at=at)  # type: ignore[arg-type]
    return ChangeSet(gateways=(change,), station_ids=frozenset({station}))


async def told(db: object) -> list[tuple[str, str, str | None]]:
    async with db.transaction() as session:  # type: ignore[attr-defined]
        rows = await session.scalars(select(Notification).order_by(Notification.id))
        return [(n.kind, n.resident_id, n.payload.get("reason")) for n in rows]


async def held_since(db: object, booking_id: str) -> object:
    async with db.transaction() as session:  # type: ignore[attr-defined]
        return await session.scalar(select(Booking.held_since).where(Booking.id == booking_id))


def test_a_station_out_of_sight_holds_its_bookings_and_tells_the_crew(database_url: str) -> None:
    """The Last Will of a broker restart: nobody is moved or told, the crew is; no new
    booking goes to ports we cannot see; back in sight, the hold ends."""

    async def scenario() -> None:
        clock = Clock()
        db, service, _units = await open_world(database_url, [A, NEAR], clock)
        try:
            soon = await service.book("r1", "A", W1)
            later = await service.book("r2", "A", W2)
            await set_gateway(db, "A", "offline")
            await service.on_changes(gateway("A", "offline", clock()))
            clock.now += timedelta(minutes=10)
            assert await service.relocate_due() == []
            for booking in (soon, later):
                kept = await service.get(booking.id)
                assert (kept.status, kept.station_id, kept.port) == ("active", "A", booking.port)
                assert await held_since(db, booking.id) is not None
            assert await told(db) == [("bookings_held", "crew", "port_offline")]
            with pytest.raises(Conflict) as refused:
                await service.book("r3", "A", W2)
            assert refused.value.code == "window_full"
            assert (await service.book("r3", "N", W2)).station_id == "N"
            no_check_in_seen = W1 + timedelta(minutes=11)
            assert await service.release_no_shows(no_check_in_seen) == []  # it could not be

            await set_gateway(db, "A", "online")
            await service.on_changes(gateway("A", "online", clock()))
            assert await held_since(db, soon.id) is None
            assert await held_since(db, later.id) is None
            assert len(await told(db)) == 1
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_bookings_out_of_sight_too_long_are_released_and_restored_when_it_returns(
    database_url: str,
) -> None:
    """After `offline_move_after_s` the bookings move (here: nowhere within reach, so
    cancelled, reason port_offline); when the station comes back in time they are restored,
    unless the resident booked elsewhere meanwhile."""

    async def scenario() -> None:
        clock = Clock()
        db, service, _units = await open_world(
            database_url, [A, FAR], clock, offline_move_after_s=600
        )
        try:
            r1 = await service.book("r1", "A", W1)
            r2 = await service.book("r2", "A", W2)
            await set_gateway(db, "A", "offline")
            await service.on_changes(gateway("A", "offline", clock()))
            clock.now += timedelta(seconds=599)
            assert await service.relocate_due() == []
            clock.now += timedelta(seconds=1)
            assert sorted(await service.relocate_due()) == sorted([r1.id, r2.id])
            for booking in (r1, r2):
                assert (await service.get(booking.id)).status == "cancelled"
            assert await told(db) == [
                ("bookings_held", "crew", "port_offline"),
                ("booking_cancelled", "r1", "port_offline"),
                ("booking_cancelled", "r2", "port_offline"),
            ]
            assert (await load(db, "A", W1), await load(db, "A", W2)) == (0, 0)
            elsewhere = await service.book("r2", "F", W2)

            clock.now += timedelta(minutes=5)
            await set_gateway(db, "A", "online")
            await service.on_changes(gateway("A", "online", clock()))
            back = await service.get(r1.id)
            assert (back.status, back.station_id, back.window_start) == ("active", "A", W1)
            assert (back.ticket_code, back.port) == (r1.ticket_code, r1.port)
            assert (await service.get(r2.id)).status == "cancelled"
            assert (await service.active_for_resident("r2")) == await service.get(elsewhere.id)
            assert (await told(db))[-1] == ("booking_restored", "r1", "station_back")
            assert await load(db, "A", W1) == 1
            assert (await displays(db))[-1] == (r1.port, r1.ticket_code)
            assert await service.relocate_due() == []  # restored once, and held no longer
            assert [k for k, *_ in await told(db)].count("booking_restored") == 1
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_a_release_is_restored_by_the_sweep_only_while_capacity_allows(database_url: str) -> None:
    """The station comes back with energy for one phone: the sooner booking is restored,
    the later stays cancelled; the periodic sweep does it (no ChangeSet needed, as after a
    restart)."""
    lone = StationSpec("L", 33.840, 132.770, ports=1)

    async def scenario() -> None:
        clock = Clock()
        db, service, _units = await open_world(database_url, [lone], clock, offline_move_after_s=0)
        try:
            first = await service.book("r1", "L", W1)
            second = await service.book("r2", "L", W2)
            await set_gateway(db, "L", "offline")
            await service.on_changes(gateway("L", "offline", clock()))
            assert (await service.get(first.id)).status == "cancelled"
            assert (await service.get(second.id)).status == "cancelled"
            async with db.transaction() as session:  # 20 Wh left: one phone's worth
                await session.execute(update(Unit).values(soc_pct=2.0))
            await set_gateway(db, "L", "online")
            assert await service.relocate_due() == []
            assert (await service.get(first.id)).status == "active"
            assert (await service.get(second.id)).status == "cancelled"
            assert (await load(db, "L", W1), await load(db, "L", W2)) == (1, 0)
            assert [k for k, *_ in await told(db)].count("booking_restored") == 1
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())
