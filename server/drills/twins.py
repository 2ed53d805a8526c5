"""How a drill stands beside the real stations: twins, their names, the scenario's batteries.

Pure: the service (`server.drills.service`) writes what these decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

MARK_JA: Final = "【訓練】"
MARK_EN: Final = "[DRILL] "
"""Every message and view that names a twin names it so: crews and residents cannot take a
drill's alert or booking for a real one."""
GATEWAY_PREFIX: Final = "drill-"


@dataclass(frozen=True, slots=True)
class RealStation:
    id: str
    name_ja: str
    name_en: str


@dataclass(frozen=True, slots=True)
class Twin:
    id: str
    of: str
    """The real station's id."""
    name_ja: str
    name_en: str


def gateway_of(drill_id: int) -> str:
    """The drill's gateway id: the simulator's batteries come in under it."""
    return f"{GATEWAY_PREFIX}{drill_id}"


def twins_of(drill_id: int, stations: Sequence[RealStation]) -> list[Twin]:
    """One twin per real station, in the stations' order."""
    return [
        Twin(
            id=f"drill{drill_id}-{s.id}"[:64],
            of=s.id,
            name_ja=f"{MARK_JA}{s.name_ja}"[:200],
            name_en=f"{MARK_EN}{s.name_en or s.name_ja}"[:200],
        )
        for s in stations
    ]


def place_units(units: Sequence[str], twins: Sequence[Twin]) -> dict[str, str]:
    """Each scenario battery (`bus.unit`, as the gateway names it) -> a twin's id.

    A bus is one shelter's line in a scenario, so a bus's batteries stay together: the
    buses, in the scenario's order, go to the twins in turn (round again past the last).
    """
    if not twins:
        raise ValueError("a drill needs at least one station")
    buses: list[str] = []
    for unit in units:
        bus = unit.rpartition(".")[0] or unit
        if bus not in buses:
            buses.append(bus)
    station_of_bus = {bus: twins[n % len(twins)].id for n, bus in enumerate(buses)}
    return {unit: station_of_bus[unit.rpartition(".")[0] or unit] for unit in units}
