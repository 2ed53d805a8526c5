"""The buttons crews press on LINE WORKS, and the postback data each one carries.

A `button_template` takes *message* actions (the platform keeps postback actions for
carousels, quick replies and rich menus): pressing one posts its label in the channel, as
the presser, and calls us back with a message event whose `content.postback` is our data.
The data is `ack:42` or `ack:42.43.44` ("acknowledge all" is the same button with several
ids); the platform's limits (label 20 characters, postback 300) are checked here, once.
`server.lineworks.callbacks.BUTTONS` routes each `Button` to its handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

LABEL_MAX: Final = 20
POSTBACK_MAX: Final = 300
ACTIONS_MAX: Final = 10
"""Buttons one `button_template` may carry."""
ID_SEPARATOR: Final = "."


class Button(StrEnum):
    ACK = "ack"
    RESOLVE = "resolve"


@dataclass(frozen=True, slots=True)
class Press:
    """What a pressed button asks for: acknowledge or resolve these incidents."""

    button: Button
    incident_ids: tuple[int, ...]


def encode(button: Button, incident_ids: Sequence[int]) -> str:
    """The postback data of a button for these incidents; ValueError past the limit."""
    if not incident_ids:
        raise ValueError("a button acts on at least one incident")
    data = f"{button}:{ID_SEPARATOR.join(str(i) for i in incident_ids)}"
    if len(data) > POSTBACK_MAX:
        raise ValueError(f"postback data of {len(data)} characters, at most {POSTBACK_MAX}")
    return data


def decode(data: str) -> Press | None:
    """The press a postback names; None for anything we did not send (or no longer know)."""
    name, _, ids = data.partition(":")
    if name not in set(Button) or len(data) > POSTBACK_MAX:
        return None
    parts = ids.split(ID_SEPARATOR)
    if not all(part.isascii() and part.isdigit() and len(part) <= 10 for part in parts):
        return None
    numbers = tuple(dict.fromkeys(int(part) for part in parts))
    if not all(1 <= n < 2**31 for n in numbers):
        return None
    return Press(Button(name), numbers)


def action(label: str, button: Button, incident_ids: Sequence[int]) -> dict[str, Any]:
    """One message action of a `button_template`."""
    if not 1 <= len(label) <= LABEL_MAX:
        raise ValueError(f"label {label!r}: 1 to {LABEL_MAX} characters")
    return {"type": "message", "label": label, "postback": encode(button, incident_ids)}


def button_template(text: str, actions: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A LINE WORKS button message (the `content` of a send)."""
    if not 1 <= len(actions) <= ACTIONS_MAX:
        raise ValueError(f"{len(actions)} buttons, 1 to {ACTIONS_MAX} allowed")
    return {"type": "button_template", "contentText": text, "actions": list(actions)}
