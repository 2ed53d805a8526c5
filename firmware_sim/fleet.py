"""Every simulated battery by (line, unit id), with its faults and its random stream.

The control API, scheduled faults and the physics clock all go through here, so a fault
injected over HTTP and one from a scenario file take the same path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from firmware_sim.battery import SimBattery
from firmware_sim.errors import FaultError, UnknownUnit
from firmware_sim.faults import Fault, FaultKey, apply_fault, clear_fault
from firmware_sim.physics import PhysicsConfig, advance, new_phone, plug, unplug
from firmware_sim.scenario import Scenario

DC_STATUS_NAMES = ("off", "on", "warning", "error")


@dataclass
class Unit:
    """One battery on one line, its active faults and its own random stream."""

    line: str
    battery: SimBattery
    physics: PhysicsConfig
    rng: random.Random
    faults: dict[FaultKey, Fault] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """What `GET /units` shows of this unit."""
        battery = self.battery
        return {
            "line": self.line,
            "unit_id": battery.unit_id,
            "ports": len(battery.ports),
            "soc_pct": round(battery.effective_soc_pct, 2),
            "temp_c": round(battery.effective_temp_c, 2),
            "state": battery.state,
            "evt1": battery.evt1(),
            "vendor_model": battery.vendor_model,
            "port_states": [
                {
                    "port": i + 1,
                    "enabled": port.enabled,
                    "occupied": port.occupied,
                    "power_w": round(battery.port_power_w(i), 2),
                    "energy_wh": round(port.energy_wh, 3),
                    "status": DC_STATUS_NAMES[battery.port_status(i)],
                    "alarms": battery.port_alarms(i),
                    "display_code": port.display_code,
                }
                for i, port in enumerate(battery.ports)
            ],
            "faults": [fault.as_dict() for fault in self.faults.values()],
            "requests": battery.reads,
            "registers_read": battery.registers_read,
        }


class Fleet:
    """All units, addressed as (line name, unit id)."""

    def __init__(self, units: list[Unit]) -> None:
        self.units = {(unit.line, unit.battery.unit_id): unit for unit in units}

    def unit(self, line: str, unit_id: int) -> Unit:
        try:
            return self.units[(line, unit_id)]
        except KeyError:
            raise UnknownUnit(line, unit_id) from None

    def on_line(self, line: str) -> dict[int, SimBattery]:
        """The batteries sharing one line, by unit id."""
        return {uid: unit.battery for (name, uid), unit in self.units.items() if name == line}

    def inject(self, line: str, unit_id: int, fault: Fault) -> None:
        unit = self.unit(line, unit_id)
        apply_fault(unit.battery, fault)
        unit.faults[fault.key] = fault

    def clear(self, line: str, unit_id: int, fault: Fault) -> None:
        """Clear the active fault of this kind (and port); FaultError if there is none."""
        unit = self.unit(line, unit_id)
        active = unit.faults.pop(fault.key, None)
        if active is None:
            raise FaultError(fault.kind, f"not active on {line}.{unit_id}")
        clear_fault(unit.battery, active)

    def set_phone(self, line: str, unit_id: int, port: int, plugged: bool) -> None:
        """Plug a phone in (a fresh one from the unit's stream) or take it away."""
        unit = self.unit(line, unit_id)
        if not 1 <= port <= len(unit.battery.ports):
            raise FaultError("phone", f"port must be in 1..{len(unit.battery.ports)}")
        if plugged:
            plug(unit.battery, port - 1, new_phone(unit.rng, unit.physics), unit.physics)
        else:
            unplug(unit.battery, port - 1)

    def advance(self, dt_s: float) -> None:
        """Move every battery on by `dt_s` simulated seconds."""
        for unit in self.units.values():
            advance(unit.battery, dt_s, unit.rng, unit.physics)


def build_fleet(scenario: Scenario, *, plain_sunspec: bool = False) -> Fleet:
    """Batteries for every unit in the scenario, each with a stream from the seed."""
    units = []
    for bus in [*scenario.line, *scenario.tcp]:
        for spec in bus.units:
            settings = spec.resolved(scenario.defaults)
            battery = SimBattery.create(
                spec.unit_id,
                settings.ports,
                rated_wh=settings.rated_wh,
                soc_pct=settings.soc_pct,
                soh_pct=settings.soh_pct,
                temp_c=settings.ambient_c,
                ambient_c=settings.ambient_c,
                vendor_model=settings.vendor_model and not plain_sunspec,
                latch_alarms=settings.latch_alarms,
                serial_number=f"CN-{bus.name}-{spec.unit_id:03d}"[:32],
            )
            physics = PhysicsConfig(arrival_rate_per_h=settings.arrival_rate_per_h)
            rng = random.Random(f"{scenario.seed}:{bus.name}:{spec.unit_id}")
            units.append(Unit(bus.name, battery, physics, rng))
    return Fleet(units)
