"""protocol/topics.py: unit addresses and the topic patterns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import topics
from protocol.topics import (
    COMMAND,
    COMMAND_RESULT,
    DEFAULT_PREFIX,
    GATEWAY_STATUS,
    RECEIPT,
    UNIT_EVENT,
    UNIT_STATE,
    TopicPattern,
    UnitAddress,
)

UNIT = UnitAddress("rs485-1", 3)

# pattern, its topic for gateway "gw-01" (and UNIT where it has one), its subscription
CASES = [
    (GATEWAY_STATUS, "chargenet/v1/gw/gw-01/status", "chargenet/v1/gw/+/status"),
    (UNIT_STATE, "chargenet/v1/gw/gw-01/unit/rs485-1.3/state", "chargenet/v1/gw/+/unit/+/state"),
    (UNIT_EVENT, "chargenet/v1/gw/gw-01/unit/rs485-1.3/event", "chargenet/v1/gw/+/unit/+/event"),
    (COMMAND, "chargenet/v1/gw/gw-01/cmd", "chargenet/v1/gw/+/cmd"),
    (COMMAND_RESULT, "chargenet/v1/gw/gw-01/cmd/result", "chargenet/v1/gw/+/cmd/result"),
    (RECEIPT, "chargenet/v1/gw/gw-01/receipt", "chargenet/v1/gw/+/receipt"),
]
PATTERNS = [case[0] for case in CASES]


def has_unit(pattern: TopicPattern) -> bool:
    return "{unit}" in pattern.template


def test_every_pattern_is_covered() -> None:
    defined = [v for v in vars(topics).values() if isinstance(v, TopicPattern)]
    assert sorted(p.template for p in defined) == sorted(p.template for p in PATTERNS)


def test_default_prefix() -> None:
    assert DEFAULT_PREFIX == "chargenet/v1"


@pytest.mark.parametrize(("pattern", "topic", "subscription"), CASES, ids=lambda v: str(v))
def test_format_match_and_subscription(
    pattern: TopicPattern, topic: str, subscription: str
) -> None:
    unit = UNIT if has_unit(pattern) else None
    assert pattern.format(DEFAULT_PREFIX, "gw-01", unit) == topic
    assert pattern.match(DEFAULT_PREFIX, topic) == ("gw-01", unit)
    assert pattern.subscription(DEFAULT_PREFIX) == subscription


@pytest.mark.parametrize("pattern", PATTERNS, ids=lambda p: p.template)
def test_a_custom_prefix(pattern: TopicPattern) -> None:
    unit = UNIT if has_unit(pattern) else None
    topic = pattern.format("city/shelters", "gw_9", unit)
    assert topic.startswith("city/shelters/gw/gw_9/")
    assert pattern.match("city/shelters", topic) == ("gw_9", unit)
    assert pattern.match(DEFAULT_PREFIX, topic) is None
    assert pattern.subscription("city/shelters").startswith("city/shelters/gw/+/")


@pytest.mark.parametrize(("pattern", "topic", "_sub"), CASES, ids=lambda v: str(v))
def test_each_topic_matches_only_its_own_pattern(
    pattern: TopicPattern, topic: str, _sub: str
) -> None:
    for other in PATTERNS:
        if other is not pattern:
            assert other.match(DEFAULT_PREFIX, topic) is None, other.template


@pytest.mark.parametrize(
    "topic",
    [
        "chargenet/v2/gw/gw-01/unit/rs485-1.3/state",  # wrong prefix
        "xchargenet/v1/gw/gw-01/unit/rs485-1.3/state",
        "chargenet/gw/gw-01/unit/rs485-1.3/state",
        "chargenet/v1/gw/gw-01/unit/rs485-1.3/state/extra",  # wrong depth
        "chargenet/v1/gw/gw-01/unit/state",
        "chargenet/v1/gw/gw-01/unit/rs485-1.3/",
        "chargenet/v1/gw/gw-01/unit/rs485-1.0/state",  # bad unit
        "chargenet/v1/gw/gw-01/unit/rs485-1.248/state",
        "chargenet/v1/gw/gw-01/unit/rs485-1/state",
        "chargenet/v1/gw/gw-01/unit/rs485-1.x/state",
        "chargenet/v1/gw/gw-01/unit/+/state",
        "chargenet/v1/gw/gw-01/unit/a.b.3/state",
        "chargenet/v1/gw/+/unit/rs485-1.3/state",  # bad gateway id
        "chargenet/v1/gw//unit/rs485-1.3/state",
        "chargenet/v1/gw/gw.01/unit/rs485-1.3/state",
        "chargenet/v1/gw/gw-01/units/rs485-1.3/state",  # wrong literal
        "chargenet/v1/gw/gw-01/unit/rs485-1.3/event",
    ],
)
def test_unit_state_match_rejects(topic: str) -> None:
    assert UNIT_STATE.match(DEFAULT_PREFIX, topic) is None


@pytest.mark.parametrize(
    "topic",
    [
        "chargenet/v1/gw/gw-01",
        "chargenet/v1/gw/gw-01/status/x",
        "chargenet/v1/gw/#/status",
        "chargenet/v1/gateway/gw-01/status",
        "other/v1/gw/gw-01/status",
        "chargenet/v1/gw/gw-01/Status",
    ],
)
def test_gateway_status_match_rejects(topic: str) -> None:
    assert GATEWAY_STATUS.match(DEFAULT_PREFIX, topic) is None


@pytest.mark.parametrize("gw", ["", "gw.1", "gw/1", "+", "#", "gw 1", "g" * 65, "gw\n", "ゲート"])
def test_format_rejects_bad_gateway_ids(gw: str) -> None:
    with pytest.raises(ValueError, match="gateway id"):
        GATEWAY_STATUS.format(DEFAULT_PREFIX, gw)


@pytest.mark.parametrize("pattern", [UNIT_STATE, UNIT_EVENT], ids=lambda p: p.template)
def test_format_of_a_unit_topic_needs_a_unit(pattern: TopicPattern) -> None:
    with pytest.raises(ValueError, match="needs a unit"):
        pattern.format(DEFAULT_PREFIX, "gw-01")


# --- unit addresses --------------------------------------------------------------------


def test_unit_address_parse_and_str() -> None:
    assert UnitAddress.parse("rs485-1.3") == UnitAddress("rs485-1", 3)
    assert str(UnitAddress("tcp_lab", 247)) == "tcp_lab.247"
    assert UnitAddress.parse("b.1").unit_id == 1


def test_unit_addresses_order_by_bus_then_unit_id() -> None:
    units = [UnitAddress("b", 2), UnitAddress("a", 10), UnitAddress("b", 1)]
    assert [str(u) for u in sorted(units)] == ["a.10", "b.1", "b.2"]


bus_names = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)


@given(bus=bus_names, unit_id=st.integers(1, 247))
def test_unit_address_round_trips(bus: str, unit_id: int) -> None:
    unit = UnitAddress(bus, unit_id)
    assert UnitAddress.parse(str(unit)) == unit
    assert str(UnitAddress.parse(str(unit))) == str(unit)
    topic = UNIT_STATE.format(DEFAULT_PREFIX, bus, unit)
    assert UNIT_STATE.match(DEFAULT_PREFIX, topic) == (bus, unit)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "rs485-1",
        "rs485-1.",
        ".3",
        "a.b.3",
        "rs+485.3",
        "rs#485.3",
        "rs/485.3",
        "rs 485.3",
        "rs485-1.0",
        "rs485-1.248",
        "rs485-1.-3",
        "rs485-1.+3",
        "rs485-1.03",  # one unit, one topic: no leading zeros
        "rs485-1.3\n",
        "rs485-1.３",  # a full-width digit
        "rs485-1.x",
        "b" * 65 + ".3",
    ],
)
def test_unit_address_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        UnitAddress.parse(text)


@pytest.mark.parametrize(
    ("bus", "unit_id"),
    [("", 1), ("a.b", 1), ("a+", 1), ("a#", 1), ("a/b", 1), ("bus", 0), ("bus", 248), ("bus", -1)],
)
def test_unit_address_constructor_rejects(bus: str, unit_id: int) -> None:
    with pytest.raises(ValueError):
        UnitAddress(bus, unit_id)
