"""protocol/payloads.py: the MQTT payload models, against DESIGN.md's wire contract 2."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from protocol.payloads import (
    CONTRACT_VERSION,
    DISPLAY_CODE_MAX,
    SEQ_MAX,
    BatteryState,
    Command,
    CommandAction,
    CommandResult,
    EventKind,
    GatewayStatus,
    PortError,
    PortState,
    PortStatus,
    Receipt,
    UnitEvent,
    UnitState,
    format_ts,
)
from protocol.topics import UnitAddress

# The state payload exactly as DESIGN.md ("Wire contract 2") shows it.
DESIGN_STATE = """
{"seq": 812, "ts": "2026-11-24T09:00:00.000Z", "historical": false, "online": true,
 "battery": {"soc_pct": 81.5, "soh_pct": 97.0, "voltage_v": 51.2, "current_a": -3.1,
             "power_w": -158.7, "temp_c": 31.4, "state": "connected", "alarms": []},
 "ports": [{"port": 1, "status": "charging", "occupied": true, "enabled": true,
            "power_w": 18.2, "energy_wh": 3.1, "temp_c": 30.2, "error": "none",
            "display_code": "K7Q2"}]}
"""
TS = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def missing_fields(model: type[BaseModel], payload: dict[str, Any]) -> set[str | int]:
    return {err["loc"][-1] for err in _errors(model, payload) if err["type"] == "missing"}


def _errors(model: type[BaseModel], payload: dict[str, Any]) -> list[ErrorDetails]:
    try:
        model.model_validate(payload)
    except ValidationError as exc:
        return exc.errors()
    return []


# --- the DESIGN.md example --------------------------------------------------------------


def test_design_example_needs_only_rated_wh_added() -> None:
    """DESIGN.md's example predates `rated_wh`; it is the one field our model adds that the
    example lacks and that has no default. `v` (contract version) defaults to 1; a port's
    `vendor_code` and `session_s` default to None. Everything else in the example is required.
    """
    payload = json.loads(DESIGN_STATE)
    assert missing_fields(UnitState, payload) == {"rated_wh"}

    payload["battery"]["rated_wh"] = 1024.0
    state = UnitState.model_validate(payload)
    assert state.v == CONTRACT_VERSION == 1
    assert state.seq == 812
    assert state.ts == TS
    assert state.battery is not None
    assert state.battery.soc_pct == 81.5
    assert state.battery.current_a == -3.1
    (port,) = state.ports
    assert port.status is PortStatus.CHARGING
    assert port.error is PortError.NONE
    assert port.display_code == "K7Q2"
    assert port.vendor_code is None
    assert port.session_s is None


def test_required_fields_of_a_state() -> None:
    """Documents what a producer must send: every field without a default."""
    assert missing_fields(UnitState, {}) == {"seq", "ts", "online", "battery", "ports"}
    assert missing_fields(BatteryState, {}) == {
        "soc_pct", "soh_pct", "voltage_v", "current_a", "power_w", "temp_c", "rated_wh",
        "state", "alarms",
    }  # fmt: skip
    assert missing_fields(PortState, {}) == {
        "port", "status", "occupied", "enabled", "power_w", "energy_wh", "temp_c",
    }  # fmt: skip


def test_unknown_values_may_be_null_but_not_absent() -> None:
    payload = json.loads(DESIGN_STATE)
    payload["battery"] = None  # a unit that stopped answering before its first poll
    payload["online"] = False
    payload["ports"] = [
        {"port": 1, "status": "available", "occupied": None, "enabled": None,
         "power_w": None, "energy_wh": None, "temp_c": None}
    ]  # fmt: skip
    state = UnitState.model_validate(payload)
    assert state.battery is None
    assert state.ports[0].occupied is None


def test_design_example_reserializes_to_the_same_json_plus_defaults() -> None:
    payload = json.loads(DESIGN_STATE)
    payload["battery"]["rated_wh"] = 1024.0
    dumped = json.loads(UnitState.model_validate(payload).model_dump_json())
    payload["v"] = 1
    payload["ports"][0] |= {"vendor_code": None, "session_s": None}
    assert dumped == payload


# --- timestamps -------------------------------------------------------------------------


def envelope(**fields: Any) -> dict[str, Any]:
    return {"seq": 1, "ts": "2026-11-24T09:00:00.000Z", "cmd_id": "c1", "ok": True} | fields


def test_ts_serialises_as_utc_milliseconds_z() -> None:
    result = CommandResult(seq=1, ts=TS, cmd_id="c1", ok=True)
    assert json.loads(result.model_dump_json())["ts"] == "2026-11-24T09:00:00.000Z"
    assert result.model_dump()["ts"] == "2026-11-24T09:00:00.000Z"


@pytest.mark.parametrize(
    ("ts", "wire"),
    [
        ("2026-11-24T18:00:00+09:00", "2026-11-24T09:00:00.000Z"),  # converted to UTC
        ("2026-11-24T09:00:00Z", "2026-11-24T09:00:00.000Z"),
        ("2026-11-24T09:00:00.5Z", "2026-11-24T09:00:00.500Z"),
        ("2026-11-24T09:00:00.123999Z", "2026-11-24T09:00:00.123Z"),  # truncated, not rounded
        ("2026-11-23T23:59:59.999-01:00", "2026-11-24T00:59:59.999Z"),
    ],
)
def test_ts_is_normalised_to_utc(ts: str, wire: str) -> None:
    result = CommandResult.model_validate(envelope(ts=ts))
    assert result.ts.tzinfo == UTC
    assert json.loads(result.model_dump_json())["ts"] == wire


@pytest.mark.parametrize("ts", ["2026-11-24T09:00:00", "2026-11-24T09:00:00.000"])
def test_naive_ts_strings_are_rejected(ts: str) -> None:
    with pytest.raises(ValidationError, match="timezone"):
        CommandResult.model_validate(envelope(ts=ts))


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        CommandResult(seq=1, ts=datetime(2026, 11, 24, 9), cmd_id="c1", ok=True)


def test_format_ts() -> None:
    assert format_ts(datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)) == "2026-01-02T03:04:05.006Z"
    jst = timezone(timedelta(hours=9))
    assert format_ts(datetime(2026, 1, 1, 0, 0, tzinfo=jst)) == "2025-12-31T15:00:00.000Z"


# --- strictness -------------------------------------------------------------------------

MODELS_AND_PAYLOADS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (CommandResult, envelope()),
    (UnitEvent, {"seq": 1, "ts": "2026-11-24T09:00:00Z", "event_id": "e" * 8, "kind": "unit_lost"}),
    (
        GatewayStatus,
        {"seq": 1, "ts": "2026-11-24T09:00:00Z", "state": "online", "boot_id": "b",
         "version": "0.1.0", "units": ["rs485-1.3"]},
    ),
    (Command, {"cmd_id": "c1", "unit": "rs485-1.3", "action": "reset_alarms"}),
]  # fmt: skip


@pytest.mark.parametrize(("model", "payload"), MODELS_AND_PAYLOADS, ids=lambda v: str(v)[:30])
def test_unknown_fields_are_rejected(model: type[BaseModel], payload: dict[str, Any]) -> None:
    model.model_validate(payload)
    with pytest.raises(ValidationError, match="extra"):
        model.model_validate(payload | {"colour": "red"})


def test_unknown_fields_are_rejected_in_nested_models() -> None:
    payload = json.loads(DESIGN_STATE)
    payload["battery"]["rated_wh"] = 1024.0
    payload["ports"][0]["colour"] = "red"
    with pytest.raises(ValidationError, match="extra"):
        UnitState.model_validate(payload)


@pytest.mark.parametrize(("model", "payload"), MODELS_AND_PAYLOADS, ids=lambda v: str(v)[:30])
def test_other_contract_versions_are_rejected(
    model: type[BaseModel], payload: dict[str, Any]
) -> None:
    assert model.model_validate(payload | {"v": 1}) == model.model_validate(payload)
    with pytest.raises(ValidationError):
        model.model_validate(payload | {"v": 2})


def test_payloads_are_frozen() -> None:
    result = CommandResult.model_validate(envelope())
    with pytest.raises(ValidationError):
        result.ok = False


@pytest.mark.parametrize(
    ("field", "value"),
    [("seq", -1), ("status", "reserved"), ("status", "offline"), ("error", "on_fire"), ("port", 0)],
)
def test_bad_port_and_envelope_values_are_rejected(field: str, value: Any) -> None:
    payload = json.loads(DESIGN_STATE)
    payload["battery"]["rated_wh"] = 1024.0
    if field == "seq":
        payload["seq"] = value
    else:
        payload["ports"][0][field] = value
    with pytest.raises(ValidationError):
        UnitState.model_validate(payload)


def _design_state(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(DESIGN_STATE)
    payload["battery"]["rated_wh"] = 1024.0
    return payload | changes


PORT = json.loads(DESIGN_STATE)["ports"][0]


@pytest.mark.parametrize(
    "changes",
    [
        {"seq": 10**30},
        {"seq": SEQ_MAX + 1},
        {"seq": 1.0},
        {"online": "yes"},
        {"online": 1},
        {"ports": [PORT | {"port": 10**12}]},
        {"ports": [PORT | {"port": 65}]},
        {"ports": [PORT | {"occupied": "true"}]},
        {"ports": [PORT | {"port": n} for n in range(1, 4001)]},
        {"ports": [PORT, PORT]},
        {"historical": "false"},
    ],
    ids=["seq-1e30", "seq-int64", "seq-float", "online-yes", "online-1", "port-1e12",
         "port-65", "occupied-str", "4000-ports", "duplicate-port", "historical-str"],
)  # fmt: skip
def test_out_of_range_and_loosely_typed_states_are_malformed(changes: dict[str, Any]) -> None:
    """Each would have failed a whole database batch or been read as what it did not say."""
    with pytest.raises(ValidationError):
        UnitState.model_validate_json(json.dumps(_design_state(**changes)))


def test_the_largest_seq_and_every_port_number_are_valid() -> None:
    ports = [PORT | {"port": n} for n in range(1, 65)]
    state = UnitState.model_validate_json(json.dumps(_design_state(seq=SEQ_MAX, ports=ports)))
    assert state.seq == SEQ_MAX and len(state.ports) == 64


@pytest.mark.parametrize("port", [-7, 0, 65])
def test_event_port_out_of_range_is_malformed(port: int) -> None:
    event = {"seq": 1, "ts": "2026-11-24T09:00:00.000Z", "event_id": "e" * 8,
             "kind": "port_faulted", "port": port}  # fmt: skip
    with pytest.raises(ValidationError):
        UnitEvent.model_validate_json(json.dumps(event))


def test_reserved_and_offline_are_server_side_states_only() -> None:
    assert {s.value for s in PortStatus} == {
        "available", "charging", "finishing", "unavailable", "faulted",
    }  # fmt: skip


@pytest.mark.parametrize("event_id", ["", "short", "x" * 65])
def test_event_id_length(event_id: str) -> None:
    with pytest.raises(ValidationError):
        UnitEvent.model_validate(
            {"seq": 1, "ts": "2026-11-24T09:00:00Z", "event_id": event_id, "kind": "unit_lost"}
        )


def test_gateway_status_state_is_online_or_offline() -> None:
    payload = dict(MODELS_AND_PAYLOADS[2][1])
    assert GatewayStatus.model_validate(payload | {"state": "offline"}).state == "offline"
    with pytest.raises(ValidationError):
        GatewayStatus.model_validate(payload | {"state": "sleeping"})


# --- commands ---------------------------------------------------------------------------


def command(**fields: Any) -> Command:
    return Command.model_validate({"cmd_id": "c1", "unit": "rs485-1.3"} | fields)


@pytest.mark.parametrize("action", ["enable_port", "disable_port", "set_display"])
def test_port_actions_need_a_port(action: str) -> None:
    with pytest.raises(ValidationError, match="needs a port"):
        command(action=action, value="K7Q2")
    assert command(action=action, port=2, value="K7Q2").port == 2


def test_reset_alarms_needs_no_port() -> None:
    cmd = command(action="reset_alarms")
    assert cmd.action is CommandAction.RESET_ALARMS
    assert cmd.port is None


def test_set_display_needs_a_value() -> None:
    with pytest.raises(ValidationError, match="needs a value"):
        command(action="set_display", port=1)
    assert command(action="set_display", port=1, value="K7Q2").value == "K7Q2"
    assert command(action="set_display", port=1, value="").value == ""  # blanks the display


def test_set_display_value_is_ascii_and_at_most_8_characters() -> None:
    assert DISPLAY_CODE_MAX == 8
    assert command(action="set_display", port=1, value="ABCD1234").value == "ABCD1234"
    with pytest.raises(ValidationError):
        command(action="set_display", port=1, value="ABCD12345")
    with pytest.raises(ValidationError, match="ASCII"):
        command(action="set_display", port=1, value="受付1")


@pytest.mark.parametrize("unit", ["", "rs485-1", "rs485-1.0", "rs485-1.248", "a.b.3", "+.3"])
def test_command_unit_must_parse(unit: str) -> None:
    with pytest.raises(ValidationError):
        Command.model_validate({"cmd_id": "c1", "unit": unit, "action": "reset_alarms"})


@pytest.mark.parametrize(
    "fields",
    [{"cmd_id": ""}, {"cmd_id": "c" * 65}, {"action": "reboot"}, {"port": 0}],
)
def test_bad_commands_are_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        command(**({"action": "enable_port", "port": 1} | fields))


def test_command_unit_address() -> None:
    assert command(action="reset_alarms").unit_address == UnitAddress("rs485-1", 3)


# --- round trips ------------------------------------------------------------------------

timestamps = st.builds(
    lambda dt, ms, offset: (dt.replace(microsecond=ms * 1000, tzinfo=UTC)).astimezone(
        timezone(timedelta(minutes=offset))
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(0, 999),
    st.integers(-12 * 60, 14 * 60),
)
"""Aware datetimes in any offset, whole milliseconds (what the wire carries)."""
floats = st.none() | st.floats(allow_nan=False, allow_infinity=False)
text = st.text(max_size=20)
ids = st.text(min_size=8, max_size=64)
units = st.builds(
    lambda bus, unit_id: str(UnitAddress(bus, unit_id)),
    st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
    st.integers(1, 247),
)
envelopes = {"seq": st.integers(0, SEQ_MAX), "ts": timestamps, "historical": st.booleans()}

battery_states = st.builds(
    BatteryState,
    soc_pct=floats, soh_pct=floats, voltage_v=floats, current_a=floats, power_w=floats,
    temp_c=floats, rated_wh=floats, state=st.none() | text, alarms=st.lists(text, max_size=4),
)  # fmt: skip
port_states = st.builds(
    PortState,
    port=st.integers(1, 64), status=st.sampled_from(PortStatus),
    occupied=st.none() | st.booleans(), enabled=st.none() | st.booleans(),
    power_w=floats, energy_wh=floats, temp_c=floats, error=st.sampled_from(PortError),
    vendor_code=st.none() | st.integers(0, 2**32 - 1),
    display_code=st.none() | st.text(st.characters(max_codepoint=127), max_size=8),
    session_s=st.none() | st.integers(0, 2**32 - 1),
)  # fmt: skip
unit_states = st.builds(
    UnitState,
    online=st.booleans(),
    battery=st.none() | battery_states,
    ports=st.lists(port_states, max_size=8, unique_by=lambda p: p.port),
    **envelopes,
)
unit_events = st.builds(
    UnitEvent,
    event_id=ids, kind=st.sampled_from(EventKind), port=st.none() | st.integers(1, 64),
    alarm=st.none() | text, error=st.none() | st.sampled_from(PortError),
    detail=st.none() | text, **envelopes,
)  # fmt: skip
gateway_statuses = st.builds(
    GatewayStatus,
    state=st.sampled_from(["online", "offline"]), boot_id=text, version=text,
    units=st.lists(units, max_size=8), **envelopes,
)  # fmt: skip
command_results = st.builds(
    CommandResult, cmd_id=text, ok=st.booleans(), error=st.none() | text, **envelopes
)


@st.composite
def commands(draw: st.DrawFn) -> Command:
    action = draw(st.sampled_from(CommandAction))
    port = draw(st.integers(1, 64)) if action != CommandAction.RESET_ALARMS else None
    value = None
    if action == CommandAction.SET_DISPLAY:
        value = draw(st.text(st.characters(max_codepoint=127), max_size=DISPLAY_CODE_MAX))
    return Command(
        cmd_id=draw(st.text(min_size=1, max_size=64)),
        unit=draw(units),
        action=action,
        port=port,
        value=value,
    )


payloads = unit_states | unit_events | gateway_statuses | command_results | commands()


@given(payload=payloads)
def test_json_round_trip(payload: BaseModel) -> None:
    wire = payload.model_dump_json()
    again = type(payload).model_validate_json(wire)
    assert again == payload
    assert again.model_dump_json() == wire


@given(payload=unit_states | unit_events | gateway_statuses | command_results)
def test_gateway_messages_carry_the_envelope(payload: BaseModel) -> None:
    wire = json.loads(payload.model_dump_json())
    assert wire["v"] == 1
    assert isinstance(wire["seq"], int)
    assert isinstance(wire["historical"], bool)
    assert wire["ts"].endswith("Z")
    assert len(wire["ts"]) == len("2026-11-24T09:00:00.000Z")


# --- the examples in docs/protocol.md ---------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EXAMPLE_MODELS: dict[frozenset[str], type[BaseModel]] = {
    frozenset({"online"}): UnitState,
    frozenset({"event_id"}): UnitEvent,
    frozenset({"boot_id"}): GatewayStatus,
    frozenset({"action"}): Command,
    frozenset({"ok"}): CommandResult,
    frozenset({"seqs"}): Receipt,
}


def test_every_json_example_in_the_docs_validates() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    seen = set()
    for block in blocks:
        data = json.loads(block)
        (model,) = [m for keys, m in EXAMPLE_MODELS.items() if keys <= data.keys()]
        assert model.model_validate(data).model_dump(mode="json") == data
        seen.add(model)
    assert seen == set(EXAMPLE_MODELS.values())
