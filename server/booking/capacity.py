"""How many residents a station can still take, window by window, and on which port.

Plain functions over plain data: no database, no clock (`earliest` is an argument). The
booking shell reads rows into `StationView`s, asks this module, and claims what it says in
one transaction; the database's unique indexes are the last word on double-booking.

A station's windows are a grid of `slot_minutes` from local midnight (Japan time, UTC+9, no
DST), so a 30-minute station has windows at :00 and :30; a window is bookable only if it
lies wholly within opening hours. Capacity has two bounds:
- ports: a window takes at most one phone per healthy port;
- energy: every booked phone will draw about `energy_per_phone_wh` from the same batteries,
  whatever its window, so the station takes no more phones in total than its remaining
  energy can charge. (Stated window by window, "phones left after every booking up to and
  including w" must hold for every later window too, or a new early booking would strand a
  resident already booked later; the minimum over later windows is the total.)

A port out of sight (its gateway offline, its battery silent or stale) is neither healthy nor
gone: it very likely still charges. Its bookings are held where they are (`displaced`) for
`hold_for`, against its battery's last known energy (`unseen_wh`), and move only after that;
a device's report of a fault or a disable moves them at once. New bookings go only to ports
we can see: a resident choosing now has other places, and a promise made blind is one we may
have to break; the held bookings keep counting in their windows, so a station partly out of
sight offers fewer places rather than places it may not have.
"""

from __future__ import annotations

import math
import string
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from random import Random
from typing import Final

from server.ingest.live import OFFLINE

HEALTHY: Final = frozenset({"available", "charging", "finishing"})
"""Effective port statuses that can take a phone in a coming window."""

JST: Final = timezone(timedelta(hours=9), "JST")
"""Asia/Tokyo has had no DST since 1951: a fixed offset needs no tz database."""

DAY_MIN: Final = 24 * 60

TICKET_ALPHABET: Final = "".join(
    c for c in string.digits + string.ascii_uppercase if c not in "01OIL"
)
"""Read off a small port display and typed by a tired resident: no 0/O, no 1/I/L."""
TICKET_LENGTH: Final = 4


@dataclass(frozen=True, slots=True)
class PortView:
    unit_pk: int
    port: int
    status: str
    """Effective status (available / charging / finishing / unavailable / faulted / offline),
    as `server.ingest.live.effective_status` derives it."""

    @property
    def healthy(self) -> bool:
        return self.status in HEALTHY

    @property
    def out_of_sight(self) -> bool:
        return self.status == OFFLINE


@dataclass(frozen=True, slots=True)
class StationView:
    id: str
    latitude: float
    longitude: float
    slot_minutes: int
    opens_at: str | None
    """"HH:MM" Japan time; both None means open around the clock."""
    closes_at: str | None
    ports: tuple[PortView, ...]
    energy_wh: float
    """Energy left in the station's online batteries: sum of SoC/100 x rated Wh."""
    unseen_wh: float = 0.0
    """The same, as last reported, of its batteries out of sight: it backs the bookings held
    there, not new ones."""
    batteries: Mapping[int, str] = field(default_factory=dict, compare=False)
    """How a crew names each battery (by unit_pk) on site, e.g. "battery 2 (rs485-1.2)"."""
    drill_id: int | None = None
    """A drill's twin (`server.drills`): booked only on purpose, moved only among its own."""
    municipality: str = ""
    """As the registry names it: whose hold-back rule applies (`holdback`)."""

    @property
    def healthy_ports(self) -> int:
        return sum(1 for p in self.ports if p.healthy)


@dataclass(frozen=True, slots=True)
class Placement:
    """A booking as the capacity rules see it: which port, in which window."""

    booking_id: str
    window_start: datetime
    unit_pk: int
    port: int
    held_since: datetime | None = None
    """Held on a port out of sight since then (None: not held, or only from now)."""


def apart(stations: Iterable[StationView], drill_id: int | None) -> list[StationView]:
    """The stations of one world: the real ones (None), or one drill's twins. A booking is
    ranked and moved within its own, so a drill never takes a real place, nor a real
    resident a drill's."""
    return [s for s in stations if s.drill_id == drill_id]


def _minutes(hhmm: str) -> int:
    """ "HH:MM" -> minutes after midnight; "24:00" is accepted as the end of the day."""
    hours, _, minutes = hhmm.partition(":")
    value = int(hours) * 60 + int(minutes)
    if not 0 <= value <= DAY_MIN:
        raise ValueError(f"not a time of day: {hhmm!r}")
    return value


def _fits_hours(start_min: int, slot: int, opens: int, closes: int) -> bool:
    """Does the window [start, start + slot) (minutes after local midnight) lie within hours?

    `closes` before `opens` means open overnight (18:00-06:00); equal means around the clock.
    """
    end = start_min + slot
    if opens == closes:
        return True
    if opens < closes:
        return opens <= start_min and end <= closes
    return start_min >= opens or end <= closes


