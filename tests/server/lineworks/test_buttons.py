"""Buttons: the postback encoding, its limits, and a handler for every button."""

from __future__ import annotations

import pytest

from server.lineworks.buttons import (
    LABEL_MAX,
    POSTBACK_MAX,
    Button,
    Press,
    action,
    button_template,
    decode,
    encode,
)
from server.lineworks.callbacks import BUTTONS


def test_every_button_has_a_handler() -> None:
    assert set(BUTTONS) == set(Button)


@pytest.mark.parametrize("button", list(Button))
def test_encode_decode_round_trip(button: Button) -> None:
    assert encode(button, [42]) == f"{button}:42"
    assert decode(encode(button, [42, 43, 2**31 - 1])) == Press(button, (42, 43, 2**31 - 1))


@pytest.mark.parametrize("data", [
    "", "ack", "ack:", "ack:x", "ack:1..2", "ack:0", "ack:-1", f"ack:{2**31}", "ack:１",
    "nuke:1", "ACK:1", "ack:1:2", "ack:" + "1." * 200 + "1",
])  # fmt: skip
def test_decode_refuses_what_we_never_sent(data: str) -> None:
    assert decode(data) is None


def test_decode_drops_repeated_ids() -> None:
    assert decode("resolve:5.5.6") == Press(Button.RESOLVE, (5, 6))


def test_limits_are_enforced_where_the_data_is_made() -> None:
    ids = list(range(1_000_000_000, 1_000_000_000 + 26))
    assert len(encode(Button.RESOLVE, ids)) <= POSTBACK_MAX
    with pytest.raises(ValueError, match="at most 300"):
        encode(Button.RESOLVE, [*ids, 1_000_000_100])
    with pytest.raises(ValueError, match="at least one"):
        encode(Button.ACK, [])
    with pytest.raises(ValueError, match="1 to 20"):
        action("x" * (LABEL_MAX + 1), Button.ACK, [1])
    with pytest.raises(ValueError, match="1 to 10"):
        button_template("text", [action("a", Button.ACK, [n]) for n in range(1, 12)])
    assert action("対応 Ack", Button.ACK, [7]) == {
        "type": "message", "label": "対応 Ack", "postback": "ack:7",
    }  # fmt: skip
