"""The incident rules are pure: change sets and incidents in, signals and actions out."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from server.incidents.kinds import IncidentView, Kind, Policy, Severity, Signal
from server.incidents.rules import (
    AutoResolve,
    Clear,
    Escalate,
    Open,
    Recur,
    Touch,
    Unmute,
    alarm_severity,
    decide,
    due,
    signals_from_changes,
)
from tests.server.incidents.changes import (
    GW,
    T0,
    UNIT,
    event,
    fault,
    gateway,
    merged,
    port_status,
    recover,
    unit_state,
)

POLICY = Policy(debounce=timedelta(seconds=60), escalate_after=timedelta(minutes=15))
PORT_KEY = f"port_fault:{GW}/{UNIT}/3"
S = timedelta(seconds=1)


def incident(key: str = PORT_KEY, kind: str = "port_fault", **fields: object) -> IncidentView:
    base = IncidentView(
        id=1, kind=kind, dedupe_key=key, severity="warning", state="open", station_id="ozu-01",
        gw_id=GW, unit=UNIT, port=3, detail="", occurrences=1, opened_at=T0, last_seen_at=T0,
        condition_cleared_at=None, acknowledged_at=None, acknowledged_by=None,
        resolved_at=None, resolved_by=None, escalated_at=None,
    )  # fmt: skip
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def signals(*sets: object, current: list[IncidentView] | None = None) -> list[Signal]:
    return signals_from_changes(merged(*sets), current or [], POLICY)  # type: ignore[arg-type]


def test_a_port_fault_and_its_recovery_are_one_condition() -> None:
    (raised,) = signals(fault())
    assert (raised.kind, raised.dedupe_key, raised.active) == (Kind.PORT_FAULT, PORT_KEY, True)
    assert (raised.station_id, raised.port, raised.severity) == ("ozu-01", 3, Severity.WARNING)
    assert "over_current" in raised.detail
    (cleared,) = signals(recover())
    assert (cleared.dedupe_key, cleared.active) == (PORT_KEY, False)
    (hot,) = signals(fault(error="high_temperature"))
    assert hot.severity == Severity.CRITICAL


def test_port_states_raise_and_clear_faults_even_without_events() -> None:
    assert [s.active for s in signals(port_status("available", "faulted"))] == [True]
    assert [s.active for s in signals(port_status("faulted", "available"))] == [False]
    assert signals(port_status("faulted", "offline")) == []  # offline says nothing about the fault
    assert signals(port_status("faulted", "unavailable")) == []  # disabled by a person


def test_alarms_take_their_severity_from_their_name() -> None:
    assert alarm_severity("over_temp_alarm") == Severity.CRITICAL
    assert alarm_severity("under_soc_min_warning") == Severity.WARNING
    assert alarm_severity("fan_error") == Severity.CRITICAL
    (raised,) = signals(event("alarm_raised", alarm="over_temp_alarm"))
    assert raised.dedupe_key == f"battery_alarm:{GW}/{UNIT}/over_temp_alarm"
    assert raised.severity == Severity.CRITICAL


def test_an_alarm_missing_from_the_units_list_clears_its_incident() -> None:
    key = f"battery_alarm:{GW}/{UNIT}/over_temp_alarm"
    open_alarm = incident(key, "battery_alarm", port=None)
    found = signals(unit_state(alarms=()), current=[open_alarm])
    assert [(s.dedupe_key, s.active) for s in found if s.kind == Kind.BATTERY_ALARM] == [
        (key, False)
    ]


def test_low_battery_has_hysteresis() -> None:
    def low(soc: float) -> list[bool]:
        return [s.active for s in signals(unit_state(soc_pct=soc)) if s.kind == Kind.LOW_BATTERY]

    assert low(14.0) == [True]
    assert low(17.0) == []  # between the thresholds: no news
    assert low(20.0) == [False]
    (critical,) = [s for s in signals(unit_state(soc_pct=4.0)) if s.kind == Kind.LOW_BATTERY]
    assert critical.severity == Severity.CRITICAL


def test_a_silent_battery_behind_an_offline_gateway_is_the_gateways_incident() -> None:
    lost = signals(unit_state(online=False))
    assert [(s.kind, s.active) for s in lost] == [(Kind.BATTERY_SILENT, True)]
    both = signals(gateway("offline"), unit_state(online=False))
    assert [(s.kind, s.active) for s in both] == [(Kind.GATEWAY_OFFLINE, True)]
    gateway_down = incident(f"gateway_offline:{GW}", "gateway_offline", unit=None, port=None)
    assert signals(unit_state(online=False), current=[gateway_down]) == []
    assert [s.active for s in signals(event("unit_lost"))] == [True]


def test_a_battery_never_heard_from_is_not_silent_news() -> None:
    """Configured, or still being discovered by a gateway that has just started."""
    assert signals(unit_state(online=False, was_online=False)) == []
    heard = signals(unit_state(online=True, was_online=False))
    assert [s.active for s in heard if s.kind == Kind.BATTERY_SILENT] == [False]


def test_historical_events_raise_nothing() -> None:
    assert signals(event("port_faulted", port=3, error="over_current", historical=True)) == []


def test_flapping_is_one_incident_counted() -> None:
    flaps = [fault(T0), recover(T0 + 5 * S), fault(T0 + 10 * S), recover(T0 + 15 * S)]
    actions = decide(signals(*flaps), {})
    assert [type(a) for a in actions] == [Open, Clear, Recur, Clear]


def test_a_continuing_condition_touches_and_a_cleared_one_clears_once() -> None:
    current = {PORT_KEY: incident()}
    assert [type(a) for a in decide(signals(fault()), current)] == [Touch]
    assert [type(a) for a in decide(signals(recover(), recover(T0 + S)), current)] == [Clear]
    cleared = {PORT_KEY: incident(condition_cleared_at=T0)}
    assert [type(a) for a in decide(signals(fault(T0 + S)), cleared)] == [Recur]
    assert decide(signals(recover()), {}) == []


def test_a_person_resolved_condition_is_muted_until_it_clears() -> None:
    resolved = incident(id=7, state="resolved", resolved_at=T0, resolved_by="crew")
    muted = {PORT_KEY: resolved}
    assert decide(signals(port_status("available", "faulted")), {}, muted) == []
    assert decide(signals(recover()), {}, muted) == [Unmute(7, T0)]
    assert [type(a) for a in decide(signals(recover(), fault(T0 + S)), {}, muted)] == [Unmute, Open]


def test_due_resolves_after_the_quiet_period_and_escalates_once() -> None:
    cleared = incident(condition_cleared_at=T0)
    assert due([cleared], T0 + 59 * S, POLICY) == []
    assert due([cleared], T0 + 60 * S, POLICY) == [AutoResolve(PORT_KEY)]
    fresh = incident()
    assert due([fresh], T0 + timedelta(minutes=14), POLICY) == []
    assert due([fresh], T0 + timedelta(minutes=15), POLICY) == [Escalate(PORT_KEY)]
    later = T0 + timedelta(hours=1)
    assert due([incident(escalated_at=T0 + timedelta(minutes=15))], later, POLICY) == []
    assert due([incident(state="acknowledged")], later, POLICY) == []
