"""Ranked options for a resident at (lat, lon) who can leave at `earliest`.

cost = 2 x walking minutes (there and back) + minutes waiting at the station for the window.
Walking is 4 km/h over 1.3 x the great-circle distance (streets are not straight lines).

Choice of options: at most one per station, its earliest free window the resident can reach
(a later window at the same station only costs more waiting, and a list of five slots at one
station is no choice at all). Only when fewer stations than `limit` qualify are the later
windows of those stations added, so a resident with a single station in reach still gets a
choice of times.

Speed: `rank_options` is the simple entry. A shell that ranks many requests keeps a `Ranker`
(stations in a spatial grid, built once) and a `FreeTable` (free windows per station, sorted,
updated as bookings are made) and calls `Ranker.rank`: a request then touches only the
stations within walking reach and finds each one's first free window by bisection.
"""

from __future__ import annotations

import heapq
import itertools
import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from server.booking.capacity import StationView

WALK_KMH: Final = 4.0
DETOUR: Final = 1.3
EARTH_RADIUS_KM: Final = 6371.0088
_MIN_PER_KM: Final = DETOUR * 60.0 / WALK_KMH
_KM_PER_DEG_LAT: Final = math.pi * EARTH_RADIUS_KM / 180.0


def walking_metres(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres on foot between two points: 1.3 x haversine distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h))) * DETOUR * 1000.0


