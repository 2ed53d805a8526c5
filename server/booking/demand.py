"""The server's own forecast of the requests still to come, for the re-solving policy.

What it is made of, all of it data the server has:

- areas where residents are: per municipality, around its stations, weighted by the
  residents registered there (`resident_registrations`) or, given by an operator, by
  population; an area is a Gaussian of a radius around a centre;
- the requests seen so far: their places join the areas (a resident's neighbours ask too),
  their delays (earliest - asked) are what the forecast's delays are drawn from, and their
  number corrects the expected total when more came than expected;
- an arrival profile after the announcement: a share in a first burst, the rest over hours
  (`Profile`, from settings).

Where the forecast draws from is a fixed support of points (each area's drawn once, plus
the places seen), so the policy measures each point's walk to its stations once. With
neither an area nor a request seen, or neither an expected total nor a request seen,
there is no forecast (`Forecast.ready`), and the policy falls back to greedy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.typing import NDArray

_KM_PER_DEG: Final = 111.195
DEFAULT_DELAY_S: Final = 3600.0
"""Until requests are seen, a resident leaves within the hour (uniformly)."""


@dataclass(frozen=True, slots=True)
class Area:
    lat: float
    lon: float
    radius_km: float
    weight: float
    """Relative demand (residents registered, or population)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """Arrivals after an announcement at `start`: `burst_share` of them uniformly over the
    first `burst_s`, the rest uniformly over `tail_s`."""

    start: float
    """POSIX seconds."""
    burst_share: float = 0.5
    burst_s: float = 900.0
    tail_s: float = 4 * 3600.0

    def share_after(self, t: float) -> float:
        """Share of all requests made after `t`."""
        dt = t - self.start
        burst = min(1.0, max(0.0, 1 - dt / self.burst_s))
        tail = min(1.0, max(0.0, 1 - dt / self.tail_s))
        return self.burst_share * burst + (1 - self.burst_share) * tail

    def draw_after(self, rng: np.random.Generator, t: float, n: int) -> NDArray[np.float64]:
        """`n` arrival times after `t` (POSIX seconds), from the profile's remainder."""
        dt = max(0.0, t - self.start)
        burst = self.burst_share * max(0.0, 1 - dt / self.burst_s)
        tail = (1 - self.burst_share) * max(0.0, 1 - dt / self.tail_s)
        if burst + tail <= 0:
            return np.full(n, t)
        in_burst = rng.random(n) * (burst + tail) < burst
        end = np.where(in_burst, self.burst_s, self.tail_s)
        return self.start + dt + rng.random(n) * (end - dt)


@dataclass(frozen=True, slots=True)
class Seen:
    """A request the server has answered: when, from where, and when the resident left."""

    at: float
    lat: float
    lon: float
    earliest: float


@dataclass(frozen=True, slots=True)
class Drawn:
    """One forecast draw: per request, its support point (`Forecast.points`) and earliest
    time (POSIX seconds)."""

    point: NDArray[np.int64]
    earliest: NDArray[np.float64]


