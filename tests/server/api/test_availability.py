"""The four colour levels and free-now, on plain views (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.api.availability import availability, level
from server.booking.capacity import PortView, StationView

NOW = datetime(2026, 11, 24, 3, 10, tzinfo=UTC)  # 12:10 in Japan


def station(
    *statuses: str, energy_wh: float = 10_000, hours: tuple[str, str] | None = None
) -> StationView:
    ports = tuple(PortView(1, n, s) for n, s in enumerate(statuses, 1))
    opens, closes = hours or (None, None)
    return StationView("s", 33.5, 132.5, 30, opens, closes, ports, energy_wh)


def test_levels() -> None:
    soon = NOW + timedelta(minutes=20)
    assert level(4, 4, soon, NOW, 30) == "free"
    assert level(1, 4, soon, NOW, 30) == "busy"
    assert level(0, 4, soon, NOW, 30) == "busy"
    assert level(0, 4, NOW + timedelta(hours=2), NOW, 30) == "crowded"
    assert level(0, 0, None, NOW, 30) == "full"


def test_free_now_counts_available_ports_less_those_held() -> None:
    found = availability(station("available", "available", "charging", "faulted"), {}, NOW,
                         timedelta(hours=12), 15.0, held_now=1)  # fmt: skip
    assert (found.free_now, found.healthy_ports, found.total_ports) == (1, 3, 4)
    assert found.next_free_window == NOW.replace(minute=30)


def test_full_windows_and_closed_stations_are_full() -> None:
    windows = {NOW.replace(minute=30) + timedelta(minutes=30 * i): 2 for i in range(24)}
    assert availability(station("available", "available"), windows, NOW, timedelta(hours=12),
                        15.0).level == "full"  # fmt: skip
    closed = availability(station("available", hours=("20:00", "21:00")), {}, NOW,
                          timedelta(hours=1), 15.0)  # fmt: skip
    assert not closed.open_now and closed.free_now == 0 and closed.level == "full"
    empty = availability(station("available", energy_wh=10), {}, NOW, timedelta(hours=12), 15.0)
    assert empty.level == "full"