def walking_minutes(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Minutes on foot between two points: `walking_metres` at 4 km/h."""
    return metres_to_minutes(walking_metres(lat1, lon1, lat2, lon2))


def metres_to_minutes(metres: float) -> float:
    """Minutes on foot for a walk of `metres` at 4 km/h."""
    return metres / 1000.0 * 60.0 / WALK_KMH


def minutes_to_metres(minutes: float) -> float:
    """The walk of `minutes` on foot at 4 km/h, in metres (an option's, for its booking)."""
    return minutes * WALK_KMH * 1000.0 / 60.0


@dataclass(frozen=True, slots=True)
class Option:
    station_id: str
    window_start: datetime
    walk_min: float
    wait_min: float
    cost: float
    """2 x walk_min + wait_min."""
    free: int


class FreeTable:
    """Free places per (station, window), with each station's free windows kept sorted.

    Only windows with a free place are listed, so the first window at or after an arrival
    time is one bisection away. Times are kept as POSIX seconds for cheap comparisons.
    """

    __slots__ = ("_count", "_starts")

    def __init__(self, free: Mapping[tuple[str, datetime], int] | None = None) -> None:
        self._starts: dict[str, list[float]] = {}
        self._count: dict[tuple[str, float], int] = {}
        for (station_id, start), n in (free or {}).items():
            self.set(station_id, start, n)

    def set(self, station_id: str, start: datetime, n: int) -> None:
        """Record `n` free places in a window (0 or less unlists it)."""
        ts = start.timestamp()
        key = (station_id, ts)
        starts = self._starts.setdefault(station_id, [])
        if n > 0:
            if key not in self._count:
                insort(starts, ts)
            self._count[key] = n
        elif self._count.pop(key, None) is not None:
            del starts[bisect_left(starts, ts)]

    def copy(self) -> FreeTable:
        """An independent table with the same places (to decide a batch on)."""
        other = FreeTable()
        other._starts = {sid: list(starts) for sid, starts in self._starts.items()}
        other._count = dict(self._count)
        return other

    def get(self, station_id: str, start: datetime) -> int:
        return self._count.get((station_id, start.timestamp()), 0)

    def take(self, station_id: str, start: datetime, n: int = 1) -> None:
        """A booking took `n` places in this window."""
        self.set(station_id, start, self.get(station_id, start) - n)

    def clear_station(self, station_id: str) -> None:
        """No window of this station can take anyone (closed, empty battery ...)."""
        for ts in self._starts.pop(station_id, []):
            del self._count[(station_id, ts)]

    def first(self, station_id: str, from_ts: float) -> tuple[float, int] | None:
        """(start, free) of the station's first free window starting at or after `from_ts`."""
        starts = self._starts.get(station_id)
        if not starts:
            return None
        i = bisect_left(starts, from_ts)
        if i == len(starts):
            return None
        return starts[i], self._count[(station_id, starts[i])]

    def windows(self, station_id: str, from_ts: float) -> list[tuple[float, int]]:
        """(start, free) of the station's free windows starting at or after `from_ts`."""
        starts = self._starts.get(station_id, [])
        count = self._count
        return [(ts, count[(station_id, ts)]) for ts in starts[bisect_left(starts, from_ts) :]]

    def __len__(self) -> int:
        return len(self._count)


class Ranker:
    """Stations in a grid of cells about `cell_km` wide, for nearest-first ranking.

    Built once per set of stations (their places do not move); free capacity lives in a
    `FreeTable` passed to each call, so bookings never invalidate the grid.
    """

    __slots__ = ("_cell_deg", "_cells", "_cos_ref")

    def __init__(self, stations: Sequence[StationView], cell_km: float = 1.0) -> None:
        self._cell_deg = cell_km / _KM_PER_DEG_LAT
        ref_lat = sum(s.latitude for s in stations) / len(stations) if stations else 0.0
        self._cos_ref = math.cos(math.radians(ref_lat))
        self._cells: dict[tuple[int, int], list[tuple[str, float, float, float]]] = {}
        for s in stations:
            lat, lon = math.radians(s.latitude), math.radians(s.longitude)
            entry = (s.id, lat, lon, math.cos(lat))
            self._cells.setdefault(self._cell(s.latitude, s.longitude), []).append(entry)

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return (math.floor(lat / self._cell_deg), math.floor(lon * self._cos_ref / self._cell_deg))

    def within(self, lat: float, lon: float, max_walk_min: float) -> list[tuple[float, str]]:
        """(walking minutes, station id) of every station within `max_walk_min`, nearest first."""
        p1, l1 = math.radians(lat), math.radians(lon)
        cos1 = math.cos(p1)
        # Cells are square in km at the stations' mean latitude; east-west they narrow with
        # the cosine of the latitude, so look over as many more cells as that takes.
        cells_across = max_walk_min / _MIN_PER_KM / (self._cell_deg * _KM_PER_DEG_LAT)
        span_i = math.ceil(cells_across) + 1
        span_j = math.ceil(cells_across * self._cos_ref / max(cos1, 1e-6)) + 1
        ci, cj = self._cell(lat, lon)
        scale = 2 * EARTH_RADIUS_KM * _MIN_PER_KM
        sin, asin, sqrt = math.sin, math.asin, math.sqrt
        found: list[tuple[float, str]] = []
        cells = self._cells
        if (2 * span_i + 1) * (2 * span_j + 1) > len(cells):
            # Near a pole the window spans millions of cells: visit the occupied ones instead.
            keys: Iterable[tuple[int, int]] = [
                (i, j) for i, j in cells if abs(i - ci) <= span_i and abs(j - cj) <= span_j
            ]
        else:
            keys = itertools.product(
                range(ci - span_i, ci + span_i + 1), range(cj - span_j, cj + span_j + 1)
            )
        for key in keys:
            bucket = cells.get(key)
            if bucket is None:
                continue
            for sid, p2, l2, cos2 in bucket:
                h = sin((p2 - p1) / 2) ** 2 + cos1 * cos2 * sin((l2 - l1) / 2) ** 2
                walk = scale * asin(min(1.0, sqrt(h)))
                if walk <= max_walk_min:
                    found.append((walk, sid))
        found.sort()
        return found

    def rank(
        self,
        lat: float,
        lon: float,
        earliest: datetime,
        free: FreeTable,
        limit: int = 5,
        max_walk_min: float = 60.0,
    ) -> list[Option]:
        """The best `limit` options by cost; ties go to the earlier window, then station id."""
        if limit <= 0:
            return []
        t0 = earliest.timestamp()
        found: list[tuple[float, float, str, float, int]] = []  # cost, start, id, walk, free
        worst: list[float] = []  # negated costs of the best `limit` so far: a max-heap
        reachable: list[tuple[float, str]] = []
        for walk, sid in self.within(lat, lon, max_walk_min):
            if len(worst) == limit and 2 * walk > -worst[0]:
                break  # every further station costs more than the options kept
            arrival = t0 + walk * 60.0
            first = free.first(sid, arrival)
            if first is None:
                continue
            reachable.append((walk, sid))
            cost = 2 * walk + (first[0] - arrival) / 60.0
            found.append((cost, first[0], sid, walk, first[1]))
            _push(worst, limit, cost)
        if len(reachable) < limit:
            for walk, sid in reachable:
                arrival = t0 + walk * 60.0
                for start, n in free.windows(sid, arrival)[1:]:
                    cost = 2 * walk + (start - arrival) / 60.0
                    if len(worst) == limit and cost > -worst[0]:
                        break  # later windows of this station only cost more
                    found.append((cost, start, sid, walk, n))
                    _push(worst, limit, cost)
        return [
            Option(
                station_id=sid,
                window_start=datetime.fromtimestamp(start, UTC),
                walk_min=walk,
                wait_min=cost - 2 * walk,
                cost=cost,
                free=n,
            )
            for cost, start, sid, walk, n in heapq.nsmallest(limit, found)
        ]


def _push(worst: list[float], limit: int, cost: float) -> None:
    """Track the `limit` lowest costs seen, the highest of them on top."""
    if len(worst) < limit:
        heapq.heappush(worst, -cost)
    elif cost < -worst[0]:
        heapq.heapreplace(worst, -cost)


def rank_options(
    lat: float,
    lon: float,
    earliest: datetime,
    stations: Sequence[StationView],
    free: Mapping[tuple[str, datetime], int],
    limit: int = 5,
    max_walk_min: float = 60.0,
) -> list[Option]:
    """Ranked options over `free` places per (station id, window start).

    For each station within `max_walk_min`: arrival = earliest + walk; its candidate windows
    are those with a free place starting at or after arrival. Builds the index on each call;
    see `Ranker` to rank many requests against the same stations.
    """
    known = {s.id for s in stations}
    table = FreeTable({k: n for k, n in free.items() if k[0] in known})
    return Ranker(stations).rank(lat, lon, earliest, table, limit, max_walk_min)
