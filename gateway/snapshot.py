"""From registers to the contract: a battery's models decoded into `BatteryState` and ports.

Pure functions over a `RegisterImage`; the poller around them does the Modbus I/O.
Works for our batteries (with the vendor model) and for plain SunSpec batteries, whose
vendor-only fields (occupied, enabled, display code, session) come out as None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gateway.discovery import RegisterImage, UnitLayout, model_body
from protocol.payloads import BatteryState, PortError, PortState, PortStatus
from protocol.sunspec import (
    BATTERY,
    BATTERY_EVT1,
    BATTERY_STATE,
    DC_ALARM_BITS,
    DC_ALARM_ERRORS,
    DC_MEASUREMENT,
    DC_STATUS,
    RawValue,
    decode_model,
    scaled,
)
from protocol.vendor_model import VENDOR

CHARGING_MIN_W: Final = 0.5
"""Below this a plugged phone is taken as full (`finishing`), not charging."""
_ERROR_BITS: Final = tuple(
    (1 << DC_ALARM_BITS[name], PortError(code)) for name, code in DC_ALARM_ERRORS.items()
)


@dataclass(frozen=True, slots=True)
class UnitReading:
    """What one poll of a unit says, before it is stamped with seq and ts."""

    battery: BatteryState
    ports: list[PortState]


def decode_unit(layout: UnitLayout, image: RegisterImage) -> UnitReading:
    """Decode a poll. LookupError when the unit's layout changed under us."""
    battery_body = model_body(layout, BATTERY.model_id, image)
    dc_body = model_body(layout, DC_MEASUREMENT.model_id, image)
    if battery_body is None or dc_body is None:
        raise LookupError("battery or DC measurement model missing")
    vendor_body = model_body(layout, VENDOR.model_id, image)
    battery = decode_model(BATTERY, battery_body).fixed
    dc = decode_model(DC_MEASUREMENT, dc_body)
    vendor = decode_model(VENDOR, vendor_body) if vendor_body is not None else None
    vendor_fixed = vendor.fixed if vendor else {}
    vendor_ports = vendor.groups if vendor else []
    ports = [
        port_state(i + 1, dc.fixed, group, vendor_ports[i] if i < len(vendor_ports) else None)
        for i, group in enumerate(dc.groups)
    ]
    return UnitReading(battery_state(battery, vendor_fixed), ports)


def battery_state(points: dict[str, RawValue], vendor: dict[str, RawValue]) -> BatteryState:
    """Model 802 (and the vendor model's temperature) as the contract's battery."""
    evt1 = points["Evt1"]
    state = points["State"]
    return BatteryState(
        soc_pct=scaled(points["SoC"], points["SoC_SF"]),
        soh_pct=scaled(points["SoH"], points["SoH_SF"]),
        voltage_v=scaled(points["V"], points["V_SF"]),
        current_a=scaled(points["A"], points["A_SF"]),
        power_w=scaled(points["W"], points["W_SF"]),
        temp_c=scaled(vendor.get("BatTmp"), vendor.get("Tmp_SF")),
        rated_wh=scaled(points["WHRtg"], points["WHRtg_SF"]),
        state=BATTERY_STATE.get(state) if isinstance(state, int) else None,
        alarms=alarm_names(evt1 if isinstance(evt1, int) else 0),
    )


def alarm_names(evt1: int) -> list[str]:
    """Set Evt1 bits by name, in bit order."""
    return [name for bit, name in enumerate(BATTERY_EVT1) if evt1 >> bit & 1]


def port_state(
    number: int,
    dc_fixed: dict[str, RawValue],
    dc: dict[str, RawValue],
    vendor: dict[str, RawValue] | None,
) -> PortState:
    """One `Prt` group of model 714, with its vendor-model twin when the battery has one."""
    alarm_bits = dc["DCAlrm"] if isinstance(dc["DCAlrm"], int) else 0
    error, vendor_code = port_error(alarm_bits)
    power_w = scaled(dc["DCW"], dc_fixed["DCW_SF"])
    dc_status = DC_STATUS.get(dc["DCSta"]) if isinstance(dc["DCSta"], int) else None
    occupied = enabled = None
    display_code: str | None = None
    session_s: int | None = None
    if vendor is not None:
        occupied = vendor["Occ"] == 1 if vendor["Occ"] is not None else None
        enabled = vendor["Ena"] == 1 if vendor["Ena"] is not None else None
        display_code = vendor["Code"] if isinstance(vendor["Code"], str) else None
        session_s = vendor["SesS"] if isinstance(vendor["SesS"], int) else None
    return PortState(
        port=number,
        status=port_status(dc_status, occupied, enabled, power_w),
        occupied=occupied,
        enabled=enabled,
        power_w=power_w,
        energy_wh=scaled(dc["DCWhInj"], dc_fixed["DCWH_SF"]),
        temp_c=scaled(dc["Tmp"], dc_fixed["Tmp_SF"]),
        error=error,
        vendor_code=vendor_code,
        display_code=display_code,
        session_s=session_s,
    )


def port_status(
    dc_status: str | None, occupied: bool | None, enabled: bool | None, power_w: float | None
) -> PortStatus:
    """OCPP-style status from DCSta, refined by the vendor model's Occupied and Enabled."""
    if enabled is False:
        return PortStatus.UNAVAILABLE
    if dc_status == "ERROR":
        return PortStatus.FAULTED
    if occupied is None:  # plain SunSpec: DCSta is all there is
        return PortStatus.CHARGING if dc_status in ("ON", "WARNING") else PortStatus.AVAILABLE
    if not occupied:
        return PortStatus.AVAILABLE
    return PortStatus.CHARGING if (power_w or 0.0) >= CHARGING_MIN_W else PortStatus.FINISHING


def port_error(alarm_bits: int) -> tuple[PortError, int | None]:
    """The OCPP-style error for DCAlrm bits; unmapped bits are `other` with the raw bits."""
    if not alarm_bits:
        return PortError.NONE, None
    for mask, error in _ERROR_BITS:
        if alarm_bits & mask:
            return error, None
    return PortError.OTHER, alarm_bits
