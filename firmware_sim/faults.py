"""Fault injection as data: what can go wrong with a battery, and how to apply and clear it.

A `Fault` is a plain value (it comes from the control API, the CLI or a scenario file);
`apply_fault` and `clear_fault` change a `SimBattery` so that its registers, and the line
it sits on, show the trouble. Clearing restores what the fault took away; with
`latch_alarms` the port fault and the alarms stay latched until the master writes AlmRst,
as on a real battery.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from firmware_sim.battery import SimBattery
from firmware_sim.errors import FaultError
from protocol.payloads import PortError

OVER_TEMP_C: Final = 65.0
LOW_SOC_PCT: Final = 4.0


class FaultKind(StrEnum):
    PORT_FAULT = "port_fault"
    """A port stops with an error code (DCSta ERROR, DCAlrm bit)."""
    OVER_TEMP = "over_temp"
    """The pack runs hot: Evt1 over_temp_alarm, ports still work but report WARNING."""
    LOW_SOC = "low_soc"
    """SoC forced down to 4 %: Evt1 under_soc_min_warning (and _alarm)."""
    BATTERY_FAULT = "battery_fault"
    """802 State FAULT: the pack stops giving power to every port."""
    SILENT = "silent"
    """The unit stops answering on the line."""
    SLOW = "slow"
    """Answers come `delay_ms` late."""
    GARBAGE = "garbage"
    """The unit answers with random bytes instead of frames."""
    PORT_DISABLED = "port_disabled"
    """The port is switched off locally (vendor Ena = 0)."""


PORT_KINDS: Final = frozenset({FaultKind.PORT_FAULT, FaultKind.PORT_DISABLED})

FaultKey = tuple[FaultKind, int | None]
"""What identifies an active fault on a unit: its kind and, for port kinds, the port."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault on one unit; `port` is 1-based."""

    kind: FaultKind
    port: int | None = None
    error: PortError | None = None
    delay_ms: int | None = None

    @property
    def key(self) -> FaultKey:
        return (self.kind, self.port if self.kind in PORT_KINDS else None)

    def as_dict(self) -> dict[str, str | int]:
        """JSON-ready, without the unset fields."""
        out: dict[str, str | int] = {"kind": self.kind.value}
        if self.port is not None:
            out["port"] = self.port
        if self.error is not None:
            out["error"] = self.error.value
        if self.delay_ms is not None:
            out["delay_ms"] = self.delay_ms
        return out


def check_fault(battery: SimBattery, fault: Fault) -> None:
    """FaultError when `fault` makes no sense for this battery."""
    if fault.kind in PORT_KINDS:
        _index(battery, fault)
    if fault.kind == FaultKind.PORT_FAULT and fault.error in (None, PortError.NONE):
        raise FaultError(fault.kind, "needs an error code other than 'none'")
    if fault.kind == FaultKind.SLOW and (fault.delay_ms is None or fault.delay_ms < 0):
        raise FaultError(fault.kind, "needs delay_ms >= 0")


def apply_fault(battery: SimBattery, fault: Fault) -> None:
    """Make the battery show `fault`; FaultError if it does not fit the battery."""
    check_fault(battery, fault)
    _set(battery, fault, on=True)


def clear_fault(battery: SimBattery, fault: Fault) -> None:
    """Undo `fault` (only its kind and port matter)."""
    _set(battery, fault, on=False)


def _set(battery: SimBattery, fault: Fault, *, on: bool) -> None:
    kind = fault.kind
    if kind == FaultKind.PORT_FAULT:
        port = battery.ports[_index(battery, fault)]
        port.fault = fault.error if on else None
    elif kind == FaultKind.PORT_DISABLED:
        battery.ports[_index(battery, fault)].enabled = not on
    elif kind == FaultKind.OVER_TEMP:
        battery.temp_override_c = OVER_TEMP_C if on else None
    elif kind == FaultKind.LOW_SOC:
        battery.soc_override_pct = LOW_SOC_PCT if on else None
    elif kind == FaultKind.BATTERY_FAULT:
        battery.battery_fault = on
    elif kind == FaultKind.SILENT:
        battery.link.silent = on
    elif kind == FaultKind.SLOW:
        battery.link.delay_s = (fault.delay_ms or 0) / 1000.0 if on else 0.0
    elif kind == FaultKind.GARBAGE:
        battery.link.garbage = on


def _index(battery: SimBattery, fault: Fault) -> int:
    if fault.port is None or not 1 <= fault.port <= len(battery.ports):
        raise FaultError(fault.kind, f"needs a port in 1..{len(battery.ports)}")
    return fault.port - 1
