from datetime import UTC, datetime, timedelta

import pytest

from server.ingest.live import (
    PortView,
    effective_status,
    gateway_changes,
    gateway_online,
    port_changes,
)
from server.ingest.seqs import new_gaps
from server.ingest.staleness import Heard, may_judge_silence, overdue

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reported", "unit_online", "gateway_up", "stale", "disabled", "expected"),
    [
        ("charging", True, True, False, False, "charging"),
        ("faulted", True, True, False, False, "faulted"),
        ("available", False, True, False, False, "offline"),
        ("available", True, False, False, False, "offline"),
        ("available", True, True, True, False, "offline"),
        ("available", True, True, False, True, "unavailable"),
        ("faulted", True, True, False, True, "unavailable"),
        ("available", True, False, False, True, "offline"),  # offline wins over disabled
    ],
)
def test_effective_status(
    reported: str, unit_online: bool, gateway_up: bool, stale: bool, disabled: bool, expected: str
) -> None:
    assert effective_status(reported, unit_online, gateway_up, stale, disabled) == expected


def test_gateway_online_needs_its_status_and_no_silence() -> None:
    assert gateway_online("online", silent=False)
    assert not gateway_online("online", silent=True)
    assert not gateway_online("offline", silent=False)


def view(status: str, occupied: bool | None = False) -> PortView:
    return PortView(1, "s1", "gw", "b.1", 2, status, occupied, "none")


def test_port_changes_only_for_status_or_occupancy() -> None:
    key = (1, 2)
    assert port_changes({key: view("available")}, {key: view("available")}, NOW) == []
    [change] = port_changes({key: view("available")}, {key: view("charging", True)}, NOW)
    assert (change.before_status, change.after_status) == ("available", "charging")
    assert (change.before_occupied, change.after_occupied) == (False, True)
    [new] = port_changes({}, {key: view("available")}, NOW)
    assert new.before_status is None


def test_gateway_changes_only_when_effective_state_flips() -> None:
    assert gateway_changes({"a": True}, {"a": True}, NOW) == []
    assert [c.state for c in gateway_changes({"a": True}, {"a": False}, NOW)] == ["offline"]
    assert gateway_changes({}, {"new": False}, NOW) == []


def test_seq_gaps() -> None:
    assert new_gaps(-1, [812, 813]) == (813, [])  # first sight: we joined late
    assert new_gaps(10, [11, 12]) == (12, [])
    assert new_gaps(10, [14, 12]) == (14, [(11, 11), (13, 13)])
    assert new_gaps(10, [5, 9]) == (10, [])  # replays below the maximum are no gaps
    assert new_gaps(10, [12], reserved={11}) == (12, [])  # the will's reserved seq
    assert new_gaps(10, [13], reserved={11}) == (13, [(11, 12)])


def test_overdue_after_three_periods() -> None:
    period = 10.0
    items = [
        Heard(1, NOW - timedelta(seconds=31), stale=False),
        Heard(2, NOW - timedelta(seconds=29), stale=False),
        Heard(3, NOW - timedelta(seconds=300), stale=True),  # already marked
        Heard(4, None, stale=False),  # never heard: never online
    ]
    assert overdue(items, NOW, period) == [1]


def test_silence_is_judged_only_after_listening_for_three_periods() -> None:
    period = 10.0
    assert not may_judge_silence(None, NOW, period)  # not connected to the broker
    assert not may_judge_silence(NOW - timedelta(seconds=29), NOW, period)
    assert may_judge_silence(NOW - timedelta(seconds=30), NOW, period)
