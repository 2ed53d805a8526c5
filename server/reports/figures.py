"""The after-action report's figures, from plain rows (no database, no clock).

Definitions (docs/reports.md says the same for operators):
- a booking is counted at its station in the period when its window starts in it; a
  booking that was `moved` is counted as `moved` only: its resident's place is the booking
  it was moved to, so `bookings` is one per resident request;
- served = completed + checked_in (a phone the port saw plugged in, `booking.upkeep`);
- wait = window start of the resident's final booking minus the time of the resident's
  first request (the `created_at` of the first booking in its `moved_from_id` chain);
- walk = a final (not moved) booking's `walk_m`, the ranking's walking model (1.3 x the
  straight line, 4 km/h for minutes) from where the resident asked; a booking made without
  a location, or one the system moved, has none and is counted under `no_location`;
- an incident is counted when it opened in the period; time to acknowledge and to resolve
  are measured from `opened_at`;
- capacity lost = port-hours under an open `port_fault` incident (opened to the port's
  recovery, `condition_cleared_at`, else to its resolution, else to the period's end),
  clipped to the period, overlaps of one port counted once;
- messages are outbox rows created in the period, per platform and state.
Percentiles are nearest-rank (the ceil(p*n)-th smallest value), so each is a real value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from server.booking.ranking import metres_to_minutes

SERVED = frozenset({"completed", "checked_in"})
PLATFORMS = ("line", "lineworks")
PORT_FAULT = "port_fault"


@dataclass(frozen=True, slots=True)
class StationRow:
    id: str
    name_ja: str
    name_en: str
    municipality: str


@dataclass(frozen=True, slots=True)
class BookingRow:
    id: str
    station_id: str
    status: str
    window_start: datetime
    created_at: datetime
    moved_from_id: str | None
    port: int
    ticket_code: str = ""
    released_for: str | None = None
    walk_m: int | None = None


@dataclass(frozen=True, slots=True)
class IncidentRow:
    id: int
    kind: str
    severity: str
    station_id: str | None
    gw_id: str | None
    unit: str | None
    port: int | None
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    condition_cleared_at: datetime | None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MessageRow:
    platform: str
    state: str
    station_id: str | None
    """The station whose booking or incident caused it; None when none did (a chat reply)."""
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Period:
    start: datetime
    end: datetime

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class Figures:
    """One station's, or the scope's total."""

    bookings: int
    served: int
    no_shows: int
    cancelled: int
    active: int
    moved: int
    wait_p50_min: float | None
    wait_p95_min: float | None
    walk_p50_m: float | None
    walk_p95_m: float | None
    walk_p50_min: float | None
    walk_p95_min: float | None
    no_location: int
    """Final bookings without a walk (booked without a location, or moved)."""
    incidents: int
    acknowledged: int
    resolved: int
    ack_p50_min: float | None
    ack_p95_min: float | None
    resolve_p50_min: float | None
    resolve_p95_min: float | None
    capacity_lost_port_h: float
    messages_sent: dict[str, int]
    messages_failed: dict[str, int]
    messages_pending: dict[str, int]


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    municipality: str | None
    """None: every municipality (and what belongs to no station)."""
    total: Figures
    stations: list[tuple[StationRow, Figures]]
    bookings: list[BookingRow] = field(default_factory=list)
    """The scope's bookings of the period, for the records."""
    waits: dict[str, float] = field(default_factory=dict)
    """Each final booking's wait in minutes, by booking id."""
    bookings_by_hour: dict[datetime, int] = field(default_factory=dict)
    """Bookings (not moved) per window hour (UTC), for the plots."""
    incidents: list[IncidentRow] = field(default_factory=list)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def resident_waits(
    bookings: Iterable[BookingRow], known: dict[str, BookingRow]
) -> dict[str, float]:
    """Each final (not moved) booking's wait in minutes, from its chain's first request."""
    waits: dict[str, float] = {}
    for row in bookings:
        if row.status == "moved":
            continue
        first, seen = row, {row.id}
        while first.moved_from_id and first.moved_from_id in known:
            first = known[first.moved_from_id]
            if first.id in seen:
                break
            seen.add(first.id)
        waits[row.id] = _minutes(row.window_start - first.created_at)
    return waits


def lost_port_hours(incidents: Iterable[IncidentRow], period: Period) -> float:
    """Port-hours under port faults in the period, each port's overlaps merged."""
    spans: dict[tuple[str | None, str | None, int | None], list[tuple[datetime, datetime]]] = {}
    for row in incidents:
        if row.kind != PORT_FAULT:
            continue
        end = row.condition_cleared_at or row.resolved_at or period.end
        start, end = max(row.opened_at, period.start), min(end, period.end)
        if end > start:
            spans.setdefault((row.gw_id, row.unit, row.port), []).append((start, end))
    total = 0.0
    for intervals in spans.values():
        intervals.sort()
        cur_start, cur_end = intervals[0]
        for start, end in intervals[1:]:
            if start > cur_end:
                total += (cur_end - cur_start).total_seconds()
                cur_start, cur_end = start, end
            else:
                cur_end = max(cur_end, end)
        total += (cur_end - cur_start).total_seconds()
    return total / 3600


