"""A simulated charging battery: its state, and the SunSpec register image it serves.

The state is plain engineering values (watts, volts, percent); the register image is
rendered from it with `protocol.sunspec`'s own tables, so the simulator and the gateway
can never disagree about an offset. Physics and faults change the state; reads render it;
writes go only to the few points a real battery lets a master change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from firmware_sim.errors import IllegalAddress, IllegalValue
from protocol.payloads import PortError
from protocol.sunspec import (
    BATTERY,
    BATTERY_EVT1,
    COMMON,
    DC_ALARM_BITS,
    DC_ALARM_ERRORS,
    DC_MEASUREMENT,
    END_MODEL_ID,
    HEADER_LEN,
    SUNS_BASE,
    SUNS_MARKER,
    RawValue,
    encode_model,
    encode_string,
    to_raw,
)
from protocol.vendor_model import DISPLAY_CODE_REGS, VENDOR

SCALE: Final = {
    "AHRtg_SF": -1, "WHRtg_SF": 0, "WChaDisChaMax_SF": 0, "SoC_SF": -1, "SoH_SF": -1,
    "V_SF": -1, "A_SF": -2, "W_SF": 0,
    "DCA_SF": -2, "DCV_SF": -2, "DCW_SF": -2, "DCWH_SF": -3, "Tmp_SF": -1,
}  # fmt: skip
"""The scale factors this battery reports (a master must read them, never assume them)."""

DC_OFF, DC_ON, DC_WARNING, DC_ERROR = 0, 1, 2, 3
STATE_CONNECTED: Final = 3
STATE_FAULT: Final = 99
CHA_ST_DISCHARGING: Final = 3
CHA_ST_HOLDING: Final = 6
TYP_LITHIUM_ION: Final = 4
PRT_TYP_INJ: Final = 3

NOMINAL_V: Final = 51.2
PORT_HOT_C: Final = 55.0
"""A port this hot still delivers but reports WARNING."""
BATTERY_WARN_C: Final = 50.0
BATTERY_ALARM_C: Final = 60.0
SOC_WARNING_PCT: Final = 15.0
SOC_ALARM_PCT: Final = 5.0
FINISHING_W: Final = 0.2
"""A full phone still draws a trickle: occupied, DCSta ON, well under 1 W."""

ERROR_ALARM_BIT: Final = {error: DC_ALARM_BITS[name] for name, error in DC_ALARM_ERRORS.items()}
"""OCPP-style error code -> the DCAlrm bit a faulted port raises."""
OTHER_ALARM_BIT: Final = DC_ALARM_BITS["GROUND_FAULT"]
EVT1_BIT: Final = {name: bit for bit, name in enumerate(BATTERY_EVT1)}


def alarm_bit(error: PortError) -> int:
    """The DCAlrm bit for a port error code (`other` -> GROUND_FAULT)."""
    return ERROR_ALARM_BIT.get(error.value, OTHER_ALARM_BIT)


@dataclass
class Phone:
    """A phone on a port: what it still takes, how hard it pulls, how long it stays full."""

    need_wh: float
    max_w: float
    stay_full_s: float
    full_s: float = 0.0

    @property
    def full(self) -> bool:
        return self.need_wh <= 0.0


@dataclass
class Port:
    """One USB port; `fault` is an injected error, `latched` the DCAlrm bits not yet reset."""

    enabled: bool = True
    phone: Phone | None = None
    power_w: float = 0.0
    """What the phone draws; the port gives it only while it may deliver."""
    energy_wh: float = 0.0
    """Energy injected since the battery was made (SunSpec DCWhInj is a lifetime counter)."""
    session_s: float = 0.0
    display_code: str = ""
    fault: PortError | None = None
    latched: int = 0

    @property
    def occupied(self) -> bool:
        return self.phone is not None


@dataclass
class Link:
    """How the unit behaves on the line: silent, slow, or chattering garbage."""

    silent: bool = False
    delay_s: float = 0.0
    garbage: bool = False


@dataclass(frozen=True, slots=True)
class _Writable:
    """A register a master may write: which point, which port, which register of it."""

    point: str
    port: int = 0
    index: int = 0


@dataclass
class SimBattery:
    """One battery (one Modbus unit id) with N ports."""

    unit_id: int
    ports: list[Port]
    rated_wh: float = 2000.0
    soc_pct: float = 80.0
    soh_pct: float = 97.0
    temp_c: float = 25.0
    ambient_c: float = 25.0
    vendor_model: bool = True
    latch_alarms: bool = True
    """Alarms and port faults stay set after their cause is gone until AlmRst is written."""
    heartbeat: int = 0
    cycles: int = 12
    serial_number: str = ""
    temp_override_c: float | None = None
    soc_override_pct: float | None = None
    battery_fault: bool = False
    link: Link = field(default_factory=Link)
    latched_evt1: int = 0
    reads: int = 0
    """Read requests answered: the benchmark and tests count polls from the device side."""
    registers_read: int = 0
    _writable: dict[int, _Writable] = field(init=False, repr=False)
    _length: int = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.serial_number:
            self.serial_number = f"CN-SIM-{self.unit_id:03d}"
        self._writable, self._length = _layout(len(self.ports), self.vendor_model)

    @classmethod
    def create(cls, unit_id: int, ports: int, **kwargs: Any) -> SimBattery:
        """A battery with `ports` idle, enabled ports."""
        return cls(unit_id, [Port() for _ in range(ports)], **kwargs)

    # -- what the outside sees -------------------------------------------------------------

    @property
    def effective_soc_pct(self) -> float:
        soc = self.soc_pct
        return soc if self.soc_override_pct is None else min(soc, self.soc_override_pct)

    @property
    def effective_temp_c(self) -> float:
        return self.temp_c if self.temp_override_c is None else self.temp_override_c

    @property
    def load_w(self) -> float:
        """Power leaving the battery: the ports plus conversion losses and the controller."""
        ports = sum(self.port_power_w(i) for i in range(len(self.ports)))
        return ports / 0.92 + 2.0

    @property
    def voltage_v(self) -> float:
        return 48.0 + 6.0 * self.effective_soc_pct / 100.0

    @property
    def state(self) -> int:
        return STATE_FAULT if self.battery_fault else STATE_CONNECTED

    def active_evt1(self) -> int:
        """Evt1 bits whose cause is present now."""
        temp, soc = self.effective_temp_c, self.effective_soc_pct
        names = []
        if temp >= BATTERY_ALARM_C:
            names.append("over_temp_alarm")
        if temp >= BATTERY_WARN_C:
            names.append("over_temp_warning")
        if soc < SOC_ALARM_PCT:
            names.append("under_soc_min_alarm")
        if soc < SOC_WARNING_PCT:
            names.append("under_soc_min_warning")
        bits = 0
        for name in names:
            bits |= 1 << EVT1_BIT[name]
        return bits

    def evt1(self) -> int:
        """Evt1 as reported: active bits, plus latched alarm bits until AlmRst."""
        active = self.active_evt1()
        if self.latch_alarms:
            alarms = sum(1 << EVT1_BIT[n] for n in BATTERY_EVT1 if n.endswith("_alarm"))
            self.latched_evt1 |= active & alarms
            return active | self.latched_evt1
        return active

    def port_alarms(self, index: int) -> int:
        """DCAlrm as reported: the injected fault's bit, plus latched bits until AlmRst."""
        port = self.ports[index]
        active = 0 if port.fault is None else 1 << alarm_bit(port.fault)
        if self.latch_alarms:
            port.latched |= active
            return active | port.latched
        return active

    def port_faulted(self, index: int) -> bool:
        return self.port_alarms(index) != 0

    def port_delivers(self, index: int) -> bool:
        """Whether the port may give power now (physics asks before drawing)."""
        if self.battery_fault or self.effective_soc_pct <= 0.0:
            return False
        return self.ports[index].enabled and not self.port_faulted(index)

    def port_power_w(self, index: int) -> float:
        """What the port gives: the phone's draw, or nothing when the port may not deliver."""
        return self.ports[index].power_w if self.port_delivers(index) else 0.0

    def port_current_a(self, index: int) -> float:
        volts = self.port_voltage_v(index)
        return self.port_power_w(index) / volts if volts else 0.0

    def port_voltage_v(self, index: int) -> float:
        """USB VBUS: 9 V under a fast-charge contract, 5 V otherwise, 0 V when off."""
        if not self.port_delivers(index):
            return 0.0
        return 9.0 if self.port_power_w(index) > 10.0 else 5.0

    def port_status(self, index: int) -> int:
        """DCSta: ERROR when faulted, WARNING when hot but working, ON when giving power."""
        if self.port_faulted(index):
            return DC_ERROR
        if self.port_power_w(index) <= 0.0:
            return DC_OFF
        return DC_WARNING if self.port_temp_c(index) >= PORT_HOT_C else DC_ON

    def port_temp_c(self, index: int) -> float:
        """A port runs warmer than the pack by its own load."""
        return self.effective_temp_c + 0.5 * self.port_power_w(index)

    def reset_alarms(self) -> None:
        """AlmRst: forget latched alarms and faults whose cause is gone."""
        self.latched_evt1 = 0
        for port in self.ports:
            port.latched = 0

    # -- registers ---------------------------------------------------------------------------

    @property
    def register_count(self) -> int:
        """Registers from SUNS_BASE through the end marker."""
        return self._length

    def registers(self) -> list[int]:
        """The whole image from SUNS_BASE: marker, models 1, 802, 714, vendor, end."""
        image = [*SUNS_MARKER]
        image += encode_model(COMMON, self._common())
        image += encode_model(BATTERY, self._battery())
        image += encode_model(DC_MEASUREMENT, *self._dc())
        if self.vendor_model:
            image += encode_model(VENDOR, *self._vendor())
        image += [END_MODEL_ID, 0]
        return image

    def read(self, address: int, count: int) -> list[int]:
        """Holding registers `address`.. (protocol address); IllegalAddress outside the map."""
        start = address - SUNS_BASE
        if start < 0 or start + count > self._length:
            raise IllegalAddress(f"{address}+{count} is outside {SUNS_BASE}+{self._length}")
        self.reads += 1
        self.registers_read += count
        return self.registers()[start : start + count]

    def write(self, address: int, values: Sequence[int]) -> None:
        """Write registers; all of them must be writable points, or nothing is written."""
        targets = [self._writable.get(address + i) for i in range(len(values))]
        if any(t is None for t in targets):
            raise IllegalAddress(f"{address}+{len(values)} is not writable")
        for target, value in zip(targets, values, strict=True):
            assert target is not None
            if target.point == "Ena" and value not in (0, 1):
                raise IllegalValue(f"Ena must be 0 or 1, not {value}")
            if target.point == "Code" and any(b > 0x7E for b in value.to_bytes(2, "big")):
                raise IllegalValue(f"Code must be ASCII, not {value:#06x}")
        for target, value in zip(targets, values, strict=True):
            assert target is not None
            self._apply_write(target, value)

    def _apply_write(self, target: _Writable, value: int) -> None:
        if target.point == "AlmRst":
            self.reset_alarms()
        elif target.point == "Ena":
            self.ports[target.port].enabled = value == 1
        else:
            port = self.ports[target.port]
            regs = encode_string(port.display_code, DISPLAY_CODE_REGS)
            regs[target.index] = value
            raw = b"".join(r.to_bytes(2, "big") for r in regs)
            port.display_code = raw.split(b"\0", 1)[0].decode("ascii")

    # -- model values ------------------------------------------------------------------------

    def _common(self) -> dict[str, RawValue]:
        return {
            "Mn": "chargenet",
            "Md": "CN-SIM-USB" if self.vendor_model else "CN-SIM-BAT",
            "Vr": "0.1.0",
            "SN": self.serial_number,
            "DA": self.unit_id,
        }

    def _battery(self) -> dict[str, RawValue]:
        load = self.load_w
        volts = self.voltage_v
        return {
            "AHRtg": _raw(self.rated_wh / NOMINAL_V, "AHRtg_SF"),
            "WHRtg": _raw(self.rated_wh, "WHRtg_SF"),
            "WChaRteMax": _raw(500.0, "WChaDisChaMax_SF"),
            "WDisChaRteMax": _raw(len(self.ports) * 18.0 / 0.92 + 2.0, "WChaDisChaMax_SF"),
            "SoCMax": _raw(100.0, "SoC_SF"),
            "SoCMin": _raw(SOC_ALARM_PCT, "SoC_SF"),
            "SoC": _raw(self.effective_soc_pct, "SoC_SF"),
            "SoH": _raw(self.soh_pct, "SoH_SF"),
            "NCyc": self.cycles,
            "ChaSt": CHA_ST_DISCHARGING if load > 2.5 else CHA_ST_HOLDING,
            "LocRemCtl": 0,
            "Hb": self.heartbeat & 0xFFFF,
            "AlmRst": 0,
            "Typ": TYP_LITHIUM_ION,
            "State": self.state,
            "Evt1": self.evt1(),
            "Evt2": 0,
            "V": _raw(volts, "V_SF"),
            "VMax": _raw(54.6, "V_SF"),
            "VMin": _raw(44.0, "V_SF"),
            "A": _raw(-load / volts, "A_SF"),
            "W": _raw(-load, "W_SF"),
            **{name: sf for name, sf in SCALE.items() if name in _BATTERY_SF},
        }

    def _dc(self) -> tuple[dict[str, RawValue], list[dict[str, RawValue]]]:
        groups: list[dict[str, RawValue]] = []
        alarms_all = 0
        n = len(self.ports)
        for i, port in enumerate(self.ports):
            alarms = self.port_alarms(i)
            power = self.port_power_w(i)
            alarms_all |= alarms
            groups.append(
                {
                    "PrtTyp": PRT_TYP_INJ,
                    "ID": i + 1,
                    "IDStr": f"USB-{i + 1}",
                    "DCA": _raw(self.port_current_a(i), "DCA_SF"),
                    "DCV": _raw(self.port_voltage_v(i), "DCV_SF"),
                    "DCW": _raw(power, "DCW_SF"),
                    "DCWhInj": _raw(port.energy_wh, "DCWH_SF", wide=True),
                    "Tmp": _raw(self.port_temp_c(i), "Tmp_SF"),
                    "DCSta": self.port_status(i),
                    "DCAlrm": alarms,
                }
            )
        fixed: dict[str, RawValue] = {
            "PrtAlrms": alarms_all,
            "NPrt": len(self.ports),
            "DCA": _raw(sum(self.port_current_a(i) for i in range(n)), "DCA_SF"),
            "DCW": _raw(sum(self.port_power_w(i) for i in range(n)), "DCW_SF"),
            "DCWhInj": _raw(sum(p.energy_wh for p in self.ports), "DCWH_SF", wide=True),
            **{name: SCALE[name] for name in ("DCA_SF", "DCV_SF", "DCW_SF", "DCWH_SF", "Tmp_SF")},
        }
        return fixed, groups

    def _vendor(self) -> tuple[dict[str, RawValue], list[dict[str, RawValue]]]:
        fixed: dict[str, RawValue] = {
            "NPrt": len(self.ports),
            "BatTmp": _raw(self.effective_temp_c, "Tmp_SF"),
            "Tmp_SF": SCALE["Tmp_SF"],
        }
        groups: list[dict[str, RawValue]] = [
            {
                "Occ": int(port.occupied),
                "Ena": int(port.enabled),
                "Code": port.display_code,
                "SesS": int(port.session_s),
            }
            for port in self.ports
        ]
        return fixed, groups


