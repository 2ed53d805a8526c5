"""Priority residents in the booking service, on SQLite and PostgreSQL: places a station
holds back go to priority residents only until the configured lead time before the window,
then to everyone; a self-reported need is no grant; a fault moves priority residents first,
and into held places."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from server.access.operators import Operator
from server.booking.holdback import HoldRule
from server.booking.service import BookingService
from server.db.session import Database
from server.errors import Conflict
from server.ingest.changeset import ChangeSet
from server.line.conversation import Registration, resident_id
from server.line.registration_rows import RegistrationRows
from server.priority.grants import PriorityDesk
from server.priority.rules import PriorityRules
from tests.server.booking_shell.test_upkeep import fault
from tests.server.booking_shell.world import (
    W1,
    W2,
    Clock,
    StationSpec,
    active_bookings,
    load,
    open_world,
    set_port,
    settings,
)

OZU = "大洲市"
HQ = Operator("hq-tester", "hq")
QUARTER = HoldRule(0.25, timedelta(minutes=30))
"""W2 (10:00 Japan time) is released at 09:30; the clock starts at 09:05."""
W3 = W2 + timedelta(minutes=30)


async def registered(db: Database, clock: Clock, user_id: str, need: str | None) -> str:
    """A LINE resident's registration (as the chat stores it); its reference."""
    rows = RegistrationRows(db, clock)
    await rows.register(Registration(user_id, OZU, None, "shelter", need))
    found = await rows.registration(user_id)
    assert found is not None and found.reference
    return found.reference


async def priority_resident(db: Database, clock: Clock, user_id: str) -> str:
    """Registered, with a need, and granted at the desk; the booking service's id."""
    reference = await registered(db, clock, user_id, "medical_device")
    await PriorityDesk(db, clock).grant(reference, "desk", HQ)
    return resident_id(user_id)


async def free_at(service: BookingService, window: datetime, who: str | None) -> int:
    found = await service.station_options("A", W1, 10, who)
    return next((o.free for o in found if o.window_start == window), 0)


def test_a_held_place_is_released_to_everyone_at_the_configured_time(database_url: str) -> None:
    async def scenario() -> None:
        clock = Clock()
        db, service, _units = await open_world(
            database_url, [StationSpec("A", 33.84, 132.77, ports=4, municipality=OZU)], clock
        )
        try:
            await PriorityRules(db, clock).put(OZU, QUARTER, HQ)
            somebody = await priority_resident(db, clock, "Upriority")
            assert await free_at(service, W2, None) == 3  # one of 4 held
            assert await free_at(service, W2, somebody) == 4
            for n in range(3):
                await service.book(f"r{n}", "A", W2)
            try:
                await service.book("r3", "A", W2)
                raise AssertionError("a resident without priority took a held place")
            except Conflict as refused:
                assert refused.code == "window_full"
            assert await free_at(service, W2, None) == 0
            clock.now = W2 - timedelta(minutes=30, seconds=1)
            assert await free_at(service, W2, None) == 0  # a second before: still held
            clock.now = W2 - timedelta(minutes=30)
            assert await free_at(service, W2, None) == 1  # released to everyone
            late = await service.book("r3", "A", W2)
            assert late.status == "active" and not late.priority
            assert await load(db, "A", W2) == 4
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_residents_without_priority_never_take_held_places_even_at_once(
    database_url: str,
) -> None:
    """60 residents at once through two services (as two workers), 2 of 8 places held; a
    self-reported need among them is no grant; the priority residents get the held places."""

    async def scenario() -> None:
        clock = Clock()
        spec = StationSpec("A", 33.84, 132.77, ports=8, municipality=OZU)
        db, first, _units = await open_world(database_url, [spec], clock)
        second_db = Database(database_url)
        second = BookingService(second_db, settings(database_url), clock)
        try:
            await PriorityRules(db, clock).put(OZU, QUARTER, HQ)
            asked = await registered(db, clock, "Uasked", "medical_device")  # asked, not granted
            granted = [await priority_resident(db, clock, f"Upri{n}") for n in range(2)]
            early = await first.book(granted[0], "A", W2)  # uses one held place
            assert early.priority
            services = [first, second]
            crowd = [f"r{i}" for i in range(59)] + [resident_id("Uasked")]
            results = await asyncio.gather(
                *(services[i % 2].book(who, "A", W2) for i, who in enumerate(crowd)),
                return_exceptions=True,
            )
            ok = [r for r in results if not isinstance(r, BaseException)]
            full = [r for r in results if isinstance(r, Conflict) and r.code == "window_full"]
            assert len(ok) == 6 and len(full) == len(crowd) - 6  # 8 - 2 held
            assert all(not b.priority for b in ok)
            late = await second.book(granted[1], "A", W2)  # the last held place is theirs
            assert late.priority
            active = await active_bookings(db)
            assert len(active) == 8 == len({(b.unit_pk, b.port) for b in active})
            assert sum(b.priority for b in active) == 2
            assert await load(db, "A", W2) == 8
            assert asked  # registered with a need, and still only a request
            assert not await first.is_priority(resident_id("Uasked"))
        finally:
            await first.close()
            await second.close()
            await second_db.dispose()
            await db.dispose()

    asyncio.run(scenario())