@dataclass
class Forecast:
    """Forecast draws of the requests still to come (see the module doc)."""

    areas: Sequence[Area]
    profile: Profile
    expected_total: float
    """Requests expected over the whole event (0: unknown)."""
    seed: int = 0
    points_per_area: int = 100
    """Support points drawn for each area (each a place the policy measures walks from)."""
    area_strength: float = 1000.0
    """Seen requests whose places weigh as much as the areas together."""
    points: list[tuple[float, float]] = field(default_factory=list)
    """The support: each area's points, then one per seen request's place."""
    _area_points: int = 0
    _area_weight: list[float] = field(default_factory=list)
    _delays: list[float] = field(default_factory=list)
    _seen: int = 0

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        for a in self.areas:
            for _ in range(self.points_per_area):
                self.points.append(_scatter(rng, a.lat, a.lon, a.radius_km))
        self._area_points = len(self.points)
        self._area_weight = [a.weight / self.points_per_area for a in self.areas
                             for _ in range(self.points_per_area)]  # fmt: skip

    def see(self, requests: Sequence[Seen]) -> None:
        """Learn from requests answered: their places and delays, and how many came."""
        for r in requests:
            self.points.append((r.lat, r.lon))
            self._delays.append(max(0.0, r.earliest - r.at))
        self._seen += len(requests)

    def updated(self, fresh: Forecast) -> Forecast:
        """This forecast with what `fresh` (built again from the registry) knows: the areas'
        weights and the expected total, and what this one learned from requests (their
        places, delays and number) and its profile kept. The same areas (the same
        municipalities registered) are re-weighed in place, so the policy's measured walks
        from the support stay valid; other areas give `fresh`, which takes the learning
        over (its support is new: the policy measures it again)."""
        if [(a.lat, a.lon, a.radius_km) for a in fresh.areas] == [
            (a.lat, a.lon, a.radius_km) for a in self.areas
        ]:
            self.areas = fresh.areas
            self._area_weight = fresh._area_weight
            self.expected_total = fresh.expected_total
            return self
        fresh.profile = self.profile
        fresh.points.extend(self.points[self._area_points :])
        fresh._delays = list(self._delays)
        fresh._seen = self._seen
        return fresh

    @property
    def ready(self) -> bool:
        """Whether a forecast can be made: somewhere to put demand, and a total."""
        return len(self.points) > 0 and (self.expected_total > 0 or self._seen > 0)

    def remaining(self, now: float) -> float:
        """Requests still expected after `now`: the profile's share of the total, the total
        raised when more requests came than it allowed for."""
        share = self.profile.share_after(now)
        total = self.expected_total
        if share < 1 and self._seen > total * (1 - share):
            total = self._seen / (1 - share)
        return total * share

    def draws(
        self,
        rng: np.random.Generator,
        now: float,
        n_draws: int,
        served: NDArray[np.bool_] | None = None,
    ) -> Iterator[Drawn]:
        """`n_draws` independent forecasts of the requests after `now`, each of the expected
        number, made one at a time (a caller out of time stops early); none when not
        `ready`. `served`, per support point, whether a station is in its reach: requests
        are then drawn only there, since the areas' tails reach past every station and a
        request from there could not be placed (left in, they would thin the forecast
        where it matters by their share: 5-12 % in the benchmark's scenarios)."""
        if not self.ready:
            return
        n = round(self.remaining(now))
        ok = np.ones(len(self.points), dtype=bool) if served is None else served
        weights = np.asarray(self._area_weight, dtype=np.float64) * ok[: self._area_points]
        seen = self._area_points + np.flatnonzero(ok[self._area_points :])
        area_w = self.area_strength if weights.sum() > 0 else 0.0
        if area_w == 0 and not len(seen):
            n = 0  # nothing more that could be placed is coming
        p_area = area_w / (area_w + self._seen) if len(seen) else 1.0
        weights = weights / weights.sum() if area_w else weights
        delays = np.asarray(self._delays, dtype=np.float64)
        for _ in range(n_draws):
            from_area = rng.random(n) < p_area
            point = np.empty(n, dtype=np.int64)
            k = int(from_area.sum())
            if k:
                point[from_area] = rng.choice(len(weights), size=k, p=weights)
            if n - k:
                point[~from_area] = seen[rng.integers(0, len(seen), size=n - k)]
            at = self.profile.draw_after(rng, now, n)
            delay = rng.choice(delays, size=n) if len(delays) else rng.uniform(
                0, DEFAULT_DELAY_S, size=n)  # fmt: skip
            yield Drawn(point, at + delay)


def _scatter(rng: random.Random, lat: float, lon: float, radius_km: float) -> tuple[float, float]:
    dy, dx = rng.gauss(0, radius_km), rng.gauss(0, radius_km)
    return lat + dy / _KM_PER_DEG, lon + dx / (_KM_PER_DEG * math.cos(math.radians(lat)))


def municipality_areas(
    stations: Sequence[tuple[str, float, float]],
    registered: dict[str, int],
    population: dict[str, int] | None = None,
    min_radius_km: float = 0.8,
) -> list[Area]:
    """One area per municipality of (municipality, lat, lon) stations: its stations' centre
    and spread, weighted by population if given, else by residents registered there (with
    neither anywhere, by its number of stations). Municipalities of no weight are left out."""
    by_town: dict[str, list[tuple[float, float]]] = {}
    for town, lat, lon in stations:
        by_town.setdefault(town, []).append((lat, lon))
    known = {**registered, **(population or {})}
    areas = []
    for town, places in sorted(by_town.items()):
        if any(known.values()):
            weight = float((population or {}).get(town, 0) or registered.get(town, 0))
        else:
            weight = float(len(places))
        if weight <= 0:
            continue
        lat = sum(p[0] for p in places) / len(places)
        lon = sum(p[1] for p in places) / len(places)
        cos = math.cos(math.radians(lat))
        spread = math.sqrt(sum(((p[0] - lat) * _KM_PER_DEG) ** 2
                               + ((p[1] - lon) * _KM_PER_DEG * cos) ** 2
                               for p in places) / len(places))  # fmt: skip
        areas.append(Area(lat, lon, max(min_radius_km, spread), weight))
    return areas
