"""protocol/sunspec.py and protocol/vendor_model.py: the tables against SunSpec, the codec."""

from __future__ import annotations

import json
import struct
from functools import cache
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sunspec2 import device as sunspec_device

from protocol.payloads import PortError
from protocol.sunspec import (
    BATTERY,
    BATTERY_EVT1,
    BATTERY_STATE,
    COMMON,
    DC_ALARM_BITS,
    DC_ALARM_ERRORS,
    DC_MEASUREMENT,
    DC_STATUS,
    END_MODEL_ID,
    HEADER_LEN,
    SUNS_BASE,
    SUNS_MARKER,
    ModelDef,
    Point,
    RawValue,
    decode_model,
    decode_points,
    decode_string,
    encode_model,
    encode_points,
    encode_string,
    scaled,
    to_raw,
    unimplemented,
)
from protocol.vendor_model import DISPLAY_CODE_REGS, VENDOR, VENDOR_MODEL_ID

STANDARD_MODELS = (COMMON, BATTERY, DC_MEASUREMENT)


# --- the tables against pysunspec2's model definitions ---------------------------------


@cache
def sunspec_json(model_id: int) -> dict[str, Any]:
    """The model definition pysunspec2 ships (sunspec2/models/json/model_{id}.json)."""
    path = resources.files("sunspec2") / "models" / "json" / f"model_{model_id}.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def spec_points(group: dict[str, Any]) -> list[tuple[str, str, int, str | None, bool]]:
    """(name, type, size, sf, writable) of a group's points, without the ID/L header."""
    return [
        (p["name"], p["type"], p["size"], p.get("sf"), p.get("access") == "RW")
        for p in group["points"]
        if p["name"] not in ("ID", "L") or group.get("count") is not None
    ]


def our_points(points: tuple[Point, ...]) -> list[tuple[str, str, int, str | None, bool]]:
    return [(p.name, p.type, p.size, p.sf, p.writable) for p in points]


def spec_symbols(model_id: int, point: str, group: str | None = None) -> dict[str, int]:
    top = sunspec_json(model_id)["group"]
    points = top["points"]
    if group is not None:
        points = next(g for g in top["groups"] if g["name"] == group)["points"]
    found = next(p for p in points if p["name"] == point)
    return {s["name"]: s["value"] for s in found["symbols"]}


@pytest.mark.parametrize("model", STANDARD_MODELS, ids=lambda m: m.name)
def test_fixed_points_equal_the_sunspec_definition(model: ModelDef) -> None:
    spec = sunspec_json(model.model_id)
    assert spec["id"] == model.model_id
    assert our_points(model.fixed) == spec_points(spec["group"])


@pytest.mark.parametrize("model", STANDARD_MODELS, ids=lambda m: m.name)
def test_repeating_groups_equal_the_sunspec_definition(model: ModelDef) -> None:
    groups = sunspec_json(model.model_id)["group"].get("groups", [])
    if not groups:
        assert model.group == ()
        assert model.count_point is None
        return
    (group,) = groups
    assert model.group_name == group["name"]
    assert model.count_point == group["count"]
    assert our_points(model.group) == spec_points(group)


def test_714_repeats_prt_per_port_counted_by_nprt() -> None:
    assert DC_MEASUREMENT.group_name == "Prt"
    assert DC_MEASUREMENT.count_point == "NPrt"
    assert [p.name for p in DC_MEASUREMENT.group] == [
        "PrtTyp", "ID", "IDStr", "DCA", "DCV", "DCW", "DCWhInj", "DCWhAbs", "Tmp", "DCSta",
        "DCAlrm",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "fixed_len", "group_len"),
    [(COMMON, 66, 0), (BATTERY, 62, 0), (DC_MEASUREMENT, 18, 25), (VENDOR, 4, 8)],
    ids=lambda v: v.name if isinstance(v, ModelDef) else str(v),
)
def test_model_lengths(model: ModelDef, fixed_len: int, group_len: int) -> None:
    assert model.fixed_len == fixed_len
    assert model.group_len == group_len
    for ports in range(9):
        assert model.length(ports) == fixed_len + group_len * ports
        if group_len:
            assert model.repeats(model.length(ports)) == ports


