"""The incident vocabulary shared by the pure rules and the database shell.

An incident is one unresolved problem per `dedupe_key` (the database enforces it). Its
*state* is what people did (open -> acknowledged -> resolved); its *condition* is what the
equipment does (active, or clear since `condition_cleared_at`). Keeping the two apart is
what lets a flapping port stay one incident: the condition clears and returns, the
incident stays open, and only a condition that stays clear for the debounce period
resolves it on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, TypedDict
from zoneinfo import ZoneInfo

from server.settings import Settings


class Kind(StrEnum):
    PORT_FAULT = "port_fault"
    BATTERY_ALARM = "battery_alarm"
    LOW_BATTERY = "low_battery"
    BATTERY_SILENT = "battery_silent"
    GATEWAY_OFFLINE = "gateway_offline"
    DEPLETION_FORECAST = "depletion_forecast"


LATCHING: Final = frozenset({Kind.PORT_FAULT, Kind.BATTERY_ALARM})
"""Conditions a battery keeps showing after their cause is gone, until its alarms are reset
(`reset_alarms`, SunSpec AlmRst): resolving one of these offers that reset."""


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class State(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


def worse(a: str, b: str) -> str:
    """The more severe of two severities: an incident is never quietly downgraded."""
    return Severity.CRITICAL if Severity.CRITICAL in (a, b) else Severity.WARNING


@dataclass(frozen=True, slots=True)
class Policy:
    """The thresholds the rules apply, from `Settings` plus the few that are ours alone."""

    debounce: timedelta
    escalate_after: timedelta
    low_soc_pct: float = 15.0
    """Below this a battery is low; critical below a third of it."""
    low_soc_clear_pct: float = 20.0
    """Hysteresis: low clears only at or above this, so SoC jitter at the threshold is not
    a flap."""
    forecast_critical: timedelta = timedelta(hours=1)
    """A forecast run-out sooner than this is critical: barely time to drive a battery out."""
    mute_after_resolve: timedelta = timedelta(hours=6)
    """A person resolved an incident whose condition was still active: the continuing
    condition does not reopen it (only a fresh occurrence after it clears does), for at most
    this long."""
    local_tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Tokyo"))
    """Where crews read "runs out by HH:MM"."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            debounce=timedelta(seconds=settings.incident_debounce_s),
            escalate_after=timedelta(minutes=settings.escalate_after_min),
            low_soc_pct=settings.low_soc_pct,
            low_soc_clear_pct=settings.low_soc_clear_pct,
            forecast_critical=timedelta(minutes=settings.forecast_critical_min),
        )


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An incident as the API, the dashboard and the rules see it (never a database row)."""

    id: int
    kind: str
    dedupe_key: str
    severity: str
    state: str
    station_id: str | None
    gw_id: str | None
    unit: str | None
    port: int | None
    detail: str
    occurrences: int
    opened_at: datetime
    last_seen_at: datetime
    condition_cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    escalated_at: datetime | None
    drill_id: int | None = None
    """The drill it belongs to (a drill's twin station or gateway); None when real."""

    @property
    def condition_active(self) -> bool:
        return self.condition_cleared_at is None


class Where(TypedDict):
    """The battery a signal is about, as ChangeSet items carry it."""

    station_id: str | None
    gw_id: str
    unit: str


@dataclass(frozen=True, slots=True)
class Signal:
    """One observation about one condition: it is active now, or it has cleared."""

    kind: Kind
    dedupe_key: str
    active: bool
    at: datetime
    severity: Severity = Severity.WARNING
    station_id: str | None = None
    gw_id: str | None = None
    unit: str | None = None
    port: int | None = None
    detail: str = ""


def port_key(gw_id: str, unit: str, port: int) -> str:
    return f"{Kind.PORT_FAULT}:{gw_id}/{unit}/{port}"


def alarm_key(gw_id: str, unit: str, alarm: str) -> str:
    return f"{Kind.BATTERY_ALARM}:{gw_id}/{unit}/{alarm}"


def unit_key(kind: Kind, gw_id: str, unit: str) -> str:
    """Keys of conditions of a whole battery (low, silent, forecast)."""
    return f"{kind}:{gw_id}/{unit}"


def gateway_key(gw_id: str) -> str:
    return f"{Kind.GATEWAY_OFFLINE}:{gw_id}"
