"""Bid prices: the ranking's cost plus what a place is worth to the residents still to come.

A greedy assignment gives each resident the cheapest option left, even when a resident with
no alternative will need that place later and this one could have walked a little further.
Bid-price control (revenue management's classic answer) charges each place its opportunity
cost, in the ranking's own unit (minutes): the dual value of the place's capacity in a
min-cost assignment of the demand still expected. The prices come from a solver run
elsewhere (periodically, on a forecast); this module only applies them, so it stays pure:
no clock, no solver, no I/O.

Choice: over every station within walking reach and every free window there, the least
2 x walk + wait + price(station, window) + price(station) where the second price is the
station's energy (phones left). Prices are never negative, so a station whose walking alone
costs more than the best total found is not looked at, nor a window whose wait is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from server.booking.ranking import FreeTable, Ranker


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
