"""The restore rule: which bookings released while their station was out of sight come back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.booking.capacity import PortView, StationView
from server.booking.moves import Released, restorable

NOW = datetime(2026, 11, 24, 0, 5, tzinfo=UTC)
W1 = datetime(2026, 11, 24, 0, 30, tzinfo=UTC)
W2 = W1 + timedelta(minutes=30)


def station(sid: str, *statuses: str) -> StationView:
    ports = tuple(PortView(1, n, s) for n, s in enumerate(statuses, 1))
    return StationView(sid, 33.84, 132.77, 30, None, None, ports, 1000.0)


def released(
    bid: str, resident: str, window: datetime, ago_min: int = 10, at: str = "A"
) -> Released:
    return Released(bid, resident, at, window, NOW - timedelta(minutes=ago_min))


def ids(found: list[Released]) -> list[str]:
    return [r.booking_id for r in found]


def test_restored_only_ahead_in_sight_and_for_residents_without_a_booking() -> None:
    stations = {"A": station("A", "available", "charging"), "B": station("B", "offline")}
    candidates = [
        released("later", "r1", W2),
        released("sooner", "r2", W1),
        released("started", "r3", NOW - timedelta(minutes=5)),
        released("elsewhere", "r4", W1),  # r4 booked another place meanwhile
        released("blind", "r5", W1, at="B"),  # its station is still out of sight
        released("gone", "r6", W1, at="C"),  # no such station any more
    ]
    assert ids(restorable(candidates, stations, {"r4"}, NOW)) == ["sooner", "later"]


def test_one_per_resident_the_latest_released() -> None:
    stations = {"A": station("A", "available")}
    candidates = [released("old", "r1", W1, ago_min=50), released("new", "r1", W2, ago_min=5)]
    assert ids(restorable(candidates, stations, set(), NOW)) == ["new"]