def _per_platform(messages: Sequence[MessageRow], state: str) -> dict[str, int]:
    return {p: sum(1 for m in messages if m.platform == p and m.state == state) for p in PLATFORMS}


def figures(
    bookings: Sequence[BookingRow],
    waits: dict[str, float],
    incidents: Sequence[IncidentRow],
    messages: Sequence[MessageRow],
    period: Period,
) -> Figures:
    """The figures of these rows (already the ones of one station or of the scope)."""
    statuses = ("completed", "checked_in", "no_show", "cancelled", "active", "moved")
    by_status = {s: sum(1 for b in bookings if b.status == s) for s in statuses}
    wait_values = [waits[b.id] for b in bookings if b.id in waits]
    final = [b for b in bookings if b.status != "moved"]
    walks = [float(b.walk_m) for b in final if b.walk_m is not None]
    walk_p50, walk_p95 = percentile(walks, 50), percentile(walks, 95)
    opened = [i for i in incidents if i.opened_at in period]
    acks = [_minutes(i.acknowledged_at - i.opened_at) for i in opened if i.acknowledged_at]
    fixes = [_minutes(i.resolved_at - i.opened_at) for i in opened if i.resolved_at]
    return Figures(
        bookings=len(bookings) - by_status["moved"],
        served=by_status["completed"] + by_status["checked_in"],
        no_shows=by_status["no_show"],
        cancelled=by_status["cancelled"],
        active=by_status["active"],
        moved=by_status["moved"],
        wait_p50_min=percentile(wait_values, 50),
        wait_p95_min=percentile(wait_values, 95),
        walk_p50_m=walk_p50,
        walk_p95_m=walk_p95,
        walk_p50_min=None if walk_p50 is None else metres_to_minutes(walk_p50),
        walk_p95_min=None if walk_p95 is None else metres_to_minutes(walk_p95),
        no_location=len(final) - len(walks),
        incidents=len(opened),
        acknowledged=len(acks),
        resolved=len(fixes),
        ack_p50_min=percentile(acks, 50),
        ack_p95_min=percentile(acks, 95),
        resolve_p50_min=percentile(fixes, 50),
        resolve_p95_min=percentile(fixes, 95),
        capacity_lost_port_h=lost_port_hours(incidents, period),
        messages_sent=_per_platform(messages, "sent"),
        messages_failed=_per_platform(messages, "failed"),
        messages_pending=_per_platform(messages, "pending"),
    )


def build_report(
    stations: Sequence[StationRow],
    bookings: Sequence[BookingRow],
    chain: dict[str, BookingRow],
    incidents: Sequence[IncidentRow],
    messages: Sequence[MessageRow],
    period: Period,
    municipality: str | None,
) -> Report:
    """The report of `municipality`'s stations (None: all, with what has no station).

    `bookings` are those whose window starts in the period; `chain` holds them and the
    earlier bookings they were moved from, to find each resident's first request.
    """
    reached = [s for s in stations if municipality is None or s.municipality == municipality]
    ids = {s.id for s in reached}
    bookings = [b for b in bookings if b.station_id in ids and b.window_start in period]
    incidents = [i for i in incidents if (i.station_id in ids) or
                 (municipality is None and i.station_id is None)]  # fmt: skip
    messages = [m for m in messages if (m.station_id in ids) or
                (municipality is None and m.station_id is None)]  # fmt: skip
    messages = [m for m in messages if m.created_at in period]
    waits = resident_waits(bookings, chain)
    by_station: dict[str | None, tuple[list[BookingRow], list[IncidentRow], list[MessageRow]]]
    by_station = {  # one pass over the rows, not one per station (2,000 in a prefecture)
        s.id: ([], [], []) for s in reached
    }
    for b in bookings:
        by_station[b.station_id][0].append(b)
    for i in incidents:
        if i.station_id in by_station:
            by_station[i.station_id][1].append(i)
    for m in messages:
        if m.station_id in by_station:
            by_station[m.station_id][2].append(m)
    per_station: list[tuple[StationRow, Figures]] = []
    for station in sorted(reached, key=lambda s: (s.municipality, s.id)):
        own_bookings, own_incidents, own_messages = by_station[station.id]
        per_station.append(
            (station, figures(own_bookings, waits, own_incidents, own_messages, period))
        )
    by_hour: dict[datetime, int] = {}
    for b in bookings:
        if b.status != "moved":
            hour = b.window_start.replace(minute=0, second=0, microsecond=0)
            by_hour[hour] = by_hour.get(hour, 0) + 1
    return Report(
        period=period,
        municipality=municipality,
        total=figures(bookings, waits, incidents, messages, period),
        stations=per_station,
        bookings=sorted(bookings, key=lambda b: (b.window_start, b.id)),
        waits=waits,
        bookings_by_hour=dict(sorted(by_hour.items())),
        incidents=sorted(
            (i for i in incidents if i.opened_at in period), key=lambda i: i.opened_at
        ),
    )
