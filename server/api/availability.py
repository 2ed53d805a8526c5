"""Live availability of a station: free ports now, the next free window, a colour level.

Pure functions over capacity's views; `now` is an argument. The level is what a resident
glancing at a phone needs: can I go now (free), soon (busy), later (crowded), or not
(full or closed); and a shelter without chargers says so (no_chargers) instead of looking
full.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from server.api.schemas import Level
from server.booking.capacity import StationView, window_capacity, window_starts


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    places: int
    booked: int
    held: int = 0
    """Places held back for priority residents (`server.booking.holdback`), not in `places`."""


Withheld = Callable[[datetime], int]
"""Places of a window held back from residents without priority."""


@dataclass(frozen=True, slots=True)
class StationAvailability:
    free_now: int
    healthy_ports: int
    total_ports: int
    next_free_window: datetime | None
    next_free_places: int
    open_now: bool
    level: Level


def windows(
    station: StationView,
    booked: Mapping[datetime, int],
    earliest: datetime,
    horizon: timedelta,
    energy_per_phone_wh: float,
    withheld: Withheld | None = None,
) -> list[Window]:
    """Every bookable window from `earliest` within `horizon`, with the places left to
    anyone (those `withheld` for priority residents apart)."""
    starts = window_starts(station, earliest, horizon)
    places = window_capacity(station, booked, starts, energy_per_phone_wh)
    slot = timedelta(minutes=station.slot_minutes)
    held = {s: min(places[s], withheld(s)) if withheld else 0 for s in starts}
    return [Window(s, s + slot, places[s] - held[s], booked.get(s, 0), held[s]) for s in starts]


def is_open(station: StationView, now: datetime) -> bool:
    """Is `now` inside a window the station's hours allow (i.e. it has a window now)?"""
    slot = timedelta(minutes=station.slot_minutes)
    return bool(window_starts(station, now - slot + timedelta(microseconds=1), slot))


def availability(
    station: StationView,
    booked: Mapping[datetime, int],
    now: datetime,
    horizon: timedelta,
    energy_per_phone_wh: float,
    held_now: int = 0,
    withheld: Withheld | None = None,
) -> StationAvailability:
    """`held_now`: active bookings of the window under way, not yet plugged in; `withheld`:
    places held back for priority residents (the next free window is anyone's)."""
    open_now = is_open(station, now)
    available = sum(1 for p in station.ports if p.status == "available")
    free_now = max(0, available - held_now) if open_now else 0
    upcoming = windows(station, booked, now, horizon, energy_per_phone_wh, withheld)
    first = next((w for w in upcoming if w.places > 0), None)
    return StationAvailability(
        free_now=free_now,
        healthy_ports=station.healthy_ports,
        total_ports=len(station.ports),
        next_free_window=first.start if first else None,
        next_free_places=first.places if first else 0,
        open_now=open_now,
        level="no_chargers" if not station.ports else level(
            free_now, station.healthy_ports, first.start if first else None, now,
            station.slot_minutes,
        ),
    )  # fmt: skip


def level(
    free_now: int, healthy: int, next_free: datetime | None, now: datetime, slot_minutes: int
) -> Level:
    """free / busy / crowded / full, as documented on `schemas.Level`."""
    if healthy == 0 or next_free is None:
        return "full"
    if next_free - now > timedelta(minutes=slot_minutes):
        return "crowded"
    if free_now > 0 and 2 * free_now >= healthy:
        return "free"
    return "busy"
