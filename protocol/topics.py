"""The MQTT topic scheme: `{prefix}/gw/{gw}/...`, one pattern per message kind.

A pattern both formats a topic and matches one, so publishers and subscribers share a
single definition of every topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

DEFAULT_PREFIX: Final = "chargenet/v1"
NAME_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
"""Gateway ids and bus names: safe in a topic level and free of the unit separator '.'."""
UNIT_ID_RE: Final = re.compile(r"^[1-9][0-9]{0,2}\Z")
"""A unit id as written in a topic: ASCII digits, no leading zero, so one unit has one topic."""


@dataclass(frozen=True, slots=True, order=True)
class UnitAddress:
    """A battery on a gateway: the bus it hangs on and its Modbus unit id."""

    bus: str
    unit_id: int

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.bus):
            raise ValueError(f"bus name {self.bus!r} must match {NAME_RE.pattern}")
        if not 1 <= self.unit_id <= 247:
            raise ValueError(f"unit id {self.unit_id} is outside 1..247")

    def __str__(self) -> str:
        return f"{self.bus}.{self.unit_id}"

    @classmethod
    def parse(cls, text: str) -> UnitAddress:
        """`rs485-1.3` -> UnitAddress("rs485-1", 3); ValueError when malformed."""
        bus, sep, unit_id = text.rpartition(".")
        if not sep or not UNIT_ID_RE.match(unit_id):
            raise ValueError(f"unit {text!r} is not '{{bus}}.{{unit_id}}'")
        return cls(bus, int(unit_id))


@dataclass(frozen=True, slots=True)
class TopicPattern:
    """A topic below the prefix with `{gw}` and optionally `{unit}` placeholders."""

    template: str

    def format(self, prefix: str, gw: str, unit: UnitAddress | None = None) -> str:
        if not NAME_RE.match(gw):
            raise ValueError(f"gateway id {gw!r} must match {NAME_RE.pattern}")
        if unit is None and "{unit}" in self.template:
            raise ValueError(f"{self.template} needs a unit")
        return f"{prefix}/" + self.template.format(gw=gw, unit=unit)

    def subscription(self, prefix: str) -> str:
        """The filter that matches this pattern for every gateway and unit."""
        return f"{prefix}/" + self.template.format(gw="+", unit="+")

    def match(self, prefix: str, topic: str) -> tuple[str, UnitAddress | None] | None:
        """(gw, unit) when `topic` is of this pattern, else None."""
        head = f"{prefix}/"
        if not topic.startswith(head):
            return None
        want = self.template.split("/")
        got = topic[len(head) :].split("/")
        if len(want) != len(got):
            return None
        gw: str | None = None
        unit: UnitAddress | None = None
        for pattern_level, level in zip(want, got, strict=True):
            if pattern_level == "{gw}":
                if not NAME_RE.match(level):
                    return None
                gw = level
            elif pattern_level == "{unit}":
                try:
                    unit = UnitAddress.parse(level)
                except ValueError:
                    return None
            elif pattern_level != level:
                return None
        return (gw, unit) if gw is not None else None


GATEWAY_STATUS: Final = TopicPattern("gw/{gw}/status")
UNIT_STATE: Final = TopicPattern("gw/{gw}/unit/{unit}/state")
UNIT_EVENT: Final = TopicPattern("gw/{gw}/unit/{unit}/event")
COMMAND: Final = TopicPattern("gw/{gw}/cmd")
COMMAND_RESULT: Final = TopicPattern("gw/{gw}/cmd/result")
RECEIPT: Final = TopicPattern("gw/{gw}/receipt")
"""Server->gateway: which seqs the server has stored, so the gateway may forget them."""