def test_fixed_lengths_agree_with_pysunspec2_sizes() -> None:
    for model in STANDARD_MODELS:
        top = sunspec_json(model.model_id)["group"]
        size = sum(p["size"] for p in top["points"]) - HEADER_LEN
        assert model.fixed_len == size
        for group in top.get("groups", []):
            assert model.group_len == sum(p["size"] for p in group["points"])


def by_bit(symbol: tuple[str, int]) -> int:
    return symbol[1]


def test_enum_and_bitfield_symbols_equal_the_sunspec_definition() -> None:
    state = spec_symbols(802, "State")
    assert {v: k.lower().replace(" ", "_") for k, v in state.items()} == BATTERY_STATE
    evt1 = spec_symbols(802, "Evt1")
    assert list(BATTERY_EVT1) == [name.lower() for name, _ in sorted(evt1.items(), key=by_bit)]
    assert [evt1[name.upper()] for name in BATTERY_EVT1] == list(range(30))
    assert {v: k for k, v in spec_symbols(714, "DCSta", "Prt").items()} == DC_STATUS
    dc_alarm = spec_symbols(714, "DCAlrm", "Prt")
    assert {k: v for k, v in dc_alarm.items() if k != "RESERVED"} == DC_ALARM_BITS


def test_dc_alarm_errors_map_known_bits_to_port_errors() -> None:
    assert set(DC_ALARM_ERRORS) <= set(DC_ALARM_BITS)
    port_errors = {e.value for e in PortError}
    assert set(DC_ALARM_ERRORS.values()) <= port_errors
    assert "none" not in DC_ALARM_ERRORS.values()
    assert "other" not in DC_ALARM_ERRORS.values()


def test_marker_and_base() -> None:
    assert SUNS_BASE == 40000
    assert b"".join(r.to_bytes(2, "big") for r in SUNS_MARKER) == b"SunS"
    assert END_MODEL_ID == 0xFFFF
    assert HEADER_LEN == 2


# --- the vendor model ------------------------------------------------------------------


def test_vendor_model_layout() -> None:
    assert VENDOR.model_id == VENDOR_MODEL_ID
    assert 64000 <= VENDOR_MODEL_ID <= 65535
    assert VENDOR.group_name == "Prt"
    assert VENDOR.count_point == "NPrt"
    assert [(p.name, p.size) for p in VENDOR.group] == [
        ("Occ", 1),
        ("Ena", 1),
        ("Code", DISPLAY_CODE_REGS),
        ("SesS", 2),
    ]
    assert DISPLAY_CODE_REGS * 2 == 8
    assert {p.name for p in VENDOR.group if p.writable} == {"Ena", "Code"}
    assert not any(p.writable for p in VENDOR.fixed)
    assert VENDOR.length(8) == 4 + 8 * 8


def test_vendor_model_scale_factors_point_at_its_own_points() -> None:
    names = {p.name for p in VENDOR.fixed}
    assert all(p.sf in names for p in VENDOR.fixed + VENDOR.group if p.sf)


@pytest.mark.parametrize("model", (*STANDARD_MODELS, VENDOR), ids=lambda m: m.name)
def test_scale_factor_references_resolve_within_the_model(model: ModelDef) -> None:
    sunssf = {p.name for p in model.fixed if p.type == "sunssf"}
    for point in model.fixed + model.group:
        assert point.sf is None or point.sf in sunssf, point.name


# --- offsets ---------------------------------------------------------------------------


def test_offsets_of_fixed_points() -> None:
    assert COMMON.offset("Mn") == 0
    assert COMMON.offset("Md") == 16
    assert COMMON.offset("SN") == 48
    assert COMMON.offset("Pad") == 65
    assert BATTERY.offset("SoC") == 9
    assert BATTERY.offset("NCyc") == 12
    assert BATTERY.offset("AlmRst") == 18
    assert BATTERY.offset("W_SF") == 61
    assert DC_MEASUREMENT.offset("NPrt") == 2
    assert DC_MEASUREMENT.offset("Tmp_SF") == 17


