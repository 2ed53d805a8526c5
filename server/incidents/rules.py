"""Pure incident rules: what ingest changes mean, and what each signal does to incidents.

Two steps, both plain functions over plain data:
1. `signals_from_changes` turns a `ChangeSet` into signals (condition active or cleared);
2. `decide` folds signals into actions on incidents, keyed by `dedupe_key`, and `due`
   finds the timed transitions (debounced auto-resolve, escalation) at a given `now`.

Historical events (replayed from a gateway's outbox after an outage) raise nothing: the
gateway sends every unit's current state before its backlog, so the present is already
known, and a fault that came and went during the outage is history for the audit trail,
not a job for a crew tonight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from protocol.payloads import EventKind
from server.incidents.kinds import (
    IncidentView,
    Kind,
    Policy,
    Severity,
    Signal,
    State,
    Where,
    alarm_key,
    gateway_key,
    port_key,
    unit_key,
)
from server.ingest.changeset import ChangeSet, EventRecord, PortChange, UnitChange

HEALTHY_PORT = frozenset({"available", "charging", "finishing"})
"""A port in one of these is working again; `unavailable` (disabled) and `offline` say nothing."""
CRITICAL_PORT_ERRORS = frozenset({"high_temperature", "over_voltage"})
"""Port errors that are a safety matter, not only lost capacity."""


@dataclass(frozen=True, slots=True)
class Open:
    signal: Signal


@dataclass(frozen=True, slots=True)
class Recur:
    """The condition came back before the debounce period ended: same incident, +1."""

    signal: Signal


@dataclass(frozen=True, slots=True)
class Touch:
    """The condition is still active: refresh last seen, severity (upwards) and detail."""

    signal: Signal


@dataclass(frozen=True, slots=True)
class Clear:
    dedupe_key: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Unmute:
    """The condition of a person-resolved incident has cleared: the next one is new."""

    incident_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class AutoResolve:
    dedupe_key: str


@dataclass(frozen=True, slots=True)
class Escalate:
    dedupe_key: str


Action = Open | Recur | Touch | Clear | Unmute | AutoResolve | Escalate


def alarm_severity(alarm: str) -> Severity:
    """SunSpec Evt1 names say it: `*_alarm` and `*_error`/`ground_fault` are critical."""
    if alarm.endswith(("_alarm", "_error")) or alarm == "ground_fault":
        return Severity.CRITICAL
    return Severity.WARNING


def signals_from_changes(
    changes: ChangeSet, current: Iterable[IncidentView], policy: Policy
) -> list[Signal]:
    """Every condition the change set says is active or cleared, oldest first.

    `current` (the unresolved incidents of the gateways involved) is needed twice: an
    alarm missing from a unit's alarm list clears its open incident even if the
    `alarm_cleared` event was lost; and a silent battery behind an offline gateway is
    part of the gateway's incident, not one more alert per battery.
    """
    current = list(current)
    signals = [s for event in changes.events for s in _from_event(event)]
    signals += [s for port in changes.ports for s in _from_port(port)]
    signals += [s for unit in changes.units for s in _from_unit(unit, current, policy)]
    # A battery no station has (not in the registry yet, or a stranger's) alerts no crew:
    # nobody would know where to go. It counts in /metrics until an operator maps it.
    signals = [s for s in signals if s.station_id is not None]
    signals += [
        Signal(
            Kind.GATEWAY_OFFLINE, gateway_key(gw.gw_id), gw.state == "offline", gw.at,
            Severity.CRITICAL, gw_id=gw.gw_id, detail=f"gateway {gw.gw_id} is {gw.state}",
        )
        for gw in changes.gateways
    ]  # fmt: skip
    offline = {v.gw_id for v in current if v.kind == Kind.GATEWAY_OFFLINE and v.condition_active}
    for gw in changes.gateways:
        (offline.add if gw.state == "offline" else offline.discard)(gw.gw_id)
    signals = [
        s
        for s in signals
        if not (s.kind == Kind.BATTERY_SILENT and s.active and s.gw_id in offline)
    ]
    return sorted(signals, key=lambda s: s.at)


def _from_event(event: EventRecord) -> list[Signal]:
    if event.historical:
        return []
    where = Where(station_id=event.station_id, gw_id=event.gw_id, unit=event.unit)
    kind = event.kind
    if kind in (EventKind.PORT_FAULTED, EventKind.PORT_RECOVERED) and event.port is not None:
        faulted = kind == EventKind.PORT_FAULTED
        error = event.error or "other"
        severity = Severity.CRITICAL if error in CRITICAL_PORT_ERRORS else Severity.WARNING
        detail = (
            f"port {event.port} faulted: {error}" if faulted else f"port {event.port} recovered"
        )
        key = port_key(event.gw_id, event.unit, event.port)
        return [Signal(Kind.PORT_FAULT, key, faulted, event.ts, severity, port=event.port,
                       detail=detail, **where)]  # fmt: skip
    if kind in (EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED) and event.alarm:
        raised = kind == EventKind.ALARM_RAISED
        key = alarm_key(event.gw_id, event.unit, event.alarm)
        detail = f"{event.alarm} {'raised' if raised else 'cleared'}"
        return [Signal(Kind.BATTERY_ALARM, key, raised, event.ts, alarm_severity(event.alarm),
                       detail=detail, **where)]  # fmt: skip
    if kind in (EventKind.UNIT_LOST, EventKind.UNIT_FOUND):
        lost = kind == EventKind.UNIT_LOST
        key = unit_key(Kind.BATTERY_SILENT, event.gw_id, event.unit)
        detail = "battery stopped answering" if lost else "battery answers again"
        return [Signal(Kind.BATTERY_SILENT, key, lost, event.ts, Severity.CRITICAL,
                       detail=event.detail or detail, **where)]  # fmt: skip
    return []


def _from_port(change: PortChange) -> list[Signal]:
    key = port_key(change.gw_id, change.unit, change.port)
    where = Where(station_id=change.station_id, gw_id=change.gw_id, unit=change.unit)
    if change.after_status == "faulted":
        severity = Severity.CRITICAL if change.error in CRITICAL_PORT_ERRORS else Severity.WARNING
        return [Signal(Kind.PORT_FAULT, key, True, change.at, severity, port=change.port,
                       detail=f"port {change.port} faulted: {change.error}", **where)]  # fmt: skip
    if change.before_status == "faulted" and change.after_status in HEALTHY_PORT:
        return [Signal(Kind.PORT_FAULT, key, False, change.at, port=change.port,
                       detail=f"port {change.port} {change.after_status}", **where)]  # fmt: skip
    return []


def _from_unit(change: UnitChange, current: Sequence[IncidentView], policy: Policy) -> list[Signal]:
    where = Where(station_id=change.station_id, gw_id=change.gw_id, unit=change.unit)
    silent = unit_key(Kind.BATTERY_SILENT, change.gw_id, change.unit)
    if not change.online:  # its SoC and alarms are stale
        # Silent is news only from a battery we had heard: one just configured or still
        # being discovered by a starting gateway has simply not spoken yet.
        if not change.was_online:
            return []
        return [Signal(Kind.BATTERY_SILENT, silent, True, change.at, Severity.CRITICAL,
                       detail="battery offline", **where)]  # fmt: skip
    signals = [Signal(Kind.BATTERY_SILENT, silent, False, change.at, Severity.CRITICAL,
                      detail="battery answers", **where)]  # fmt: skip
    if change.soc_pct is not None:
        low = unit_key(Kind.LOW_BATTERY, change.gw_id, change.unit)
        soc = change.soc_pct
        critical = soc < policy.low_soc_pct / 3
        severity = Severity.CRITICAL if critical else Severity.WARNING
        if soc < policy.low_soc_pct:
            signals.append(Signal(Kind.LOW_BATTERY, low, True, change.at, severity,
                                  detail=f"SoC {soc:.0f} %", **where))  # fmt: skip
        elif soc >= policy.low_soc_clear_pct:
            signals.append(Signal(Kind.LOW_BATTERY, low, False, change.at,
                                  detail=f"SoC {soc:.0f} %", **where))  # fmt: skip
    for alarm in change.alarms:
        key = alarm_key(change.gw_id, change.unit, alarm)
        signals.append(Signal(Kind.BATTERY_ALARM, key, True, change.at, alarm_severity(alarm),
                              detail=f"{alarm} raised", **where))  # fmt: skip
    prefix = alarm_key(change.gw_id, change.unit, "")
    for view in current:
        alarm = view.dedupe_key.removeprefix(prefix)
        if view.dedupe_key.startswith(prefix) and alarm not in change.alarms:
            signals.append(Signal(Kind.BATTERY_ALARM, view.dedupe_key, False, change.at,
                                  detail=f"{alarm} cleared", **where))  # fmt: skip
    return signals


def decide(
    signals: Iterable[Signal],
    current: Mapping[str, IncidentView],
    muted: Mapping[str, IncidentView] | None = None,
) -> list[Action]:
    """Fold signals, in order, into actions on the unresolved incidents `current` (by key).

    `muted`: per key, an incident a person resolved while its condition was still active
    (and no unresolved incident has the key): signals that the condition continues are
    ignored, and its clearing unmutes it.
    """
    active = {key: view.condition_active for key, view in current.items()}
    muted = dict(muted or {})
    actions: list[Action] = []
    for signal in signals:
        key = signal.dedupe_key
        if key in muted and key not in active:
            if not signal.active:
                actions.append(Unmute(muted.pop(key).id, signal.at))
            continue
        was = active.get(key)
        if signal.active:
            actions.append(Open(signal) if was is None else Touch(signal) if was else Recur(signal))
            active[key] = True
        elif was:
            actions.append(Clear(key, signal.at))
            active[key] = False
    return actions


def due(current: Iterable[IncidentView], now: datetime, policy: Policy) -> list[Action]:
    """Timed transitions: clear for the whole debounce period -> resolved; open (not
    acknowledged) for longer than the escalation timeout -> escalated, once."""
    actions: list[Action] = []
    for view in current:
        if view.state == State.RESOLVED:
            continue
        cleared = view.condition_cleared_at
        if cleared is not None and now - cleared >= policy.debounce:
            actions.append(AutoResolve(view.dedupe_key))
        elif (
            view.state == State.OPEN
            and view.escalated_at is None
            and now - view.opened_at >= policy.escalate_after
        ):
            actions.append(Escalate(view.dedupe_key))
    return actions
