"""Bid prices: the ranking's cost plus what a place is worth to the residents still to come.

A greedy assignment gives each resident the cheapest option left, even when a resident with
no alternative will need that place later and this one could have walked a little further.
Bid-price control (revenue management's classic answer) charges each place its opportunity
cost, in the ranking's own unit (minutes): the dual value of the place's capacity in a
min-cost assignment of the demand still expected. The prices come from a solver run
elsewhere (periodically, on a forecast); this module only applies and combines them
(`mean_prices` over several forecast draws, `blend_prices` across solves,
`aggregate_demand` to pool draws into expected demand), so it stays pure: no clock, no
solver, no I/O.

Choice: over every station within walking reach and every free window there, the least
2 x walk + wait + price(station, window) + price(station) where the second price is the
station's energy (phones left). Prices are never negative, so a station whose walking alone
costs more than the best total found is not looked at, nor a window whose wait is.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from server.booking.ranking import FreeTable, Ranker

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class BidPrices:
    """Minutes charged per place: per (station id, window start POSIX s) and per station."""

    window: Mapping[tuple[str, float], float] = field(default_factory=dict)
    station: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PricedChoice:
    station_id: str
    window_start: float
    """POSIX seconds."""
    walk_min: float
    cost: float
    """2 x walk_min + wait, the ranking's cost (what the resident pays)."""
    price: float
    """Bid price of the place taken (what later residents are expected to pay for it)."""


def priced_choice(
    ranker: Ranker,
    lat: float,
    lon: float,
    earliest: float,
    free: FreeTable,
    prices: BidPrices,
    max_walk_min: float = 60.0,
) -> PricedChoice | None:
    """The place minimising cost + bid price for a resident who can leave at `earliest`.

    With every price zero this is the ranking's first option (ties aside). None when no
    free window is in reach.
    """
    best: PricedChoice | None = None
    best_total = float("inf")
    window_price, station_price = prices.window, prices.station
    for walk, sid in ranker.within(lat, lon, max_walk_min):
        if 2 * walk >= best_total:
            break
        arrival = earliest + walk * 60.0
        base = 2 * walk + station_price.get(sid, 0.0)
        for start, _ in free.windows(sid, arrival):
            wait = (start - arrival) / 60.0
            if base + wait >= best_total:
                break
            price = station_price.get(sid, 0.0) + window_price.get((sid, start), 0.0)
            total = 2 * walk + wait + price
            if total < best_total:
                best_total = total
                best = PricedChoice(sid, start, walk, 2 * walk + wait, price)
    return best


@dataclass(frozen=True, slots=True)
class DemandPoint:
    """Expected requests from one place with one earliest time (a forecast, aggregated)."""

    lat: float
    lon: float
    earliest: float
    """POSIX seconds."""
    weight: float
    """Expected number of requests (fractional)."""


def aggregate_demand(
    samples: Iterable[tuple[float, float, float]],
    n_samples: int,
    cell_km: float = 0.5,
    bucket_s: float = 600.0,
) -> list[DemandPoint]:
    """The expected demand of `n_samples` forecast draws, per (grid cell, earliest bucket).

    `samples` are (lat, lon, earliest) over all draws together; each cell's point is the mean
    of its samples and its weight their count / `n_samples`. Averaging several draws removes
    most of one draw's noise, and pooling into cells keeps the forecast's size (and the
    solve that prices it) near one draw's.
    """
    if n_samples < 1:
        raise ValueError("n_samples must be at least 1")
    deg = cell_km / 111.195
    cells: dict[tuple[int, int, int], list[float]] = {}
    for lat, lon, earliest in samples:
        key = (
            math.floor(lat / deg),
            math.floor(lon * math.cos(math.radians(lat)) / deg),
            math.floor(earliest / bucket_s),
        )
        acc = cells.get(key)
        if acc is None:
            cells[key] = [lat, lon, earliest, 1.0]
        else:
            acc[0] += lat
            acc[1] += lon
            acc[2] += earliest
            acc[3] += 1.0
    return [
        DemandPoint(a / n, b / n, c / n, n / n_samples)
        for a, b, c, n in (cells[key] for key in sorted(cells))
    ]


def blend_prices(old: BidPrices, new: BidPrices, keep: float) -> BidPrices:
    """`keep` x old + (1 - keep) x new, place by place (a missing price is 0).

    Smooths prices across re-solves of noisy forecasts; keep = 0 takes the new ones.
    """
    if not 0.0 <= keep < 1.0:
        raise ValueError("keep must be in [0, 1)")

    def mix(a: Mapping[K, float], b: Mapping[K, float]) -> dict[K, float]:
        out = {key: (1 - keep) * v for key, v in b.items()}
        for key, v in a.items():
            out[key] = out.get(key, 0.0) + keep * v
        return {key: v for key, v in out.items() if v > 1e-9}

    return BidPrices(mix(old.window, new.window), mix(old.station, new.station))


def mean_prices(draws: Sequence[BidPrices], weight: float = 1.0) -> BidPrices:
    """`weight` x the mean, place by place, of prices solved on several forecast draws.

    The mean of the draws' duals estimates the expected opportunity cost of a place (a
    subgradient of the expected cost still to come), which one draw's duals, or the duals of
    the mean demand, do not: a place scarce in some futures only is worth something.
    """
    if not draws:
        return BidPrices()
    share = weight / len(draws)
    window: dict[tuple[str, float], float] = {}
    station: dict[str, float] = {}
    for d in draws:
        for wk, v in d.window.items():
            window[wk] = window.get(wk, 0.0) + share * v
        for sk, v in d.station.items():
            station[sk] = station.get(sk, 0.0) + share * v
    return BidPrices(window, station)