def test_offsets_of_repeated_points() -> None:
    assert DC_MEASUREMENT.offset("PrtTyp", 0) == 18
    assert DC_MEASUREMENT.offset("DCA", 0) == 18 + 10
    assert DC_MEASUREMENT.offset("DCSta", 2) == 18 + 2 * 25 + 22
    assert DC_MEASUREMENT.offset("DCAlrm", 7) == 18 + 7 * 25 + 23
    assert VENDOR.offset("Ena", 0) == 5
    assert VENDOR.offset("Code", 3) == 4 + 3 * 8 + 2
    # DCA is both a fixed point and a group point: `repeat` picks which.
    assert DC_MEASUREMENT.offset("DCA") == 3


def test_offsets_agree_with_the_encoder() -> None:
    groups = [{"DCA": 100 + i, "DCAlrm": 1 << i} for i in range(4)]
    body = encode_model(DC_MEASUREMENT, {"NPrt": 4}, groups)[HEADER_LEN:]
    assert body[DC_MEASUREMENT.offset("NPrt")] == 4
    for i in range(4):
        assert body[DC_MEASUREMENT.offset("DCA", i)] == 100 + i
        at = DC_MEASUREMENT.offset("DCAlrm", i)
        assert (body[at] << 16) | body[at + 1] == 1 << i


def test_offset_of_an_unknown_point_raises() -> None:
    with pytest.raises(KeyError):
        BATTERY.offset("Nope")
    with pytest.raises(KeyError):
        DC_MEASUREMENT.offset("Nope", 0)
    with pytest.raises(KeyError):
        DC_MEASUREMENT.offset("DCSta")  # a group point needs its repetition


# --- the codec -------------------------------------------------------------------------

ALL_TYPES = (
    "uint16", "int16", "uint32", "int32", "uint64", "enum16", "bitfield16", "bitfield32",
    "sunssf", "pad",
)  # fmt: skip
SIZES = {"uint32": 2, "int32": 2, "bitfield32": 2, "uint64": 4}


def point_of(point_type: str, size: int | None = None) -> Point:
    return Point("X", point_type, size or SIZES.get(point_type, 1))  # type: ignore[arg-type]


def roundtrip(point: Point, value: RawValue) -> tuple[list[int], RawValue]:
    regs = encode_points([point], {"X": value})
    return regs, decode_points([point], regs)["X"]


@pytest.mark.parametrize(
    ("point_type", "registers"),
    [
        ("uint16", [0xFFFF]),
        ("enum16", [0xFFFF]),
        ("bitfield16", [0xFFFF]),
        ("int16", [0x8000]),
        ("sunssf", [0x8000]),
        ("pad", [0x8000]),
        ("uint32", [0xFFFF, 0xFFFF]),
        ("bitfield32", [0xFFFF, 0xFFFF]),
        ("int32", [0x8000, 0x0000]),
        ("uint64", [0xFFFF] * 4),
    ],
)
def test_unimplemented_is_the_sunspec_sentinel_and_decodes_to_none(
    point_type: str, registers: list[int]
) -> None:
    point = point_of(point_type)
    regs, decoded = roundtrip(point, None)
    assert regs == registers
    assert decoded is None
    assert encode_points([point], {}) == registers  # a missing value is unimplemented too
    assert encode_points([point], {"X": unimplemented(point.type)}) == registers


@pytest.mark.parametrize(
    ("point_type", "value", "registers"),
    [
        ("int16", -1, [0xFFFF]),
        ("int16", -32767, [0x8001]),
        ("int16", 32767, [0x7FFF]),
        ("sunssf", -2, [0xFFFE]),
        ("uint16", 0xFFFE, [0xFFFE]),
        ("uint16", 0, [0]),
        ("int32", -1, [0xFFFF, 0xFFFF]),
        ("int32", -0x7FFFFFFF, [0x8000, 0x0001]),
        ("uint32", 0x12345678, [0x1234, 0x5678]),
        ("bitfield32", 1 << 22, [0x0040, 0x0000]),
        ("uint64", 0x0102030405060708, [0x0102, 0x0304, 0x0506, 0x0708]),
    ],
)
def test_values_are_big_endian_twos_complement(
    point_type: str, value: int, registers: list[int]
) -> None:
    regs, decoded = roundtrip(point_of(point_type), value)
    assert regs == registers
    assert decoded == value


