"""Door: MQTT. Whatever reaches the server's ingest router or the gateway's command and
receipt handlers is handled or refused as documented, never raised into the loop.

The router's refusals are counted (`malformed`, `unknown_topic`); the gateway answers a
bad command on cmd/result (or counts it `rejected` when no cmd_id can be read) and counts
a bad receipt. Valid messages round-trip: serialised, routed and read back equal.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import event, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from gateway.commands import CommandRunner
from gateway.reports import Reporter
from protocol import topics
from protocol.payloads import (
    PORT_MAX,
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
)
from protocol.topics import UnitAddress
from server.ingest.router import IngestCounters, complete
from server.ingest.routes import MQTT_ROUTES
from tests.fuzz.hostile import SQL_LIKE, byte_edits, json_values, mutated

PREFIX = topics.DEFAULT_PREFIX
RECEIVED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
UNIT = UnitAddress("rs485-1", 3)

names = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
units = st.builds(UnitAddress, names, st.integers(1, 247))
finite = st.floats(allow_nan=False, allow_infinity=False) | st.none()
words = st.text(max_size=64) | st.sampled_from(SQL_LIKE)
timestamps = st.builds(
    lambda at, ms, offset: (at + timedelta(milliseconds=ms)).astimezone(timezone(offset)),
    st.datetimes(datetime(1, 1, 2), datetime(9999, 12, 30), timezones=st.just(UTC)).map(
        lambda t: t.replace(microsecond=0)
    ),
    st.integers(0, 999),
    st.integers(-14 * 60, 14 * 60).map(lambda m: timedelta(minutes=m)),
)
"""Any instant the contract can carry (milliseconds, as `format_ts` writes), in any zone."""
envelope = {"seq": st.integers(0, SEQ_MAX), "ts": timestamps, "historical": st.booleans()}

batteries = st.builds(
    BatteryState, soc_pct=finite, soh_pct=finite, voltage_v=finite, current_a=finite,
    power_w=finite, temp_c=finite, rated_wh=finite, state=words | st.none(),
    alarms=st.lists(st.text(max_size=64), max_size=8),
)  # fmt: skip


def port_states(number: int) -> st.SearchStrategy[PortState]:
    return st.builds(
        PortState, port=st.just(number), status=st.sampled_from(PortStatus),
        occupied=st.booleans() | st.none(), enabled=st.booleans() | st.none(),
        power_w=finite, energy_wh=finite, temp_c=finite,
        error=st.sampled_from(PortError), vendor_code=st.integers(0, 2**32 - 1) | st.none(),
        display_code=words | st.none(), session_s=st.integers(0, 2**32 - 1) | st.none(),
    )  # fmt: skip


def ports_of(numbers: list[int]) -> st.SearchStrategy[list[PortState]]:
    return st.tuples(*(port_states(n) for n in numbers)).map(list)


unit_states = st.builds(
    UnitState, **envelope, online=st.booleans(), battery=batteries | st.none(),
    ports=st.lists(st.integers(1, PORT_MAX), unique=True, max_size=8).flatmap(ports_of),
)  # fmt: skip
unit_events = st.builds(
    UnitEvent, **envelope, event_id=st.text(min_size=8, max_size=64),
    kind=st.sampled_from(EventKind), port=st.integers(1, PORT_MAX) | st.none(),
    alarm=words | st.none(),
    error=st.sampled_from(PortError) | st.none(), detail=words | st.none(),
)  # fmt: skip
statuses = st.builds(
    GatewayStatus, **envelope, state=st.sampled_from(["online", "offline"]), boot_id=words,
    version=words, units=st.lists(st.text(max_size=80), max_size=8),
    seq_run=st.text(max_size=64) | st.none(),
)  # fmt: skip
results = st.builds(CommandResult, **envelope, cmd_id=words, ok=st.booleans(),
                    error=words | st.none())  # fmt: skip
messages = st.one_of(unit_states, unit_events, statuses, results)


def topic_of(message: BaseModel, gw_id: str = "gw-1", unit: UnitAddress = UNIT) -> str:
    pattern = {UnitState: topics.UNIT_STATE, UnitEvent: topics.UNIT_EVENT,
               GatewayStatus: topics.GATEWAY_STATUS,
               CommandResult: topics.COMMAND_RESULT}[type(message)]  # fmt: skip
    return pattern.format(PREFIX, gw_id, unit)


def routed(topic: str, payload: bytes, defer: bool = False) -> tuple[Any, IngestCounters]:
    """Route one message as the ingest does (a deferred state completed), checking that it
    was counted once: routed (a deferred one that then failed, malformed too) or refused."""
    counters = IngestCounters()
    message = MQTT_ROUTES.route(PREFIX, topic, payload, RECEIVED, counters, {}, defer=defer)
    if message is not None:
        message = complete(message, counters)
    assert counters.received == 1
    assert counters.malformed + counters.unknown_topic == (message is None)
    assert (message is not None) <= sum(counters.routed.values()) <= (counters.unknown_topic == 0)
    event(
        "routed"
        if message
        else "refused: " + ("malformed" if counters.malformed else "unknown_topic")
    )
    return message, counters


@given(message=messages, gw_id=names, unit=units, defer=st.booleans())
def test_a_valid_message_round_trips(message: BaseModel, gw_id: str, unit: UnitAddress,
                                     defer: bool) -> None:  # fmt: skip
    inbound, counters = routed(topic_of(message, gw_id, unit), message.model_dump_json().encode(),
                               defer)  # fmt: skip
    assert inbound is not None, counters
    assert inbound.payload == message
    assert (inbound.gw_id, counters.routed[type(message).__name__]) == (gw_id, 1)
    assert inbound.unit == (None if type(message) in (GatewayStatus, CommandResult) else unit)


@given(message=messages, data=st.data(), defer=st.booleans())
def test_a_mutated_message_is_routed_or_counted_malformed(message: BaseModel, data: st.DataObject,
                                                          defer: bool) -> None:  # fmt: skip
    valid = json.loads(message.model_dump_json())
    payload = data.draw(mutated(valid))
    inbound, _ = routed(topic_of(message), payload, defer)
    if inbound is not None:  # what was let in is a model that says the same thing again
        again = type(message).model_validate_json(inbound.payload.model_dump_json())
        assert again == inbound.payload


@given(topic=st.text(max_size=80) | st.sampled_from(["chargenet/v1/gw/gw-1/unit/rs485-1.0/state",
       "chargenet/v1/gw/gw-1/unit/rs485-1.03/state", "chargenet/v1/gw/gw.1/status",
       "chargenet/v1/gw//status", "chargenet/v1/gw/+/status", "chargenet/v1/gw/gw-1/cmd"]),
       payload=st.binary(max_size=200))  # fmt: skip
def test_random_topics_and_bytes_are_counted(topic: str, payload: bytes) -> None:
    routed(f"{PREFIX}/{topic}" if topic.startswith("gw/") else topic, payload)


@given(payload=st.binary(max_size=400) | json_values.map(lambda v: json.dumps(v).encode()),
       kind=st.sampled_from([topics.UNIT_STATE, topics.UNIT_EVENT, topics.GATEWAY_STATUS,
                             topics.COMMAND_RESULT]), defer=st.booleans())  # fmt: skip
def test_random_payloads_on_every_topic_are_counted_malformed(
    payload: bytes, kind: topics.TopicPattern, defer: bool
) -> None:
    inbound, counters = routed(kind.format(PREFIX, "gw-1", UNIT), payload, defer)
    assert inbound is None and counters.malformed == 1


class Results(Reporter):
    """The reporter's one seam the command runner answers through."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, bool, str | None]] = []

    def on_command_result(self, cmd_id: str, ok: bool, error: str | None) -> None:
        self.answers.append((cmd_id, ok, error))


