"""The outbox's payload encoding: exact round trips, plain JSON as it is, a frozen dictionary."""

from __future__ import annotations

import json
import random
import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.outbox_codec import DEFLATE_1, DICTIONARY_1, decode, encode
from protocol.payloads import CommandResult, GatewayStatus
from tests.gateway.conftest import event_entry, state_entry

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


def payloads() -> list[bytes]:
    """One of every kind the gateway sends, as it makes them."""
    birth = GatewayStatus(seq=7, ts=T0, state="online", boot_id="b", version="0.1.0",
                          units=[f"rs485-1.{n}" for n in range(1, 4097)])  # fmt: skip
    result = CommandResult(seq=8, ts=T0, cmd_id="c-1", ok=False, error="ポート 3 は故障中")
    messages = [
        state_entry(3).message,
        state_entry(4, rng=random.Random(1)).message,
        state_entry(5, ports=64, rng=random.Random(2)).message,
        event_entry(1).message,
        birth,
        result,
    ]
    return [m.model_dump_json().encode() for m in messages]


@pytest.mark.parametrize("payload", payloads(), ids=lambda p: p[:40].decode())
def test_a_payload_comes_back_byte_for_byte(payload: bytes) -> None:
    stored = encode(payload)
    assert stored[0] == DEFLATE_1
    assert decode(stored) == payload


@given(st.binary(max_size=4096))
def test_any_bytes_round_trip(payload: bytes) -> None:
    assert decode(encode(payload)) == payload


@given(JSON_VALUES, st.sampled_from(["", " ", "\n", "\t", "\r\n"]), st.booleans())
def test_plain_json_never_starts_with_a_format_byte_and_is_read_as_it_is(
    value: object, space: str, ascii_only: bool
) -> None:
    """What an outbox from before the encoding stored: any JSON text, whitespace first or not."""
    text = (space + json.dumps(value, ensure_ascii=ascii_only)).encode()
    assert text[0] != DEFLATE_1
    assert decode(text) == text


def test_a_state_is_stored_in_under_a_seventh_of_its_json() -> None:
    """Guards the dictionary against drifting from the payloads (a new field, say)."""
    rng = random.Random(3)
    sizes = [
        (len(p), len(encode(p)))
        for p in (state_entry(1, rng=rng).message.model_dump_json().encode() for _ in range(200))
    ]
    assert sum(s for _, s in sizes) * 7 < sum(j for j, _ in sizes)


def test_the_dictionary_is_frozen() -> None:
    """Rows in the field were deflated with it: a new dictionary needs a new format byte."""
    assert (len(DICTIONARY_1), zlib.crc32(DICTIONARY_1)) == (1750, 0x689A650B)


def test_an_unknown_format_or_a_cut_off_payload_is_refused() -> None:
    stored = encode(state_entry(1).message.model_dump_json().encode())
    with pytest.raises(ValueError, match="unknown format 0x02"):
        decode(bytes((0x02,)) + stored[1:])
    with pytest.raises(ValueError, match="cut off"):
        decode(stored[:-4])
