"""Where a booking goes when its port can no longer take it: pure planning, no database.

Order of preference (the resident already planned around this place and time):
1. the same station, the same window, another healthy free port;
2. the same station, the nearest later window within `max_delay`;
3. other stations, ranked by `rank_options` from the original station's coordinates (the
   resident's own location is never stored, and they were heading there anyway);
4. the same station's windows beyond `max_delay`.
The shell tries the targets in this order, each with the same claim as a new booking, so a
target that filled up meanwhile is simply skipped. When one loss displaces several bookings,
those of priority residents (who depend on power) are placed first (`priority_first`), and
only they may take places held back for priority (`holdback`).

A booking cancelled because its port stayed out of sight too long (`RELEASED_UNSEEN`) comes
back if its station does while the window is still ahead (`restorable`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from server.booking.capacity import Placement, StationView
from server.booking.ranking import FreeTable, Ranker

NOTIFY_MOVED = "booking_moved"
NOTIFY_CANCELLED = "booking_cancelled"
NOTIFY_RESTORED = "booking_restored"
NOTIFY_REMINDER = "booking_reminder"
"""Its window starts within `reminder_before_min` (`server.line.reminders`)."""
NOTIFY_CHECKED_IN = "booking_checked_in"
"""A phone was plugged at the booked port in its window (`upkeep.check_ins`)."""
NOTIFY_COMPLETED = "booking_completed"
"""The checked-in phone was unplugged, or its window ended (`upkeep`)."""
NOTIFY_HELD = "bookings_held"
"""To the crew: bookings are held at a station we lost sight of (see `CREW`)."""
CREW = "crew"
"""The `resident_id` of notifications for the crew rather than a resident."""
RELEASED_UNSEEN = "port_offline"
"""The release reason of bookings moved or cancelled after their port was out of sight."""


@dataclass(frozen=True, slots=True)
class Target:
    station_id: str
    window_start: datetime


def move_targets(
    origin: StationView,
    window_start: datetime,
    now: datetime,
    free: FreeTable,
    ranker: Ranker,
    max_delay: timedelta = timedelta(hours=2),
    limit: int = 5,
) -> list[Target]:
    """Targets for one displaced booking, best first (see the module docstring).

    `free` lists places per (station, window) with the displaced booking's own place
    already given back; `ranker` knows the stations within walking reach of `origin`.
    """
    from_ts = max(window_start, now).timestamp()
    same_station = [
        Target(origin.id, datetime.fromtimestamp(ts, UTC))
        for ts, _n in free.windows(origin.id, window_start.timestamp())
        if ts >= from_ts or ts == window_start.timestamp()
    ]
    soon = [t for t in same_station if t.window_start - window_start <= max_delay]
    late = [t for t in same_station if t.window_start - window_start > max_delay]
    earliest = max(window_start, now)
    ranked = ranker.rank(origin.latitude, origin.longitude, earliest, free, limit + 1)
    others = [Target(o.station_id, o.window_start) for o in ranked if o.station_id != origin.id]
    return [*soon, *others[:limit], *late]


_O = TypeVar("_O")


def priority_first(
    displaced: Iterable[tuple[_O, Placement]], priority: Collection[str]
) -> list[tuple[_O, Placement]]:
    """Displaced bookings (with their origin) in the order to move them: those of priority
    residents (`priority`: booking ids) first, each group in the order given, so the places
    left nearby go to those who depend on power before anyone else."""
    items = list(displaced)
    return [i for i in items if i[1].booking_id in priority] + [
        i for i in items if i[1].booking_id not in priority
    ]


def free_table(
    stations: Sequence[StationView],
    places: Mapping[str, Mapping[datetime, int]],
) -> FreeTable:
    """A `FreeTable` from places left per station and window (see `window_capacity`)."""
    known = {s.id for s in stations}
    table = FreeTable()
    for station_id, windows in places.items():
        if station_id in known:
            for start, n in windows.items():
                table.set(station_id, start, n)
    return table


@dataclass(frozen=True, slots=True)
class Released:
    """A booking cancelled for `RELEASED_UNSEEN`, as the restore rule sees it."""

    booking_id: str
    resident_id: str
    station_id: str
    window_start: datetime
    released_at: datetime


def restorable(
    released: Iterable[Released],
    stations: Mapping[str, StationView],
    booked: Collection[str],
    now: datetime,
) -> list[Released]:
    """Released bookings worth claiming their place again, in the order to try them.

    Only those whose window is still ahead, at a station with a port in sight again, and
    whose resident holds no active booking (`booked`): one who booked elsewhere meanwhile
    keeps that place, and so does one whose booking was moved rather than cancelled. One per
    resident (the latest released). Soonest window first, so the places left go to those who
    need them first; whether capacity still allows each is the claim's to say, and a booking
    it turns away stays cancelled (the resident already has that news).
    """
    latest: dict[str, Released] = {}
    for r in released:
        station = stations.get(r.station_id)
        if r.window_start <= now or r.resident_id in booked:
            continue
        if station is None or station.healthy_ports == 0:
            continue
        if r.resident_id not in latest or r.released_at > latest[r.resident_id].released_at:
            latest[r.resident_id] = r
    return sorted(latest.values(), key=lambda r: (r.window_start, r.released_at, r.booking_id))