commands = st.builds(
    Command, cmd_id=st.text(min_size=1, max_size=64), unit=units.map(str),
    action=st.sampled_from(CommandAction), port=st.integers(1, PORT_MAX),
    value=st.text(st.characters(max_codepoint=127), max_size=8),
)  # fmt: skip


def answered(payload: bytes) -> tuple[Results, CommandRunner]:
    """Run one payload through a runner with no buses: every valid command fails there."""

    async def run() -> tuple[Results, CommandRunner]:
        results = Results()
        runner = CommandRunner({}, results)
        await runner.on_command(payload)
        await asyncio.gather(*runner._tasks)
        return results, runner

    return asyncio.run(run())


@given(command=commands)
def test_a_valid_command_round_trips_and_is_answered(command: Command) -> None:
    assert Command.model_validate_json(command.model_dump_json()) == command
    results, _ = answered(command.model_dump_json().encode())
    why = f"command {command.cmd_id}: no bus named {command.unit_address.bus!r}"
    assert results.answers == [(command.cmd_id, False, why)]


@given(data=st.data(), command=commands)
def test_every_command_payload_is_answered_or_counted(data: st.DataObject,
                                                      command: Command) -> None:  # fmt: skip
    payload = data.draw(mutated(json.loads(command.model_dump_json())) | st.binary(max_size=200))
    results, runner = answered(payload)
    assert len(results.answers) + runner.rejected == 1
    if results.answers:
        cmd_id, ok, error = results.answers[0]
        assert not ok and error and len(error) <= 500 and 0 < len(cmd_id) <= 64
        event("refused: answered not ok")
    else:
        event("refused: rejected (no cmd_id)")


receipts = st.builds(
    Receipt, seq_run=st.text(min_size=1, max_size=64),
    seqs=st.lists(st.tuples(st.integers(0, SEQ_MAX), st.integers(0, SEQ_MAX)).map(sorted)
                  .map(tuple), min_size=1, max_size=20),
)  # fmt: skip


@given(receipt=receipts, data=st.data())
def test_a_receipt_round_trips_and_a_mutated_one_is_valid_or_refused(
    receipt: Receipt, data: st.DataObject
) -> None:
    assert Receipt.model_validate_json(receipt.model_dump_json()) == receipt
    raw = json.loads(receipt.model_dump_json())
    payload = data.draw(mutated(raw) | byte_edits(receipt.model_dump_json().encode()))
    try:
        read = Receipt.model_validate_json(payload)
    except ValidationError:
        event("refused: ValidationError")
        return
    event("accepted")
    assert all(0 <= first <= last <= SEQ_MAX for first, last in read.seqs)
    assert 1 <= len(read.seq_run) <= 64
