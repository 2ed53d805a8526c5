"""Moves when capacity falls, check-in seen from the port, no-show release."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import select

from server.booking.service import BookingService
from server.db.models import Notification
from server.ingest.changeset import ChangeSet, PortChange
from tests.server.booking_shell.world import (
    W1,
    W2,
    Clock,
    StationSpec,
    active_bookings,
    displays,
    load,
    open_world,
    set_port,
    settings,
)

A = StationSpec("A", 33.840, 132.770, ports=2)
B = StationSpec("B", 33.845, 132.775, ports=4)


def fault(unit_pk: int, station: str, port: int, at: object, status: str = "faulted") -> ChangeSet:
    change = PortChange(unit_pk=unit_pk, station_id=station, gw_id=f"gw-{station}",
                        unit="rs485-1.1", port=port, before_status="available",
                        after_status=status, before_occupied=False, after_occupied=False,
                        error="over_current", at=at)  # type: ignore[arg-type]  # fmt: skip
    return ChangeSet(ports=(change,), station_ids=frozenset({station}))


def plug(unit_pk: int, station: str, port: int, at: object) -> ChangeSet:
    change = PortChange(unit_pk=unit_pk, station_id=station, gw_id=f"gw-{station}",
                        unit="rs485-1.1", port=port, before_status="available",
                        after_status="charging", before_occupied=False, after_occupied=True,
                        error="none", at=at)  # type: ignore[arg-type]  # fmt: skip
    return ChangeSet(ports=(change,), station_ids=frozenset({station}))


async def notifications(service_db: object) -> list[Notification]:
    async with service_db.transaction() as session:  # type: ignore[attr-defined]
        return list(await session.scalars(select(Notification).order_by(Notification.id)))


def test_a_failed_port_moves_its_booking_within_the_station_first(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [A, B], clock)
        try:
            booking = await service.book("r1", "A", W1)
            assert booking.port == 1
            await set_port(db, units["A"], 1, "faulted")
            await service.on_changes(fault(units["A"], "A", 1, clock()))
            old = await service.get(booking.id)
            assert old.status == "moved"
            new = await service.active_for_resident("r1")
            assert new is not None
            assert (new.station_id, new.window_start, new.port) == ("A", W1, 2)
            assert new.moved_from_id == booking.id
            [told] = await notifications(db)
            assert (told.kind, told.resident_id, told.booking_id) == ("booking_moved", "r1", new.id)
            assert told.payload["from"]["port"] == 1 and told.payload["to"]["port"] == 2
            assert told.payload["reason"] == "port_faulted"
            assert await load(db, "A", W1) == 1
            assert (1, "") in await displays(db)  # the dead port's display is cleared
            assert (2, new.ticket_code) in await displays(db)
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_moves_go_to_a_later_window_then_to_the_next_best_station(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [A, B], clock)
        try:
            r1 = await service.book("r1", "A", W1)  # port 1
            await service.book("r2", "A", W1)  # port 2
            await set_port(db, units["A"], 1, "faulted")
            await service.on_changes(fault(units["A"], "A", 1, clock()))
            moved = await service.active_for_resident("r1")
            assert moved is not None  # same station, the nearest later window
            assert (moved.station_id, moved.window_start, moved.port) == ("A", W2, 2)
            # now the whole battery at A goes: both bookings leave for B
            await set_port(db, units["A"], 2, "faulted")
            await service.on_changes(fault(units["A"], "A", 2, clock()))
            after = await active_bookings(db)
            assert {b.station_id for b in after} == {"B"}
            assert {b.resident_id for b in after} == {"r1", "r2"}
            kinds = [n.kind for n in await notifications(db)]
            assert kinds == ["booking_moved"] * 3
            assert (await service.get(r1.id)).status == "moved"
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_no_alternative_cancels_and_tells_the_resident(database_url: str) -> None:
    lone = StationSpec("L", 33.84, 132.77, ports=1)

    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [lone], clock)
        try:
            booking = await service.book("r1", "L", W1)
            await set_port(db, units["L"], 1, "faulted")
            await service.on_changes(fault(units["L"], "L", 1, clock()))
            assert (await service.get(booking.id)).status == "cancelled"
            [told] = await notifications(db)
            assert (told.kind, told.booking_id, told.payload["to"]) == (
                "booking_cancelled", booking.id, None)  # fmt: skip
            assert await load(db, "L", W1) == 0
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_check_in_is_seen_from_the_port(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [A], clock)
        try:
            booking = await service.book("r1", "A", W1)
            await service.on_changes(plug(units["A"], "A", 2, W1 + timedelta(minutes=3)))
            assert (await service.get(booking.id)).status == "active"  # another port
            await service.on_changes(plug(units["A"], "A", 1, W1 - timedelta(minutes=10)))
            assert (await service.get(booking.id)).status == "active"  # before the window
            await service.on_changes(plug(units["A"], "A", 1, W1 + timedelta(minutes=3)))
            assert (await service.get(booking.id)).status == "checked_in"
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_no_shows_release_the_place_after_the_grace(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [A], clock)
        try:
            late = await service.book("r1", "A", W1)
            came = await service.book("r2", "A", W1)
            await service.on_changes(plug(units["A"], "A", came.port, W1))
            assert await service.release_no_shows(W1 + timedelta(minutes=9)) == []
            assert await service.release_no_shows(W1 + timedelta(minutes=11)) == [late.id]
            assert (await service.get(late.id)).status == "no_show"
            assert (await service.get(came.id)).status == "checked_in"
            assert await load(db, "A", W1) == 1
            assert (late.port, "") in await displays(db)
            await service.release_no_shows(W1 + timedelta(minutes=31))  # the window is over
            assert (await service.get(came.id)).status == "completed"
            assert await service.active_for_resident("r2") is None
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_a_brief_loss_moves_only_what_cannot_wait(database_url: str) -> None:
    """A port back within the grace keeps its later bookings; one still down loses them."""

    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [A, B], clock, move_grace_s=180)
        try:
            soon = await service.book("r1", "A", W1)
            later = await service.book("r2", "A", W2)
            assert (soon.port, later.port) == (1, 1)
            clock.now = W1 - timedelta(minutes=2)
            await set_port(db, units["A"], 1, "faulted")
            await service.on_changes(fault(units["A"], "A", 1, clock()))
            assert (await service.get(soon.id)).status == "moved"  # its window cannot wait
            assert (await service.get(later.id)).status == "active"

            await set_port(db, units["A"], 1, "available")  # back within the grace
            await service.on_changes(fault(units["A"], "A", 1, clock(), status="available"))
            clock.now += timedelta(seconds=200)
            assert await service.relocate_due() == []
            assert (await service.get(later.id)).port == 1
            assert [n.resident_id for n in await notifications(db)] == ["r1"]

            await set_port(db, units["A"], 1, "faulted")  # down again, and for good
            await service.on_changes(fault(units["A"], "A", 1, clock()))
            assert (await service.get(later.id)).status == "active"
            clock.now += timedelta(seconds=179)
            assert await service.relocate_due() == []
            clock.now += timedelta(seconds=1)
            assert await service.relocate_due() == [later.id]
            assert [n.resident_id for n in await notifications(db)] == ["r1", "r2"]
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_a_loss_heard_by_a_process_that_died_is_moved_by_another_once_only(
    database_url: str,
) -> None:
    """With a shared ingest only one process hears of a loss; if it dies within the
    grace, another's timer moves the bookings (the loss is a row), and only one does."""

    async def scenario() -> None:
        clock = Clock(W1 - timedelta(minutes=2))
        db, heard, units = await open_world(database_url, [A, B], clock, move_grace_s=180)
        chosen = settings(database_url, move_grace_s=180, offline_move_after_s=7200)
        others = [BookingService(db, chosen, clock) for _ in range(2)]
        try:
            later = await heard.book("r2", "A", W2)
            clock.now += timedelta(seconds=180)  # every process's start sweep is behind it
            for service in (heard, *others):
                assert await service.relocate_due() == []
            await set_port(db, units["A"], later.port, "faulted")
            await heard.on_changes(fault(units["A"], "A", later.port, clock()))
            assert (await heard.get(later.id)).status == "active"  # within the grace
            await heard.close()  # gone, with what it heard
            clock.now += timedelta(seconds=179)
            assert [await s.relocate_due() for s in others] == [[], []]
            clock.now += timedelta(seconds=1)
            moved = await asyncio.gather(*(s.relocate_due() for s in others))
            assert sorted(moved) == [[], [later.id]]
            assert [n.resident_id for n in await notifications(db)] == ["r2"]
        finally:
            for service in others:
                await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_a_station_out_of_sight_keeps_even_its_next_bookings_for_the_grace(
    database_url: str,
) -> None:
    """Gateway offline (a broker restart, a network drop): the battery most likely still
    charges, and the resident may be on the way: nobody moves unless it lasts."""

    async def scenario() -> None:
        clock = Clock(W1 - timedelta(minutes=2))
        db, service, units = await open_world(database_url, [A, B], clock, move_grace_s=180)
        try:
            soon = await service.book("r1", "A", W1)
            await service.on_changes(fault(units["A"], "A", soon.port, clock(), status="offline"))
            assert (await service.get(soon.id)).status == "active"
            await set_port(db, units["A"], soon.port, "faulted")  # still out after the grace
            clock.now += timedelta(seconds=180)
            assert await service.relocate_due() == [soon.id]
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())