def value_range(point_type: str) -> tuple[int, int]:
    """Every implemented value of a type (the sentinel excluded)."""
    bits = 16 * SIZES.get(point_type, 1)
    if point_type in ("int16", "int32", "sunssf"):
        return -(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 2


@pytest.mark.parametrize("point_type", [t for t in ALL_TYPES if t != "pad"])
@given(data=st.data())
def test_every_implemented_value_round_trips(point_type: str, data: st.DataObject) -> None:
    low, high = value_range(point_type)
    value = data.draw(st.integers(low, high))
    point = point_of(point_type)
    regs, decoded = roundtrip(point, value)
    assert len(regs) == point.size
    assert all(0 <= r <= 0xFFFF for r in regs)
    assert decoded == value


ascii_text = st.text(st.characters(min_codepoint=1, max_codepoint=127), min_size=1)


@given(text=ascii_text, size=st.integers(1, 16))
def test_strings_round_trip_truncated_to_their_registers(text: str, size: int) -> None:
    regs, decoded = roundtrip(point_of("string", size), text)
    assert len(regs) == size
    assert decoded == text[: size * 2]


def test_strings_are_nul_padded_and_all_zero_is_none() -> None:
    assert encode_string("K7Q", 4) == [0x4B37, 0x5100, 0, 0]
    assert encode_string("", 2) == [0, 0]
    assert decode_string([0x4B37, 0x5100, 0, 0]) == "K7Q"
    assert decode_string([0, 0, 0]) is None
    assert roundtrip(point_of("string", 8), None) == ([0] * 8, None)
    assert roundtrip(point_of("string", 8), "") == ([0] * 8, None)


def test_non_ascii_strings_are_refused() -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_string("受付", 4)


def test_point_sizes_are_checked() -> None:
    with pytest.raises(ValueError, match="registers"):
        Point("X", "uint32", 1)
    assert Point("X", "string", 3).size == 3


def test_decode_model_splits_fixed_points_and_groups() -> None:
    fixed = {"NPrt": 3, "DCA_SF": -2, "DCV_SF": -1, "DCW_SF": -1, "Tmp_SF": -1}
    groups: list[dict[str, RawValue]] = [
        {"ID": i + 1, "IDStr": f"USB{i + 1}", "DCSta": i, "Tmp": -50 + i} for i in range(3)
    ]
    regs = encode_model(DC_MEASUREMENT, fixed, groups)
    assert regs[:HEADER_LEN] == [714, DC_MEASUREMENT.length(3)]
    decoded = decode_model(DC_MEASUREMENT, regs[HEADER_LEN:])
    assert decoded.model_id == 714
    assert {k: decoded.fixed[k] for k in fixed} == fixed
    assert decoded.fixed["DCWhInj"] is None
    assert len(decoded.groups) == 3
    for want, got in zip(groups, decoded.groups, strict=True):
        assert {k: got[k] for k in want} == want
        assert got["DCA"] is None


def test_decode_model_refuses_a_body_shorter_than_the_fixed_points() -> None:
    with pytest.raises(ValueError, match="802"):
        decode_model(BATTERY, [0] * (BATTERY.fixed_len - 1))


def test_decode_model_ignores_a_partial_trailing_group() -> None:
    body = encode_model(VENDOR, {"NPrt": 2}, [{"Ena": 1}, {"Ena": 0}])[HEADER_LEN:]
    assert len(decode_model(VENDOR, [*body, 0, 0, 0]).groups) == 2


# --- scale factors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "sf", "value"),
    [
        (815, -1, 81.5),
        (512, -1, 51.2),
        (-31, -1, -3.1),
        (-1587, -1, -158.7),
        (1, -2, 0.01),
        (29, -2, 0.29),
        (7, 0, 7.0),
        (12, 2, 1200.0),
        (0, -3, 0.0),
    ],
)
def test_scaled_is_exact(raw: int, sf: int, value: float) -> None:
    assert scaled(raw, sf) == value
    assert isinstance(scaled(raw, sf), float)


