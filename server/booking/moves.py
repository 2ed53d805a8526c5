"""Where a booking goes when its port can no longer take it: pure planning, no database.

Order of preference (the resident already planned around this place and time):
1. the same station, the same window, another healthy free port;
2. the same station, the nearest later window within `max_delay`;
3. other stations, ranked by `rank_options` from the original station's coordinates (the
   resident's own location is never stored, and they were heading there anyway);
4. the same station's windows beyond `max_delay`.
The shell tries the targets in this order, each with the same claim as a new booking, so a
target that filled up meanwhile is simply skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server.booking.capacity import StationView
from server.booking.ranking import FreeTable, Ranker

NOTIFY_MOVED = "booking_moved"
NOTIFY_CANCELLED = "booking_cancelled"


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
