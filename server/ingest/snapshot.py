"""Rows -> live views, before and after a change, and the ChangeSet between them.

Ingest and the staleness sweep both change rows and then ask the same question: which
ports, units and gateways look different to the rest of the server now?
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from server.db.models import Gateway, Port, Unit
from server.ingest.changeset import ChangeSet, CommandAnswer, EventRecord
from server.ingest.live import (
    PortKey,
    PortView,
    UnitView,
    effective_status,
    gateway_changes,
    gateway_online,
    port_changes,
    unit_changes,
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    ports: dict[PortKey, PortView]
    units: dict[int, UnitView]
    gateways: dict[str, bool]


def take(
    gateways: Mapping[str, Gateway],
    units: Iterable[Unit],
    ports: Mapping[int, Mapping[int, Port]],
) -> Snapshot:
    """Effective views of these rows (a unit's gateway missing from `gateways` is offline)."""
    gateway_views = {g.gw_id: gateway_online(g.state, g.silent) for g in gateways.values()}
    unit_views: dict[int, UnitView] = {}
    port_views: dict[PortKey, PortView] = {}
    for unit in units:
        gw_up = gateway_views.get(unit.gw_id, False)
        online = bool(unit.online) and gw_up and not unit.stale
        unit_views[unit.id] = UnitView(
            unit_pk=unit.id,
            station_id=unit.station_id,
            gw_id=unit.gw_id,
            unit=unit.unit,
            online=online,
            soc_pct=unit.soc_pct,
            rated_wh=unit.rated_wh,
            alarms=tuple(unit.alarms or ()),
        )
        for number, port in ports.get(unit.id, {}).items():
            status = effective_status(
                port.status, bool(unit.online), gw_up, bool(unit.stale), bool(port.admin_disabled)
            )
            port_views[(unit.id, number)] = PortView(
                unit_pk=unit.id,
                station_id=unit.station_id,
                gw_id=unit.gw_id,
                unit=unit.unit,
                port=number,
                status=status,
                occupied=port.occupied,
                error=port.error,
            )
    return Snapshot(port_views, unit_views, gateway_views)


def changes(
    before: Snapshot,
    after: Snapshot,
    at: datetime,
    events: Sequence[EventRecord] = (),
    answers: Sequence[CommandAnswer] = (),
) -> ChangeSet:
    ports = port_changes(before.ports, after.ports, at)
    units = unit_changes(before.units, after.units, at)
    touched: list[str | None] = [c.station_id for c in ports]
    touched += [c.station_id for c in units] + [e.station_id for e in events]
    stations = {s for s in touched if s is not None}
    return ChangeSet(
        ports=tuple(ports),
        units=tuple(units),
        events=tuple(events),
        gateways=tuple(gateway_changes(before.gateways, after.gateways, at)),
        station_ids=frozenset(stations),
        commands=tuple(answers),
    )
