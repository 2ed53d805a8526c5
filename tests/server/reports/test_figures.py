"""The report's pure core: percentiles, waits along a move chain, lost port-hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.reports.figures import (
    BookingRow,
    IncidentRow,
    Period,
    lost_port_hours,
    percentile,
    resident_waits,
)

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def fault(port: int, opened: float, cleared: float | None, resolved: float | None) -> IncidentRow:
    return IncidentRow(
        1, "port_fault", "warning", "s", "gw", "u", port, minutes(opened), None, None,
        minutes(resolved) if resolved is not None else None, None,
        minutes(cleared) if cleared is not None else None,
    )  # fmt: skip


def test_percentiles_are_nearest_rank_values() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([10.0, 30.0, 40.0, 50.0, 60.0], 50) == 40.0
    assert percentile([60.0, 10.0, 40.0, 30.0, 50.0], 95) == 60.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0


def test_a_moved_residents_wait_runs_from_the_first_request() -> None:
    first = BookingRow("a", "s1", "moved", minutes(90), minutes(5), None, 1)
    second = BookingRow("b", "s2", "moved", minutes(100), minutes(60), "a", 1)
    last = BookingRow("c", "s2", "completed", minutes(120), minutes(80), "b", 1)
    known = {r.id: r for r in (first, second, last)}
    assert resident_waits([first, second, last], known) == {"c": 115.0}
    # the chain's start out of reach: the wait runs from the earliest one known
    assert resident_waits([last], {"c": last, "b": second}) == {"c": 60.0}


def test_lost_port_hours_clip_to_the_period_and_merge_a_ports_overlaps() -> None:
    period = Period(T0, minutes(360))
    assert lost_port_hours([fault(1, 60, 120, 130)], period) == 1.0  # to the recovery
    assert lost_port_hours([fault(1, 60, None, 150)], period) == 1.5  # to the resolution
    assert lost_port_hours([fault(1, -60, None, None)], period) == 6.0  # open: to the end
    overlapping = [fault(1, 0, 60, 60), fault(1, 30, 90, 90), fault(2, 30, 90, 90)]
    assert lost_port_hours(overlapping, period) == 2.5
    other = IncidentRow(2, "battery_alarm", "warning", "s", "gw", "u", None, T0, None, None,
                        None, None, None)  # fmt: skip
    assert lost_port_hours([other], period) == 0.0
