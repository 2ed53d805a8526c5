"""The rows one ingest batch works on, loaded up front so handlers never wait on the database.

`apply.py` loads (and creates) every row a batch can touch in a few bulk queries, then the
handlers fold the batch's messages into these rows in seq order; one flush writes it all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.db.models import CommandRow, Gateway, Port, Unit
from server.ingest.changeset import CommandAnswer

UnitKey = tuple[str, str]
"""(gw_id, `bus.unit_id`)."""


@dataclass
class Batch:
    gateways: dict[str, Gateway]
    units: dict[UnitKey, Unit]
    ports: dict[int, dict[int, Port]]
    """unit_pk -> port number -> row."""
    commands: dict[str, CommandRow]
    new_ports: list[Port] = field(default_factory=list)
    applied_units: dict[int, Unit] = field(default_factory=dict)
    """Units a state was applied to (by id): their rows and existing ports are written back."""
    events: list[dict[str, Any]] = field(default_factory=list)
    """UnitEventRow values, inserted at the end if their event_id is new."""
    answers: list[CommandAnswer] = field(default_factory=list)
    history: int = 0
    """States older than their unit's current one."""

    def gateway(self, gw_id: str) -> Gateway:
        return self.gateways[gw_id]

    def unit(self, gw_id: str, unit: str) -> Unit:
        return self.units[(gw_id, unit)]

    def port(self, unit: Unit, number: int) -> Port:
        """The port row, created on first sight."""
        ports = self.ports.setdefault(unit.id, {})
        row = ports.get(number)
        if row is None:
            row = Port(unit_pk=unit.id, port=number, admin_disabled=False)
            ports[number] = row
            self.new_ports.append(row)
        return row

    def add_event(self, values: dict[str, Any]) -> None:
        self.events.append(values)

    def answer(self, cmd_id: str, gw_id: str, ok: bool, error: str | None, at: datetime) -> None:
        self.answers.append(CommandAnswer(cmd_id, gw_id, ok, error, at))
