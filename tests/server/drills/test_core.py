"""The drills' pure core: twins and their names, batteries on twins, the report's counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.drills.report import END_ACTOR, alert_counts, drill_report
from server.drills.twins import RealStation, gateway_of, place_units, twins_of
from server.reports.figures import IncidentRow

T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def row(id_: int, acked: float | None, resolved: float | None, by: str | None) -> IncidentRow:
    return IncidentRow(
        id_, "port_fault", "warning", "drill1-a", "drill-1", "shelter-01.1", 2, T0,
        T0 + acked * S if acked is not None else None, "lineworks:tanaka" if acked else None,
        T0 + resolved * S if resolved is not None else None, by, None,
    )  # fmt: skip


def test_twins_are_named_as_drills_and_buses_stay_together_in_turn() -> None:
    made = twins_of(3, [RealStation("a", "大洲小学校", "Ozu ES"), RealStation("b", "体育館", "")])
    assert [(t.id, t.of, t.name_ja, t.name_en) for t in made] == [
        ("drill3-a", "a", "【訓練】大洲小学校", "[DRILL] Ozu ES"),
        ("drill3-b", "b", "【訓練】体育館", "[DRILL] 体育館"),
    ]
    assert gateway_of(3) == "drill-3"
    units = ["shelter-01.1", "shelter-01.2", "shelter-02.1", "shelter-03.1"]
    assert place_units(units, made) == {
        "shelter-01.1": "drill3-a", "shelter-01.2": "drill3-a", "shelter-02.1": "drill3-b",
        "shelter-03.1": "drill3-a",
    }  # fmt: skip
    with pytest.raises(ValueError, match="at least one station"):
        place_units(units, [])


def test_alert_counts_take_only_the_drills_incidents_by_what_was_said() -> None:
    sources = ["incident:4:paged", "incident:4.9:paged", "incident:5:paged", "incident:4:resolved",
               "notification:3", "incident::paged", "incident:x:paged"]  # fmt: skip
    assert alert_counts(sources, {4, 9}) == {"paged": 2, "resolved": 1}


def test_the_report_times_crews_and_leaves_the_drills_end_out() -> None:
    rows = [row(1, 30, 90, "lineworks:tanaka"), row(2, 10, None, END_ACTOR),
            row(3, None, 40, "system"), row(4, None, None, END_ACTOR)]  # fmt: skip
    report = drill_report(rows, ["incident:1:paged"], [("r1", "active"), ("r1", "moved"),
                                                       ("r2", "cancelled")], 3, 2)  # fmt: skip
    assert (report.incidents, report.unresolved_at_end, report.real_incidents) == (4, 2, 2)
    assert (report.acknowledged.count, report.acknowledged.p50_s, report.acknowledged.max_s) == (
        2, 10.0, 30.0,
    )  # fmt: skip
    assert (report.resolved.count, report.resolved.p50_s, report.resolved.max_s) == (2, 40.0, 90.0)
    assert report.actors == {
        "lineworks:tanaka": {"acknowledged": 2, "resolved": 1},
        "system": {"acknowledged": 0, "resolved": 1},
    }
    assert report.bookings == {"active": 1, "cancelled": 1, "moved": 1, "participants": 2}
    assert report.alerts_sent == {"paged": 1}
