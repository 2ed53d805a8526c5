"""Places held back for priority residents (those who depend on power), window by window.

Plain functions over plain data, as `capacity` is. A municipality's rule (`HoldRule`, set by
an operator) says what share of each window's places its stations hold back, and how long
before the window starts they are released to everyone:

- a window holds `floor(share x healthy ports)` places (never more than the share: at 0.25 a
  4-port station holds one, a 3-port station none; share 1 holds them all);
- priority bookings in the window use the held places first, so the places still held are
  `held - priority bookings there` (never below zero);
- a resident without priority sees and takes `places left - places still held`; a priority
  resident sees and takes every place left;
- from `window_start - release_before` on, nothing is held: everyone sees every place.

No rule, or share 0, holds nothing (the default). The claim path applies the same numbers as
the options (`claims.allot` takes `Want.held`), so what a resident is not shown they cannot
take either.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from server.booking.capacity import StationView
from server.errors import Invalid


@dataclass(frozen=True, slots=True)
class HoldRule:
    """One municipality's hold-back, as an operator set it."""

    share: float
    """Of each window's places (healthy ports), 0..1."""
    release_before: timedelta
    """Held places go to everyone from `window_start - release_before`."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0 or math.isnan(self.share):
            raise Invalid(f"hold_share: {self.share} is outside 0..1")
        if self.release_before < timedelta(0):
            raise Invalid("release_before_min: a lead time cannot be negative")


NO_HOLD: Final = HoldRule(0.0, timedelta(0))
"""Where an operator set nothing: every place is everyone's."""

Rules = Mapping[str, HoldRule]
"""Hold-back rules by municipality (as stations name it)."""


def rule_for(rules: Rules, station: StationView) -> HoldRule:
    return rules.get(station.municipality, NO_HOLD)


def held_places(rule: HoldRule, station: StationView) -> int:
    """Places of each window the rule holds back at this station (floor of the share)."""
    # a hair of slack so 0.3 x 10 is 3, not 2.9999999999999996 floored to 2
    return math.floor(rule.share * station.healthy_ports + 1e-9)


def released(rule: HoldRule, window_start: datetime, now: datetime) -> bool:
    """Are the window's held places everyone's by now?"""
    return now >= window_start - rule.release_before


def held_from(
    rule: HoldRule, station: StationView, window_start: datetime, now: datetime, priority: bool
) -> int:
    """Places of the window a resident may not use (before priority bookings use them up):
    none for a priority resident, nor once the window's held places are released."""
    if priority or released(rule, window_start, now):
        return 0
    return held_places(rule, station)


def still_held(held: int, priority_booked: int) -> int:
    """Held places not yet taken by priority bookings."""
    return max(0, held - priority_booked)


def withheld(
    rule: HoldRule,
    station: StationView,
    window_start: datetime,
    priority_booked: Mapping[datetime, int],
    now: datetime,
) -> int:
    """Places of the window still held from a resident without priority (`priority_booked`:
    priority bookings per window)."""
    held = held_from(rule, station, window_start, now, priority=False)
    return still_held(held, priority_booked.get(window_start, 0))


def open_places(
    rule: HoldRule,
    station: StationView,
    places: Mapping[datetime, int],
    priority_booked: Mapping[datetime, int],
    now: datetime,
    priority: bool,
) -> dict[datetime, int]:
    """The places (per window, as `capacity.window_capacity` counts them) a resident may see
    and take: all of them for a priority resident or after release, fewer the held ones
    still free otherwise."""
    if priority:
        return dict(places)
    return {
        start: max(0, n - withheld(rule, station, start, priority_booked, now))
        for start, n in places.items()
    }


def holding(rules: Rules, stations: Iterable[StationView]) -> list[StationView]:
    """The stations whose rule holds any place back (the others need no priority count)."""
    return [s for s in stations if held_places(rule_for(rules, s), s) > 0]


def places_for_anyone(
    rules: Rules,
    stations: Iterable[StationView],
    places: Mapping[str, Mapping[datetime, int]],
    priority_booked: Mapping[str, Mapping[datetime, int]],
    now: datetime,
) -> dict[str, dict[datetime, int]]:
    """`places` (per station and window) of these stations as a resident without priority
    may see and take them."""
    return {
        s.id: open_places(rule_for(rules, s), s, places[s.id], priority_booked.get(s.id, {}),
                          now, priority=False)
        for s in stations
    }  # fmt: skip