def test_scaled_is_none_when_either_point_is_unimplemented() -> None:
    assert scaled(None, -1) is None
    assert scaled(815, None) is None
    assert scaled("x", -1) is None


@given(raw=st.integers(-32767, 65534), sf=st.integers(-10, 10))
def test_to_raw_inverts_scaled(raw: int, sf: int) -> None:
    value = scaled(raw, sf)
    assert value is not None
    assert value == (raw / 10**-sf if sf < 0 else raw * 10**sf)
    assert to_raw(value, sf) == raw


def test_to_raw() -> None:
    assert to_raw(81.5, -1) == 815
    assert to_raw(0.29, -2) == 29
    assert to_raw(-158.7, -1) == -1587
    assert to_raw(1200.0, 2) == 12
    assert to_raw(None, -1) is None


# --- the encoder against pysunspec2's decoder ------------------------------------------


def point_values(points: tuple[Point, ...]) -> st.SearchStrategy[dict[str, RawValue]]:
    """A value or None (unimplemented) for each point; scale factors in SunSpec's range."""
    fields: dict[str, st.SearchStrategy[RawValue]] = {}
    for point in points:
        value: st.SearchStrategy[RawValue]
        if point.type == "string":
            value = st.text(
                st.characters(min_codepoint=32, max_codepoint=126), max_size=point.size * 2
            )
        elif point.type == "sunssf":
            value = st.integers(-10, 10)
        elif point.type == "pad":
            value = st.just(None)
        else:
            value = st.integers(*value_range(point.type))
        fields[point.name] = st.none() | value
    return st.fixed_dictionaries(fields)


def as_bytes(regs: list[int]) -> bytes:
    return struct.pack(f">{len(regs)}H", *regs)


def expected(value: RawValue) -> RawValue:
    return value or None if isinstance(value, str) else value


@pytest.mark.parametrize("model", (COMMON, BATTERY), ids=lambda m: m.name)
@given(data=st.data())
def test_pysunspec2_decodes_what_we_encode(model: ModelDef, data: st.DataObject) -> None:
    values = data.draw(point_values(model.fixed))
    regs = encode_model(model, values)
    theirs = sunspec_device.Model(model.model_id, 0, len(regs) - HEADER_LEN, None, as_bytes(regs))
    assert theirs.error_info == ""
    ours = decode_model(model, regs[HEADER_LEN:]).fixed
    for point in model.fixed:
        if point.type == "pad":
            continue
        want = expected(values[point.name])
        assert getattr(theirs, point.name).value == want, point.name
        assert ours[point.name] == want, point.name


@given(data=st.data(), ports=st.integers(0, 8))
def test_pysunspec2_decodes_our_dc_measurement(data: st.DataObject, ports: int) -> None:
    fixed = data.draw(point_values(DC_MEASUREMENT.fixed)) | {"NPrt": ports}
    groups = [data.draw(point_values(DC_MEASUREMENT.group)) for _ in range(ports)]
    regs = encode_model(DC_MEASUREMENT, fixed, groups)
    assert len(regs) == HEADER_LEN + 18 + 25 * ports
    theirs = sunspec_device.Model(714, 0, len(regs) - HEADER_LEN, None, as_bytes(regs))
    assert theirs.error_info == ""
    ours = decode_model(DC_MEASUREMENT, regs[HEADER_LEN:])
    for name, value in fixed.items():
        assert getattr(theirs, name).value == expected(value), name
        assert ours.fixed[name] == expected(value), name
    their_groups = theirs.groups.get("Prt", [])  # pysunspec2 leaves it out when NPrt is 0
    assert len(their_groups) == len(ours.groups) == ports
    for want, their_group, our_group in zip(groups, their_groups, ours.groups, strict=True):
        for name, value in want.items():
            assert getattr(their_group, name).value == expected(value), name
            assert our_group[name] == expected(value), name
