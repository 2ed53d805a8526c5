"""Live state as the rest of the server sees it: the effective status rule and its diffs.

Devices report what they know; the server adds what only it can know (the gateway died,
the unit went quiet, an operator disabled the port). `effective_status` is the one place
that combines them, so booking, incidents and the dashboard never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from server.ingest.changeset import GatewayChange, PortChange, UnitChange

OFFLINE: Final = "offline"
UNAVAILABLE: Final = "unavailable"
STALE_PERIODS: Final = 3
"""A unit or gateway silent for this many report periods is offline."""


def effective_status(
    reported: str, unit_online: bool, gateway_online: bool, stale: bool, admin_disabled: bool
) -> str:
    """What a port is for residents and crews.

    `offline` wins over everything (we cannot know what a silent port does), then an
    operator's disable (`unavailable`), then what the device reported.
    """
    if not unit_online or not gateway_online or stale:
        return OFFLINE
    if admin_disabled:
        return UNAVAILABLE
    return reported


def stale_cutoff(now: datetime, report_period_s: float) -> datetime:
    """Heard from before this, a unit or gateway counts as silent."""
    return now - timedelta(seconds=STALE_PERIODS * report_period_s)


def is_stale(flagged: bool, received_at: datetime | None, cutoff: datetime) -> bool:
    """Stale for a reader: marked by the sweep, never heard from, or overdue already
    (the periodic sweep may not have run since)."""
    return flagged or received_at is None or received_at < cutoff


def gateway_online(state: str, silent: bool) -> bool:
    """A gateway is online when its newest status says so and it has not gone quiet."""
    return state == "online" and not silent


@dataclass(frozen=True, slots=True)
class PortView:
    """One port as listeners see it: effective status, not the raw report."""

    unit_pk: int
    station_id: str | None
    gw_id: str
    unit: str
    port: int
    status: str
    occupied: bool | None
    error: str


@dataclass(frozen=True, slots=True)
class UnitView:
    unit_pk: int
    station_id: str | None
    gw_id: str
    unit: str
    online: bool
    """Effective: reported online, not stale, and its gateway online."""
    soc_pct: float | None
    rated_wh: float | None
    alarms: tuple[str, ...]


PortKey = tuple[int, int]
"""(unit_pk, port)."""


def port_changes(
    before: Mapping[PortKey, PortView], after: Mapping[PortKey, PortView], at: datetime
) -> list[PortChange]:
    """Ports whose effective status or occupancy differ; a new port counts as changed."""
    changes = []
    for key, now in sorted(after.items()):
        was = before.get(key)
        if was is not None and (was.status, was.occupied) == (now.status, now.occupied):
            continue
        changes.append(
            PortChange(
                unit_pk=now.unit_pk,
                station_id=now.station_id,
                gw_id=now.gw_id,
                unit=now.unit,
                port=now.port,
                before_status=was.status if was else None,
                after_status=now.status,
                before_occupied=was.occupied if was else None,
                after_occupied=now.occupied,
                error=now.error,
                at=at,
            )
        )
    return changes


def unit_changes(
    before: Mapping[int, UnitView], after: Mapping[int, UnitView], at: datetime
) -> list[UnitChange]:
    """Units whose effective online flag, SoC, rated energy or alarms differ."""
    changes = []
    for unit_pk, now in sorted(after.items()):
        then = before.get(unit_pk)
        if then == now:
            continue
        changes.append(
            UnitChange(
                unit_pk=now.unit_pk,
                station_id=now.station_id,
                gw_id=now.gw_id,
                unit=now.unit,
                online=now.online,
                was_online=then is not None and then.online,
                soc_pct=now.soc_pct,
                rated_wh=now.rated_wh,
                alarms=now.alarms,
                at=at,
            )
        )
    return changes


def gateway_changes(
    before: Mapping[str, bool], after: Mapping[str, bool], at: datetime
) -> list[GatewayChange]:
    """Gateways whose effective online state differs (a new gateway counts when online)."""
    return [
        GatewayChange(gw_id=gw_id, state="online" if online else OFFLINE, at=at)
        for gw_id, online in sorted(after.items())
        if before.get(gw_id, False) != online
    ]
