"""The hold-back rules: how many places a window holds for priority residents, for whom,
and until when; and that the claim (`allot`) and a fault's moves obey them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.booking.capacity import Placement, PortView, StationView
from server.booking.claims import Want, allot
from server.booking.holdback import (
    NO_HOLD,
    HoldRule,
    held_from,
    held_places,
    open_places,
    places_for_anyone,
    released,
)
from server.booking.moves import priority_first
from server.errors import Invalid

NOW = datetime(2026, 11, 24, 0, 5, tzinfo=UTC)
W1 = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
W2 = W1 + timedelta(minutes=30)
QUARTER = HoldRule(0.25, timedelta(minutes=30))
HOLD = HoldRule(0.25, timedelta(0))


def station(ports: int, municipality: str = "大洲市", faulted: int = 0) -> StationView:
    views = tuple(
        PortView(1, n, "faulted" if n <= faulted else "available") for n in range(1, ports + 1)
    )
    return StationView("A", 33.84, 132.77, 30, None, None, views, 10_000.0,
                       municipality=municipality)  # fmt: skip


def test_the_share_is_floored_over_healthy_ports() -> None:
    assert held_places(QUARTER, station(4)) == 1
    assert held_places(QUARTER, station(3)) == 0  # never more than the share
    assert held_places(QUARTER, station(8)) == 2
    assert held_places(HoldRule(0.3, timedelta(0)), station(10)) == 3  # no float shortfall
    assert held_places(QUARTER, station(4, faulted=1)) == 0  # a faulted port is no place
    assert held_places(HoldRule(1.0, timedelta(0)), station(4)) == 4
    assert held_places(NO_HOLD, station(40)) == 0


def test_held_places_are_released_at_the_lead_time_and_never_held_from_priority() -> None:
    a = station(4)
    assert not released(QUARTER, W2, W2 - timedelta(minutes=31))
    assert released(QUARTER, W2, W2 - timedelta(minutes=30))  # exactly at the lead time
    assert held_from(QUARTER, a, W2, NOW, priority=False) == 1
    assert held_from(QUARTER, a, W2, NOW, priority=True) == 0
    assert held_from(QUARTER, a, W2, W2 - timedelta(minutes=30), priority=False) == 0
    assert held_from(HoldRule(0.25, timedelta(0)), a, W1, W1 - timedelta(seconds=1), False) == 1


def test_priority_bookings_use_the_held_places_first() -> None:
    a = station(8)  # holds 2 per window, until the window starts
    places = {W1: 8, W2: 3}
    assert open_places(HOLD, a, places, {}, NOW, priority=False) == {W1: 6, W2: 1}
    assert open_places(HOLD, a, places, {W1: 1}, NOW, priority=False) == {W1: 7, W2: 1}
    assert open_places(HOLD, a, places, {W1: 5}, NOW, priority=False) == {W1: 8, W2: 1}
    assert open_places(HOLD, a, {W1: 1}, {}, NOW, priority=False) == {W1: 0}
    assert open_places(HOLD, a, places, {}, NOW, priority=True) == places
    assert places_for_anyone({"大洲市": HOLD}, [a], {"A": places}, {}, NOW) == {"A": {W1: 6, W2: 1}}
    assert places_for_anyone({"内子町": HOLD}, [a], {"A": places}, {}, NOW) == {"A": places}


@pytest.mark.parametrize(
    ("share", "lead", "field"),
    [(1.5, 0, "hold_share"), (-0.1, 0, "hold_share"), (float("nan"), 0, "hold_share"),
     (0.2, -1, "release_before_min")],
)  # fmt: skip
def test_bad_rules_are_refused_naming_the_field(share: float, lead: int, field: str) -> None:
    with pytest.raises(Invalid, match=field):
        HoldRule(share, timedelta(minutes=lead))


def test_allot_never_gives_a_held_place_to_a_resident_without_priority() -> None:
    a = station(4)  # 1 held
    stations = {"A": a}
    public = Want("A", W1, held=1)
    granted = allot([public] * 5, stations, {}, {}, 1.0)
    assert sum(p is not None for p in granted) == 3
    # a priority resident takes the held place; then a public one still cannot
    loads: dict[str, dict[datetime, int]] = {}
    order = [public, public, public, Want("A", W1, 0, priority=True), public]
    assert [p is not None for p in allot(order, stations, loads, {}, 1.0)] == [
        True, True, True, True, False,
    ]  # fmt: skip
    # a priority booking already in the window used the held place: the public take the rest
    booked = {"A": {W1: 1}}
    taken = {("A", W1): {(1, 1)}}
    assert [p is not None for p in allot([public] * 4, stations, booked, taken, 1.0,
                                         {("A", W1): 1})] == [True, True, True, False]  # fmt: skip
    held_still = {"A": {W1: 1}}  # the same booking, not a priority one: a place is still held
    assert [p is not None for p in allot([public] * 4, stations, held_still, taken, 1.0)] == [
        True, True, False, False,
    ]  # fmt: skip
    # the priority booking came first: the held place is used, the public fill the rest
    first = [Want("A", W1, 0, priority=True), public, public, public, public]
    assert [p is not None for p in allot(first, stations, {}, {}, 1.0)] == [
        True, True, True, True, False,
    ]  # fmt: skip


def test_a_fault_moves_priority_residents_first_each_group_in_its_order() -> None:
    displaced = [
        ("A", Placement("n1", W1, 1, 1)),
        ("A", Placement("p1", W1, 1, 2)),
        ("B", Placement("n2", W1, 2, 1)),
        ("B", Placement("p2", W2, 2, 2)),
    ]
    order = [p.booking_id for _o, p in priority_first(displaced, {"p1", "p2"})]
    assert order == ["p1", "p2", "n1", "n2"]
    assert [p.booking_id for _o, p in priority_first(displaced, set())] == ["n1", "p1", "n2", "p2"]
