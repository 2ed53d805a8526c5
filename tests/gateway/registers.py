"""A battery's register map built straight from the protocol tables, for pure gateway tests."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import UnitUnreachable
from protocol.sunspec import (
    BATTERY,
    COMMON,
    DC_MEASUREMENT,
    SUNS_BASE,
    SUNS_MARKER,
    RawValue,
    encode_model,
)
from protocol.vendor_model import VENDOR

BATTERY_VALUES: dict[str, RawValue] = {
    "WHRtg": 2000, "WHRtg_SF": 0, "SoC": 815, "SoC_SF": -1, "SoH": 970, "SoH_SF": -1,
    "V": 512, "V_SF": -1, "A": -310, "A_SF": -2, "W": -1587, "W_SF": -1, "State": 3, "Evt1": 0,
}  # fmt: skip
DC_FIXED: dict[str, RawValue] = {
    "DCA_SF": -2, "DCV_SF": -2, "DCW_SF": -2, "DCWH_SF": -3, "Tmp_SF": -1,
}  # fmt: skip


def dc_port(
    power_w: float = 0.0, status: int = 0, alarm: int = 0, energy_wh: float = 0.0
) -> dict[str, RawValue]:
    return {
        "DCW": round(power_w * 100), "DCV": 500, "DCA": 0, "DCWhInj": round(energy_wh * 1000),
        "Tmp": 302, "DCSta": status, "DCAlrm": alarm,
    }  # fmt: skip


def vendor_port(
    occupied: bool = False, enabled: bool = True, code: str = ""
) -> dict[str, RawValue]:
    return {"Occ": int(occupied), "Ena": int(enabled), "Code": code, "SesS": 0}


class FakeUnit:
    """Registers from SUNS_BASE on, as a device would hold them."""

    def __init__(
        self,
        dc_ports: Sequence[dict[str, RawValue]],
        vendor_ports: Sequence[dict[str, RawValue]] | None,
        battery: dict[str, RawValue] | None = None,
    ) -> None:
        image = [*SUNS_MARKER, *encode_model(COMMON, {"Mn": "chargenet", "Md": "sim"})]
        image += encode_model(BATTERY, {**BATTERY_VALUES, **(battery or {})})
        image += encode_model(DC_MEASUREMENT, {**DC_FIXED, "NPrt": len(dc_ports)}, dc_ports)
        if vendor_ports is not None:
            fixed = {"NPrt": len(vendor_ports), "BatTmp": 314, "Tmp_SF": -1}
            image += encode_model(VENDOR, fixed, vendor_ports)
        image += [0xFFFF, 0]
        self.registers = image
        self.silent = False
        self.reads: list[tuple[int, int]] = []
        self.writes: list[tuple[int, list[int]]] = []


class FakeLink:
    """The RegisterLink seam over FakeUnits; a silent unit raises UnitUnreachable."""

    def __init__(self, units: dict[int, FakeUnit]) -> None:
        self.units = units

    async def read(self, unit_id: int, address: int, count: int) -> list[int]:
        unit = self._unit(unit_id)
        if count > 125:
            raise AssertionError(f"read of {count} registers breaks the Modbus limit")
        unit.reads.append((address, count))
        at = address - SUNS_BASE
        return unit.registers[at : at + count]

    async def write(self, unit_id: int, address: int, values: Sequence[int]) -> None:
        unit = self._unit(unit_id)
        unit.writes.append((address, list(values)))
        at = address - SUNS_BASE
        unit.registers[at : at + len(values)] = values

    def _unit(self, unit_id: int) -> FakeUnit:
        unit = self.units.get(unit_id)
        if unit is None or unit.silent:
            raise UnitUnreachable("bus", unit_id, "timeout")
        return unit