def window_starts(station: StationView, earliest: datetime, horizon: timedelta) -> list[datetime]:
    """Bookable window starts (UTC) from `earliest` (inclusive) to `earliest + horizon`.

    A window that has already started is not offered: a resident could not be there for
    the whole of it. The grid restarts at every local midnight; when `slot_minutes` does
    not divide a day, the day's last partial slot is not a window, so windows never overlap.
    """
    if earliest.tzinfo is None:
        raise ValueError("naive datetime: window_starts works in aware UTC")
    slot = station.slot_minutes
    if slot <= 0:
        raise ValueError(f"slot_minutes must be positive, not {slot}")
    opens = _minutes(station.opens_at) if station.opens_at is not None else 0
    closes = _minutes(station.closes_at) if station.closes_at is not None else DAY_MIN
    local = earliest.astimezone(JST)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (local - midnight) / timedelta(minutes=1)
    index = math.ceil(offset / slot)
    end = earliest + horizon
    starts: list[datetime] = []
    while True:
        if (index + 1) * slot > DAY_MIN:
            midnight += timedelta(days=1)
            index = 0
        start = midnight + timedelta(minutes=index * slot)
        if start >= end:
            return starts
        if _fits_hours(index * slot, slot, opens, closes):
            starts.append(start.astimezone(UTC))
        index += 1


def phones_left(station: StationView, booked_total: int, energy_per_phone_wh: float) -> int:
    """Phones the station's remaining energy can still charge after `booked_total` phones."""
    if energy_per_phone_wh <= 0:
        raise ValueError("energy_per_phone_wh must be positive")
    return max(0, math.floor(station.energy_wh / energy_per_phone_wh) - booked_total)


def window_capacity(
    station: StationView,
    booked: Mapping[datetime, int],
    windows: Sequence[datetime],
    energy_per_phone_wh: float,
) -> dict[datetime, int]:
    """Places left per window: min(healthy ports - booked there, phones the energy has left).

    `booked` counts active bookings per window; those of windows outside `windows` are not
    counted, so pass the windows still to come (`energy_wh` already reflects phones charged).
    Never negative, even when a failure left a window over-booked (see `displaced`).
    """
    ports = station.healthy_ports
    energy = phones_left(station, sum(booked.get(w, 0) for w in windows), energy_per_phone_wh)
    return {w: max(0, min(ports - booked.get(w, 0), energy)) for w in windows}


def assign_port(station: StationView, taken: Collection[tuple[int, int]]) -> PortView | None:
    """The lowest healthy (unit_pk, port) not in `taken` (the window's booked ports), if any.

    Deterministic, so two processes racing for a window try the same port and the database's
    unique index turns the loser away rather than both succeeding on different ports.
    """
    free = [p for p in station.ports if p.healthy and (p.unit_pk, p.port) not in taken]
    return min(free, key=lambda p: (p.unit_pk, p.port), default=None)


def displaced(
    station: StationView,
    placements: Iterable[Placement],
    energy_per_phone_wh: float,
    *,
    now: datetime,
    hold_for: timedelta,
) -> list[Placement]:
    """Bookings the station can no longer honour, to be moved (never kept on a dead port).

    - on a port that is faulted, disabled or gone;
    - on a port out of sight that has been held `hold_for` (see `held`);
    - a second booking of the same port and window (keeps the first by booking id);
    - beyond what the energy, seen and last known, can charge: the latest windows give way.
    The rest stay where they are. Returned in window order.
    """
    healthy = {(p.unit_pk, p.port) for p in station.ports if p.healthy}
    unseen = {(p.unit_pk, p.port) for p in station.ports if p.out_of_sight}
    ordered = sorted(placements, key=lambda b: (b.window_start, b.unit_pk, b.port, b.booking_id))
    seen: set[tuple[datetime, int, int]] = set()
    kept: list[Placement] = []
    out: list[Placement] = []
    for b in ordered:
        key = (b.window_start, b.unit_pk, b.port)
        port = (b.unit_pk, b.port)
        waited = now - (b.held_since or now)
        if key in seen or not (port in healthy or (port in unseen and waited < hold_for)):
            out.append(b)
        else:
            seen.add(key)
            kept.append(b)
    known = replace(station, energy_wh=station.energy_wh + station.unseen_wh)
    out.extend(kept[phones_left(known, 0, energy_per_phone_wh) :])
    return sorted(out, key=lambda b: (b.window_start, b.unit_pk, b.port, b.booking_id))


def held(station: StationView, placements: Iterable[Placement]) -> list[Placement]:
    """Of these bookings (those `displaced` keeps), the ones on ports out of sight."""
    unseen = {(p.unit_pk, p.port) for p in station.ports if p.out_of_sight}
    return [b for b in placements if (b.unit_pk, b.port) in unseen]


def ticket_code(rng: Random) -> str:
    """A short code for the port's display; the resident shows it to check in."""
    return "".join(rng.choice(TICKET_ALPHABET) for _ in range(TICKET_LENGTH))
