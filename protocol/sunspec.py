"""SunSpec register layout as data, and the codec both ends of the Modbus line share.

The simulator encodes a battery into registers with these tables and the gateway decodes
them with the same tables, so the two can never disagree about an offset. The standard
models (1, 802, 714) follow the SunSpec Information Model exactly; a test checks them
against pysunspec2's own model definitions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

SUNS_BASE: Final = 40000
"""Holding-register address of the "SunS" marker (the Modbus protocol address, 0-based)."""
SUNS_MARKER: Final = (0x5375, 0x6E53)
END_MODEL_ID: Final = 0xFFFF
HEADER_LEN: Final = 2
"""Every model starts with ID and L; L counts the registers after them."""

PointType = Literal[
    "uint16", "int16", "uint32", "int32", "uint64", "enum16", "bitfield16",
    "bitfield32", "sunssf", "string", "pad",
]  # fmt: skip

RawValue = int | str | None

_WIDTH: Final[dict[str, int]] = {
    "uint16": 1, "int16": 1, "enum16": 1, "bitfield16": 1, "sunssf": 1, "pad": 1,
    "uint32": 2, "int32": 2, "bitfield32": 2, "uint64": 4,
}  # fmt: skip
_SIGNED: Final = frozenset({"int16", "int32", "sunssf"})
_UNIMPLEMENTED: Final[dict[str, int]] = {
    "uint16": 0xFFFF, "enum16": 0xFFFF, "bitfield16": 0xFFFF,
    "int16": -0x8000, "sunssf": -0x8000, "pad": 0x8000,
    "uint32": 0xFFFFFFFF, "bitfield32": 0xFFFFFFFF, "int32": -0x80000000,
    "uint64": 0xFFFFFFFFFFFFFFFF,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Point:
    """One SunSpec point: its name, type, size in registers and scale-factor point."""

    name: str
    type: PointType
    size: int = 1
    sf: str | None = None
    writable: bool = False

    def __post_init__(self) -> None:
        if self.type != "string" and self.size != _WIDTH[self.type]:
            raise ValueError(f"{self.name}: {self.type} is {_WIDTH[self.type]} registers")


@dataclass(frozen=True, slots=True)
class ModelDef:
    """A model: fixed points, then an optional group repeated `count_point` times."""

    model_id: int
    name: str
    fixed: tuple[Point, ...]
    group: tuple[Point, ...] = ()
    group_name: str = ""
    count_point: str | None = None
    """The fixed point that counts the repetitions; None means derive it from L."""
    _offsets: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        offsets: dict[str, int] = {}
        at = 0
        for point in self.fixed:
            offsets[point.name] = at
            at += point.size
        object.__setattr__(self, "_offsets", offsets)

    @property
    def fixed_len(self) -> int:
        return sum(p.size for p in self.fixed)

    @property
    def group_len(self) -> int:
        return sum(p.size for p in self.group)

    def length(self, repeats: int = 0) -> int:
        """The model's L for this many repetitions of its group."""
        return self.fixed_len + repeats * self.group_len

    def repeats(self, length: int) -> int:
        """Repetitions of the group in a model whose L is `length`."""
        if not self.group_len:
            return 0
        return max(0, (length - self.fixed_len) // self.group_len)

    def offset(self, name: str, repeat: int | None = None) -> int:
        """Offset of a point from the first register after L (repeat is 0-based)."""
        if repeat is None:
            return self._offsets[name]
        inner = 0
        for point in self.group:
            if point.name == name:
                return self.fixed_len + repeat * self.group_len + inner
            inner += point.size
        raise KeyError(name)


def _u(name: str, sf: str | None = None, *, writable: bool = False) -> Point:
    return Point(name, "uint16", 1, sf, writable)


def _s(name: str, sf: str | None = None) -> Point:
    return Point(name, "int16", 1, sf)


def _e(name: str, *, writable: bool = False) -> Point:
    return Point(name, "enum16", 1, None, writable)


def _sf(name: str) -> Point:
    return Point(name, "sunssf")


COMMON: Final = ModelDef(
    1,
    "common",
    fixed=(
        Point("Mn", "string", 16),
        Point("Md", "string", 16),
        Point("Opt", "string", 8),
        Point("Vr", "string", 8),
        Point("SN", "string", 16),
        _u("DA", writable=True),
        Point("Pad", "pad"),
    ),
)

BATTERY: Final = ModelDef(
    802,
    "battery",
    fixed=(
        _u("AHRtg", "AHRtg_SF"), _u("WHRtg", "WHRtg_SF"),
        _u("WChaRteMax", "WChaDisChaMax_SF"), _u("WDisChaRteMax", "WChaDisChaMax_SF"),
        _u("DisChaRte", "DisChaRte_SF"), _u("SoCMax", "SoC_SF"), _u("SoCMin", "SoC_SF"),
        _u("SocRsvMax", "SoC_SF", writable=True), _u("SoCRsvMin", "SoC_SF", writable=True),
        _u("SoC", "SoC_SF"), _u("DoD", "DoD_SF"), _u("SoH", "SoH_SF"),
        Point("NCyc", "uint32", 2), _e("ChaSt"), _e("LocRemCtl"), _u("Hb"),
        _u("CtrlHb", writable=True), _u("AlmRst", writable=True), _e("Typ"), _e("State"),
        _e("StateVnd"), Point("WarrDt", "uint32", 2), Point("Evt1", "bitfield32", 2),
        Point("Evt2", "bitfield32", 2), Point("EvtVnd1", "bitfield32", 2),
        Point("EvtVnd2", "bitfield32", 2), _u("V", "V_SF"), _u("VMax", "V_SF"),
        _u("VMin", "V_SF"), _u("CellVMax", "CellV_SF"), _u("CellVMaxStr"), _u("CellVMaxMod"),
        _u("CellVMin", "CellV_SF"), _u("CellVMinStr"), _u("CellVMinMod"),
        _u("CellVAvg", "CellV_SF"), _s("A", "A_SF"), _u("AChaMax", "AMax_SF"),
        _u("ADisChaMax", "AMax_SF"), _s("W", "W_SF"), _e("ReqInvState"), _s("ReqW", "W_SF"),
        _e("SetOp", writable=True), _e("SetInvState", writable=True),
        _sf("AHRtg_SF"), _sf("WHRtg_SF"), _sf("WChaDisChaMax_SF"), _sf("DisChaRte_SF"),
        _sf("SoC_SF"), _sf("DoD_SF"), _sf("SoH_SF"), _sf("V_SF"), _sf("CellV_SF"),
        _sf("A_SF"), _sf("AMax_SF"), _sf("W_SF"),
    ),
)  # fmt: skip

DC_MEASUREMENT: Final = ModelDef(
    714,
    "dc_measurement",
    fixed=(
        Point("PrtAlrms", "bitfield32", 2), _u("NPrt"), _s("DCA", "DCA_SF"),
        _s("DCW", "DCW_SF"), Point("DCWhInj", "uint64", 4, "DCWH_SF"),
        Point("DCWhAbs", "uint64", 4, "DCWH_SF"), _sf("DCA_SF"), _sf("DCV_SF"),
        _sf("DCW_SF"), _sf("DCWH_SF"), _sf("Tmp_SF"),
    ),
    group=(
        _e("PrtTyp"), _u("ID"), Point("IDStr", "string", 8), _s("DCA", "DCA_SF"),
        _u("DCV", "DCV_SF"), _s("DCW", "DCW_SF"), Point("DCWhInj", "uint64", 4, "DCWH_SF"),
        Point("DCWhAbs", "uint64", 4, "DCWH_SF"), _s("Tmp", "Tmp_SF"), _e("DCSta"),
        Point("DCAlrm", "bitfield32", 2),
    ),
    group_name="Prt",
    count_point="NPrt",
)  # fmt: skip

# Symbols of the enum and bitfield points the gateway interprets.
BATTERY_STATE: Final = {
    1: "disconnected", 2: "initializing", 3: "connected", 4: "standby",
    5: "soc_protection", 6: "suspending", 99: "fault",
}  # fmt: skip
BATTERY_EVT1: Final = (
    "communication_error", "over_temp_alarm", "over_temp_warning", "under_temp_alarm",
    "under_temp_warning", "over_charge_current_alarm", "over_charge_current_warning",
    "over_discharge_current_alarm", "over_discharge_current_warning", "over_volt_alarm",
    "over_volt_warning", "under_volt_alarm", "under_volt_warning", "under_soc_min_alarm",
    "under_soc_min_warning", "over_soc_max_alarm", "over_soc_max_warning",
    "voltage_imbalance_warning", "temperature_imbalance_alarm",
    "temperature_imbalance_warning", "contactor_error", "fan_error", "ground_fault",
    "open_door_error", "current_imbalance_warning", "other_alarm", "other_warning",
    "reserved_1", "configuration_alarm", "configuration_warning",
)  # fmt: skip
"""Evt1 bit names in bit order (bit 0 first)."""
DC_STATUS: Final = {0: "OFF", 1: "ON", 2: "WARNING", 3: "ERROR"}
DC_ALARM_BITS: Final = {
    "GROUND_FAULT": 0, "INPUT_OVER_VOLTAGE": 1, "DC_DISCONNECT": 3, "CABINET_OPEN": 5,
    "MANUAL_SHUTDOWN": 6, "OVER_TEMP": 7, "BLOWN_FUSE": 12, "UNDER_TEMP": 13,
    "MEMORY_LOSS": 14, "ARC_DETECTION": 15, "TEST_FAILED": 20, "INPUT_UNDER_VOLTAGE": 21,
    "INPUT_OVER_CURRENT": 22,
}  # fmt: skip
DC_ALARM_ERRORS: Final = {
    "INPUT_OVER_CURRENT": "over_current",
    "OVER_TEMP": "high_temperature",
    "INPUT_OVER_VOLTAGE": "over_voltage",
    "INPUT_UNDER_VOLTAGE": "under_voltage",
    "DC_DISCONNECT": "power_switch_failure",
    "TEST_FAILED": "internal_error",
}
"""DCAlrm bits that map to an OCPP-style port error code (payloads.PortError values), in
order of precedence; any other bit set is `other`, reported with the raw bits."""


def unimplemented(point_type: PointType) -> int:
    """The sentinel a device reports for a point it does not implement."""
    return _UNIMPLEMENTED[point_type]


SF_MAX: Final = 10
"""SunSpec scale factors lie in -10..10; a device reporting another has no usable value
(and 10**400 would not even fit a float)."""


def scaled(raw: RawValue, sf: RawValue) -> float | None:
    """Apply a SunSpec scale factor; None when either point is unimplemented, or the scale
    factor is outside SunSpec's range."""
    if not isinstance(raw, int) or not isinstance(sf, int) or not -SF_MAX <= sf <= SF_MAX:
        return None
    return raw / 10**-sf if sf < 0 else float(raw * 10**sf)


def to_raw(value: float | None, sf: int) -> int | None:
    """The integer a device stores for `value` under scale factor `sf`."""
    return None if value is None else round(value / 10.0**sf)


def encode_points(points: Sequence[Point], values: Mapping[str, RawValue]) -> list[int]:
    """Registers for `points`; a missing or None value becomes the point's sentinel."""
    regs: list[int] = []
    for point in points:
        regs.extend(_encode_point(point, values.get(point.name)))
    return regs


def decode_points(points: Sequence[Point], regs: Sequence[int]) -> dict[str, RawValue]:
    """Raw point values from registers; sentinels become None."""
    values: dict[str, RawValue] = {}
    at = 0
    for point in points:
        values[point.name] = _decode_point(point, regs[at : at + point.size])
        at += point.size
    return values


@dataclass(frozen=True, slots=True)
class DecodedModel:
    """A model's raw values: the fixed points, then one dict per group repetition."""

    model_id: int
    fixed: dict[str, RawValue]
    groups: list[dict[str, RawValue]]


def encode_model(
    model: ModelDef,
    fixed: Mapping[str, RawValue],
    groups: Sequence[Mapping[str, RawValue]] = (),
) -> list[int]:
    """A whole model, header included."""
    body = encode_points(model.fixed, fixed)
    for values in groups:
        body.extend(encode_points(model.group, values))
    return [model.model_id, len(body), *body]


def decode_model(model: ModelDef, body: Sequence[int]) -> DecodedModel:
    """Decode the registers after a model's header (len(body) is its L)."""
    if len(body) < model.fixed_len:
        raise ValueError(f"model {model.model_id}: {len(body)} registers < {model.fixed_len}")
    fixed = decode_points(model.fixed, body[: model.fixed_len])
    groups = []
    at = model.fixed_len
    for _ in range(model.repeats(len(body))):
        groups.append(decode_points(model.group, body[at : at + model.group_len]))
        at += model.group_len
    return DecodedModel(model.model_id, fixed, groups)


def encode_string(text: str, size: int) -> list[int]:
    """ASCII text in `size` registers, two characters each, NUL padded."""
    raw = text.encode("ascii")[: size * 2].ljust(size * 2, b"\0")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


def decode_string(regs: Sequence[int]) -> str | None:
    """Text from registers; None when all are zero (SunSpec's unimplemented string)."""
    raw = b"".join(r.to_bytes(2, "big") for r in regs).split(b"\0", 1)[0]
    return raw.decode("ascii", errors="replace") if raw else None


def _encode_point(point: Point, value: RawValue) -> list[int]:
    if point.type == "string":
        return encode_string(value if isinstance(value, str) else "", point.size)
    number = _UNIMPLEMENTED[point.type] if value is None or isinstance(value, str) else value
    if number < 0:
        number += 1 << (16 * point.size)
    return [(number >> (16 * (point.size - 1 - i))) & 0xFFFF for i in range(point.size)]


def _decode_point(point: Point, regs: Sequence[int]) -> RawValue:
    if point.type == "string":
        return decode_string(regs)
    number = 0
    for reg in regs:
        number = (number << 16) | reg
    if point.type in _SIGNED and number >= 1 << (16 * point.size - 1):
        number -= 1 << (16 * point.size)
    return None if number == _UNIMPLEMENTED[point.type] else number
