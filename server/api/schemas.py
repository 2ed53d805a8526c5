"""The API's own request and response models: the published contract, not ORM rows.

Responses are built from plain views (`from_attributes`), so a column added to a table
never leaks into the API by accident, and the OpenAPI schema is what tests validate.
Times are aware UTC; `level` is the four-step colour the dashboard shows.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from annotated_types import Interval
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    WithJsonSchema,
    computed_field,
)

from protocol.payloads import PORT_MAX
from server.errors import Invalid
from server.incidents.kinds import LATCHING

if TYPE_CHECKING:  # the registry's models import these schemas
    from server.registry.service import ImportReport

PRINTABLE_RE: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""No control characters (C0, DEL, C1): PostgreSQL cannot store a NUL, and none belongs in
an id or a name, so both stores refuse them alike, here."""
Text = Annotated[str, StringConstraints(pattern=PRINTABLE_RE)]
"""Every id, name and free text the API takes (add the column's length where it is used)."""
Id = Annotated[Text, StringConstraints(min_length=1, max_length=100)]
"""An id in a path or a query: a station, booking, gateway, battery or resident."""
RowId = Annotated[int, Interval(ge=1, le=2**31 - 1)]
"""A row number (an incident): the database's 32-bit INTEGER."""
PortNumber = Annotated[int, Interval(ge=1, le=PORT_MAX)]

INSTANT_RE: Final = (
    r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]"
    r":[0-5][0-9](\.[0-9]{1,6})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
INSTANT_HELP: Final = "RFC 3339 with a time zone, years 2000-2099, e.g. 2030-04-01T09:00:00+09:00"


def _instant_text(value: object) -> object:
    """Only an RFC 3339 string (or a datetime from our own code) is a time: no number as
    seconds since 1970, no time without a zone, no year the calendar arithmetic overflows."""
    if isinstance(value, datetime) or (isinstance(value, str) and re.fullmatch(INSTANT_RE, value)):
        return value
    raise ValueError(f"not a time: {INSTANT_HELP}")


def _json_number(value: object) -> object:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("a JSON number is required")
    return value


Count = Annotated[int, BeforeValidator(_json_number), Strict(False)]
"""An integer in a strict model that takes `8.0` as JSON Schema does, never `"8"` or `true`."""

Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_instant_text),
    Strict(False),  # the string is checked above; strict would refuse it from parsed JSON
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": INSTANT_RE,
         "description": INSTANT_HELP}
    ),
]  # fmt: skip
"""Every time the API takes: one rule for a body field and a query parameter alike."""

Level = Literal["free", "busy", "crowded", "full", "no_chargers"]
"""free: half the healthy ports free now; busy: fewer; crowded: the next free window is not
the coming one; full: no healthy port, closed, or nothing free within the horizon;
no_chargers: no battery with ports is mapped to the station (nothing to charge at)."""


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _In(BaseModel):
    """Strict: `false` is no number, `"1"` no bool, `0` no time."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)


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
    name: str
    """As a crew finds it at the station: "battery 2 (rs485-1.2)"."""
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
    drill_id: int | None = None
    """A running drill's twin of a real station (訓練 / DRILL); None for a real station."""


class IncidentBrief(_Out):
    id: int
    kind: str
    severity: str
    state: str
    gw_id: str | None
    unit: str | None
    port: int | None
    opened_at: datetime
    place: str | None = None
    """Its battery and port as a crew finds them on site: "battery 2 (rs485-1.2) port 3"."""

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
    """Bookings this window can still take (ports and energy) from anyone."""
    booked: int
    held: int = 0
    """Places held back for residents granted priority until shortly before the window
    (a municipality's rule), not counted in `places`."""


class WindowList(_Out):
    station_id: str
    windows: list[WindowOut]


