"""Change sets as ingest builds them, for the incident tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from server.ingest.changeset import ChangeSet, EventRecord, GatewayChange, PortChange, UnitChange

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
GW = "demo-gw"
UNIT = "rs485-1.2"
STATION = "ozu-01"
_ids = itertools.count(1)


def event(
    kind: str,
    at: datetime = T0,
    *,
    port: int | None = None,
    alarm: str | None = None,
    error: str | None = None,
    historical: bool = False,
    unit: str = UNIT,
) -> ChangeSet:
    record = EventRecord(
        event_id=f"evt-{next(_ids):08d}", gw_id=GW, unit=unit, unit_pk=1, station_id=STATION,
        kind=kind, port=port, alarm=alarm, error=error, detail=None, ts=at,
        historical=historical,
    )  # fmt: skip
    return ChangeSet(events=(record,), station_ids=frozenset({STATION}))


def fault(at: datetime = T0, port: int = 3, error: str = "over_current") -> ChangeSet:
    return event("port_faulted", at, port=port, error=error)


def recover(at: datetime = T0, port: int = 3) -> ChangeSet:
    return event("port_recovered", at, port=port)


def unit_state(at: datetime = T0, *, online: bool = True, soc_pct: float | None = 80.0,
               alarms: tuple[str, ...] = (), unit: str = UNIT,
               was_online: bool = True) -> ChangeSet:  # fmt: skip
    change = UnitChange(
        unit_pk=1, station_id=STATION, gw_id=GW, unit=unit, online=online,
        was_online=was_online, soc_pct=soc_pct, rated_wh=2000.0, alarms=alarms, at=at,
    )  # fmt: skip
    return ChangeSet(units=(change,), station_ids=frozenset({STATION}))


def port_status(before: str, after: str, at: datetime = T0, port: int = 3,
                error: str = "none") -> ChangeSet:  # fmt: skip
    change = PortChange(
        unit_pk=1, station_id=STATION, gw_id=GW, unit=UNIT, port=port, before_status=before,
        after_status=after, before_occupied=False, after_occupied=False, error=error, at=at,
    )  # fmt: skip
    return ChangeSet(ports=(change,), station_ids=frozenset({STATION}))


def gateway(state: str, at: datetime = T0) -> ChangeSet:
    return ChangeSet(gateways=(GatewayChange(GW, state, at),))


def merged(*sets: ChangeSet) -> ChangeSet:
    return ChangeSet(
        ports=tuple(p for s in sets for p in s.ports),
        units=tuple(u for s in sets for u in s.units),
        events=tuple(e for s in sets for e in s.events),
        gateways=tuple(g for s in sets for g in s.gateways),
        station_ids=frozenset().union(*(s.station_ids for s in sets)),
    )
