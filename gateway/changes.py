"""Change detection: which readings are worth a state message, and which are events.

A phone's draw wobbles by a few tenths of a watt every poll; publishing that would bury
the uplink. A state goes out when something a resident or a crew would act on changed
(a port's status, error, occupancy, switch or display; the battery's alarms or state)
or a measured value moved past its deadband; otherwise only every report period.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.snapshot import UnitReading
from protocol.payloads import BatteryState, EventKind, PortError, PortState, PortStatus

SOC_DEADBAND_PCT: Final = 1.0
TEMP_DEADBAND_C: Final = 2.0
PORT_POWER_DEADBAND_W: Final = 3.0
BATTERY_POWER_DEADBAND_W: Final = 25.0


@dataclass(frozen=True, slots=True)
class EventDraft:
    """An event before it gets its id, seq and ts."""

    kind: EventKind
    port: int | None = None
    alarm: str | None = None
    error: PortError | None = None
    detail: str | None = None


def is_significant(before: UnitReading | None, after: UnitReading) -> bool:
    """True when `after` differs from the last published reading in a way that matters."""
    if before is None or len(before.ports) != len(after.ports):
        return True
    if _battery_moved(before.battery, after.battery):
        return True
    return any(_port_moved(b, a) for b, a in zip(before.ports, after.ports, strict=True))


def unit_events(before: UnitReading | None, after: UnitReading) -> list[EventDraft]:
    """Alarm and port-fault edges between two readings.

    With no earlier reading (gateway start, unit found) every active alarm and fault is
    reported as raised: the server de-duplicates, and nothing active goes unreported.
    """
    was_alarms = set(before.battery.alarms) if before else set()
    now_alarms = set(after.battery.alarms)
    events = [EventDraft(EventKind.ALARM_RAISED, alarm=a) for a in sorted(now_alarms - was_alarms)]
    events += [
        EventDraft(EventKind.ALARM_CLEARED, alarm=a) for a in sorted(was_alarms - now_alarms)
    ]
    previous = {p.port: p for p in before.ports} if before else {}
    for port in after.ports:
        events += _port_events(previous.get(port.port), port)
    return events


def _port_events(before: PortState | None, after: PortState) -> list[EventDraft]:
    was_faulted = before is not None and before.status == PortStatus.FAULTED
    is_faulted = after.status == PortStatus.FAULTED
    if is_faulted and not was_faulted:
        return [EventDraft(EventKind.PORT_FAULTED, port=after.port, error=after.error)]
    if was_faulted and not is_faulted:
        return [EventDraft(EventKind.PORT_RECOVERED, port=after.port, error=after.error)]
    if is_faulted:
        return []
    # A port still working but reporting an error (WARNING): an alarm on that port.
    was_error = before.error if before is not None else PortError.NONE
    if after.error == was_error:
        return []
    events = []
    if was_error != PortError.NONE:
        events.append(
            EventDraft(EventKind.ALARM_CLEARED, port=after.port, alarm=f"port_{was_error}")
        )
    if after.error != PortError.NONE:
        events.append(
            EventDraft(
                EventKind.ALARM_RAISED,
                port=after.port,
                alarm=f"port_{after.error}",
                error=after.error,
            )
        )
    return events


def _moved(before: float | None, after: float | None, deadband: float) -> bool:
    if before is None or after is None:
        return before is not after
    return abs(after - before) >= deadband


def _battery_moved(before: BatteryState, after: BatteryState) -> bool:
    return (
        before.state != after.state
        or before.alarms != after.alarms
        or _moved(before.soc_pct, after.soc_pct, SOC_DEADBAND_PCT)
        or _moved(before.temp_c, after.temp_c, TEMP_DEADBAND_C)
        or _moved(before.power_w, after.power_w, BATTERY_POWER_DEADBAND_W)
    )


def _port_moved(before: PortState, after: PortState) -> bool:
    return (
        before.status != after.status
        or before.error != after.error
        or before.occupied != after.occupied
        or before.enabled != after.enabled
        or before.display_code != after.display_code
        or _moved(before.power_w, after.power_w, PORT_POWER_DEADBAND_W)
        or _moved(before.temp_c, after.temp_c, TEMP_DEADBAND_C)
    )