_BATTERY_SF: Final = frozenset(p.name for p in BATTERY.fixed if p.type == "sunssf")


def _raw(value: float, sf_name: str, *, wide: bool = False) -> int:
    """The stored integer; a 16-bit one is clamped so it never wraps into a sentinel."""
    raw = to_raw(value, SCALE[sf_name])
    assert raw is not None
    return raw if wide else max(-0x7FFF, min(raw, 0x7FFF))


def _body_address(model_start: int) -> int:
    """Address of the first register after the header of a model at image offset `model_start`."""
    return SUNS_BASE + model_start + HEADER_LEN


def _layout(ports: int, vendor_model: bool) -> tuple[dict[int, _Writable], int]:
    """Writable registers by address, and the image length; fixed for a battery's life."""
    at = len(SUNS_MARKER)
    at += HEADER_LEN + COMMON.length()
    writable = {_body_address(at) + BATTERY.offset("AlmRst"): _Writable("AlmRst")}
    at += HEADER_LEN + BATTERY.length()
    at += HEADER_LEN + DC_MEASUREMENT.length(ports)
    if vendor_model:
        body = _body_address(at)
        for port in range(ports):
            writable[body + VENDOR.offset("Ena", port)] = _Writable("Ena", port)
            for index in range(DISPLAY_CODE_REGS):
                writable[body + VENDOR.offset("Code", port) + index] = _Writable(
                    "Code", port, index
                )
        at += HEADER_LEN + VENDOR.length(ports)
    return writable, at + HEADER_LEN