class OptionsRequest(_In):
    """Where the resident is and from when; the location is used for ranking, never stored."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    earliest: Instant | None = None
    limit: Count = Field(default=5, ge=1, le=20)


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
    resident_id: Text = Field(min_length=1, max_length=100)
    station_id: Text = Field(min_length=1, max_length=64)
    window_start: Instant
    latitude: float | None = Field(default=None, ge=-90, le=90)
    """Where the resident asked from (with `longitude`): only its walking distance to the
    station is kept, for the after-action reports."""
    longitude: float | None = Field(default=None, ge=-180, le=180)

    def origin(self) -> tuple[float, float] | None:
        """(lat, lon) when both are given, else None (booked without a location)."""
        if self.latitude is None or self.longitude is None:
            return None
        return self.latitude, self.longitude


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
    place: str
    """The port as a crew finds it on site: "battery 2 (rs485-1.2) port 3"."""


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
    drill_id: int | None = None
    """The drill it belongs to (訓練 / DRILL); None for a real incident."""


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


class AuditEntryOut(_Out):
    id: int
    at: datetime
    actor: str
    """Who: an operator's token, a crew member (`lineworks:{userId}`), or `system`."""
    action: str
    subject: str
    detail: dict[str, Any]


class AuditList(_Out):
    entries: list[AuditEntryOut]


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


def import_out(report: ImportReport) -> ImportOut:
    """What an import did; Invalid (a 422 naming the first 20 bad rows) if it did nothing."""
    if not report.ok:
        raise Invalid("; ".join(str(e) for e in report.errors[:20]), code="invalid_csv")
    return ImportOut(created=list(report.created), updated=list(report.updated),
                     unchanged=list(report.unchanged))  # fmt: skip


class ErrorDetail(BaseModel):
    code: str
    """Machine-readable and stable: clients branch on it."""
    message: str
    """For humans."""
    field: str | None = None
    """The offending field, for 422 `invalid`."""


class ErrorOut(BaseModel):
    """The one shape of every error the API answers (see `server.api.errors`)."""

    error: ErrorDetail


# -- drills (server.drills) ------------------------------------------------------------------

BatteryName = Annotated[Text, StringConstraints(min_length=1, max_length=80)]


class DrillStart(_In):
    name: Annotated[Text, StringConstraints(min_length=1, max_length=200)]
    scenario: Annotated[Text, StringConstraints(min_length=1, max_length=200)]
    """The simulator scenario played (`typhoon-night`), as the drill's record names it."""
    municipalities: Annotated[list[Id], Field(min_length=1, max_length=50)]
    units: Annotated[list[BatteryName], Field(min_length=1, max_length=2000)]
    """The scenario's batteries as its gateway names them (`shelter-01.1`): `chargenet drill
    start` reads them from the scenario."""


class DrillOut(_Out):
    id: int
    name: str
    scenario: str
    municipalities: list[str]
    gw_id: str
    """The gateway id the drill's simulator and gateway publish under."""
    started_at: datetime
    started_by: str
    ended_at: datetime | None
    ended_by: str | None
    active: bool
    stations: dict[str, str]
    """Twin station id -> the real station it stands beside."""
    units: dict[str, str]
    """Battery -> twin station id."""


class DrillList(_Out):
    drills: list[DrillOut]


class TimingOut(_Out):
    count: int
    p50_s: float | None
    max_s: float | None


class DrillIncidentOut(_Out):
    id: int
    kind: str
    station_id: str | None
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    ack_s: float | None
    resolve_s: float | None


class DrillReportOut(_Out):
    drill: DrillOut
    incidents: int
    alerts_sent: dict[str, int]
    """LINE WORKS messages about the drill's incidents, by what they said."""
    acknowledged: TimingOut
    """Time from an incident's opening to a crew's acknowledgement."""
    resolved: TimingOut
    """Time to resolution, by a crew or by the rules; not counting the drill's end."""
    unresolved_at_end: int
    actors: dict[str, dict[str, int]]
    bookings: dict[str, int]
    resident_notices: int
    real_incidents: int
    """Real incidents opened while the drill ran: alerted as real, not counted here."""
    rows: list[DrillIncidentOut]
