"""The API's own request and response models: the published contract, not ORM rows.

Responses are built from plain views (`from_attributes`), so a column added to a table
never leaks into the API by accident, and the OpenAPI schema is what tests validate.
Times are aware UTC; `level` is the four-step colour the dashboard shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from server.incidents.kinds import LATCHING

Level = Literal["free", "busy", "crowded", "full", "no_chargers"]
"""free: half the healthy ports free now; busy: fewer; crowded: the next free window is not
the coming one; full: no healthy port, closed, or nothing free within the horizon;
no_chargers: no battery with ports is mapped to the station (nothing to charge at)."""


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PortOut(_Out):
    gw_id: str
    unit: str
    port: int
    status: str
    """Effective: the reported status with offline, staleness and admin disable applied."""
    reported_status: str
    occupied: bool | None
    power_w: float | None
    energy_wh: float | None
    temp_c: float | None
    error: str
    admin_disabled: bool


class BatteryOut(_Out):
    gw_id: str
    unit: str
    online: bool
    """False when the battery, its gateway, or its reports are gone."""
    soc_pct: float | None
    temp_c: float | None
    rated_wh: float | None
    alarms: list[str]
    ports: list[PortOut]


class Availability(_Out):
    free_now: int
    healthy_ports: int
    total_ports: int
    next_free_window: datetime | None
    next_free_places: int
    open_now: bool
    level: Level


class StationOut(_Out):
    id: str
    name_ja: str
    name_en: str
    latitude: float
    longitude: float
    address: str
    municipality: str
    counterpart_group: str | None
    opens_at: str | None
    closes_at: str | None
    slot_minutes: int
    availability: Availability
    open_incidents: int


class IncidentBrief(_Out):
    id: int
    kind: str
    severity: str
    state: str
    gw_id: str | None
    unit: str | None
    port: int | None
    opened_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def alarm_reset(self) -> bool:
        """Resolving it may reset the battery's latched alarms (`reset_alarms: true`)."""
        return self.kind in LATCHING and self.unit is not None


class StationDetail(StationOut):
    batteries: list[BatteryOut]
    incidents: list[IncidentBrief]


class StationList(_Out):
    stations: list[StationOut]
    at: datetime


class WindowOut(_Out):
    start: datetime
    end: datetime
    places: int
    """Bookings this window can still take (ports and energy)."""
    booked: int


class WindowList(_Out):
    station_id: str
    windows: list[WindowOut]


class OptionsRequest(_In):
    """Where the resident is and from when; the location is used for ranking, never stored."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    earliest: datetime | None = None
    limit: int = Field(default=5, ge=1, le=20)


class OptionOut(_Out):
    station_id: str
    name_ja: str
    name_en: str
    window_start: datetime
    walk_min: float
    wait_min: float
    cost: float
    places: int


class OptionList(_Out):
    options: list[OptionOut]


class BookingRequest(_In):
    resident_id: str = Field(min_length=1, max_length=100)
    station_id: str = Field(min_length=1, max_length=64)
    window_start: datetime


class BookingOut(_Out):
    id: str
    resident_id: str
    station_id: str
    window_start: datetime
    window_end: datetime
    port: int
    status: str
    """active / checked_in / completed / cancelled / no_show / moved."""
    ticket_code: str
    created_at: datetime
    updated_at: datetime
    moved_from_id: str | None


class IncidentOut(IncidentBrief):
    station_id: str | None
    detail: str
    occurrences: int
    last_seen_at: datetime
    condition_cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    escalated_at: datetime | None


class ResolveRequest(_In):
    reset_alarms: bool = False
    """Also reset the battery's latched alarms (a port fault or battery alarm): the crew has
    fixed the cause, and the battery shows it cleared only once its alarms are reset."""


class IncidentList(_Out):
    incidents: list[IncidentOut]


class NotificationOut(_Out):
    id: int
    kind: str
    resident_id: str
    booking_id: str | None
    payload: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None


class NotificationList(_Out):
    notifications: list[NotificationOut]


class PortAdminOut(_Out):
    gw_id: str
    unit: str
    port: int
    admin_disabled: bool
    cmd_id: str
    """The gateway command carrying the change to the battery."""


class AlarmResetOut(_Out):
    gw_id: str
    unit: str
    cmd_id: str
    """The gateway command resetting the battery's alarms (AlmRst)."""


class ImportOut(_Out):
    """Ids (stations) or `gw/unit` names (batteries) by what the import did to them."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]