def both_faulted(unit_pk: int, station: str, at: datetime) -> ChangeSet:
    """Ports 1 and 2 of the station's battery fault in one report."""
    one, two = fault(unit_pk, station, 1, at), fault(unit_pk, station, 2, at)
    return ChangeSet(ports=(*one.ports, *two.ports), station_ids=one.station_ids)


def test_a_priority_resident_is_moved_first_when_ports_fail(database_url: str) -> None:
    """One free place left in the window: the priority resident gets it, though the other
    booking came first (and sat on the lower port)."""

    async def scenario() -> None:
        clock = Clock()
        spec = StationSpec("A", 33.84, 132.77, ports=3, municipality=OZU)
        db, service, units = await open_world(database_url, [spec], clock)
        try:
            other = await service.book("r-other", "A", W1)
            somebody = await priority_resident(db, clock, "Upriority")
            mine = await service.book(somebody, "A", W1)
            assert (other.port, mine.port) == (1, 2)
            for port in (1, 2):
                await set_port(db, units["A"], port, "faulted")
            await service.on_changes(both_faulted(units["A"], "A", clock()))
            moved = await service.active_for_resident(somebody)
            assert moved is not None and moved.priority
            assert (moved.station_id, moved.window_start, moved.port) == ("A", W1, 3)
            later = await service.active_for_resident("r-other")
            assert later is not None
            assert (later.station_id, later.window_start) == ("A", W2)
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())


def test_a_fault_moves_a_priority_resident_into_a_held_place_and_no_one_else(
    database_url: str,
) -> None:
    lost = StationSpec("A", 33.840, 132.770, ports=2, municipality="内子町")
    near = StationSpec("B", 33.841, 132.771, ports=4, municipality=OZU)

    async def scenario() -> None:
        clock = Clock()
        db, service, units = await open_world(database_url, [lost, near], clock)
        try:
            await PriorityRules(db, clock).put(OZU, QUARTER, HQ)
            for n in range(3):
                await service.book(f"b{n}", "B", W3)  # B's W3: everyone's places taken
            somebody = await priority_resident(db, clock, "Upriority")
            await service.book("r-other", "A", W2)
            await service.book(somebody, "A", W2)
            for port in (1, 2):
                await set_port(db, units["A"], port, "faulted")
            await service.on_changes(both_faulted(units["A"], "A", clock()))
            moved = await service.active_for_resident(somebody)
            assert moved is not None
            # the walk to B makes W3 the first window there: its held place
            assert (moved.station_id, moved.window_start) == ("B", W3)
            other = await service.active_for_resident("r-other")
            assert other is not None
            assert (other.station_id, other.window_start) not in {("B", W3), ("A", W2)}
            assert await load(db, "B", W3) == 4
        finally:
            await service.close()
            await db.dispose()

    asyncio.run(scenario())
