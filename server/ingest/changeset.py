"""What one ingest step changed, for the parts that react to it.

Ingest applies gateway messages to the database and hands a `ChangeSet` to each listener
(booking: moves and check-ins; incidents; the dashboard's live feed) through the fan-out.
Plain data: the listeners never see MQTT payloads or database rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class PortChange:
    """A port whose effective status or occupancy changed (`offline` included)."""

    unit_pk: int
    station_id: str | None
    gw_id: str
    unit: str
    port: int
    before_status: str | None
    after_status: str
    before_occupied: bool | None
    after_occupied: bool | None
    error: str
    at: datetime


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A gateway event applied for the first time (duplicates never appear here)."""

    event_id: str
    gw_id: str
    unit: str
    unit_pk: int | None
    station_id: str | None
    kind: str
    port: int | None
    alarm: str | None
    error: str | None
    detail: str | None
    ts: datetime
    historical: bool


@dataclass(frozen=True, slots=True)
class UnitChange:
    """A battery whose state changed: online flag, SoC, alarms ..."""

    unit_pk: int
    station_id: str | None
    gw_id: str
    unit: str
    online: bool
    was_online: bool
    """Before the change; False for a unit just created or never heard from."""
    soc_pct: float | None
    rated_wh: float | None
    alarms: tuple[str, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class GatewayChange:
    gw_id: str
    state: str
    """online / offline (Last Will, clean stop, or silence)."""
    at: datetime


@dataclass(frozen=True, slots=True)
class CommandAnswer:
    """A gateway answered a command (e.g. the ticket code reached the port's display)."""

    cmd_id: str
    gw_id: str
    ok: bool
    error: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ChangeSet:
    ports: tuple[PortChange, ...] = ()
    units: tuple[UnitChange, ...] = ()
    events: tuple[EventRecord, ...] = ()
    gateways: tuple[GatewayChange, ...] = ()
    station_ids: frozenset[str] = field(default_factory=frozenset)
    """Every station touched by any of the above."""
    commands: tuple[CommandAnswer, ...] = ()
    decided: bool = False
    """A person made these changes (an operator disabled a port), no device reported
    them: act at once, there is nothing to wait out."""
    pending: int | None = None
    """Its row in the journal (`journal`) until every listener has seen it."""

    def __bool__(self) -> bool:
        return bool(self.ports or self.units or self.events or self.gateways or self.commands)
