"""When will a battery run out at the booked load? Pure arithmetic, for `depletion_forecast`.

The load model, deliberately simple and on the cautious side:
- each booked phone takes `energy_per_phone_wh`, spread evenly over its window;
- for the next slot length from now the battery also keeps drawing at least what it draws
  now (phones plugged in, booked or not; whatever is larger counts, never both, because a
  checked-in phone is in both figures);
- after that, only bookings count: walk-ins cannot be forecast, and a forecast that cries
  wolf every night would teach crews to ignore it.
The forecast matters only if the battery empties while someone still holds a booking on it:
then a crew has until `run_out_at` to swap or recharge it before residents are turned away.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class WindowDemand:
    """Phones booked on one battery in one window."""

    start: datetime
    phones: int


@dataclass(frozen=True, slots=True)
class Depletion:
    run_out_at: datetime
    phones_at_risk: int
    """Booked phones whose window ends after the run-out: the residents who would be let down."""


def run_out_time(
    energy_wh: float,
    discharge_w: float,
    windows: Sequence[WindowDemand],
    slot: timedelta,
    now: datetime,
    energy_per_phone_wh: float,
) -> datetime | None:
    """When the energy left reaches zero under the load model above, or None if it lasts."""
    floor_until = now + slot
    booked_w = energy_per_phone_wh * HOUR_S / slot.total_seconds()
    edges = {now, floor_until} | {t for w in windows for t in (w.start, w.start + slot) if t > now}
    left = energy_wh
    points = sorted(edges)
    for start, end in itertools.pairwise(points):
        booked = sum(w.phones for w in windows if w.start <= start < w.start + slot) * booked_w
        load_w = max(booked, discharge_w if start < floor_until else 0.0)
        if load_w <= 0:
            continue
        if left <= 0:
            return start
        hours = (end - start).total_seconds() / HOUR_S
        if load_w * hours >= left:
            return start + timedelta(hours=left / load_w)
        left -= load_w * hours
    return None


def forecast_depletion(
    energy_wh: float,
    discharge_w: float,
    windows: Sequence[WindowDemand],
    slot: timedelta,
    now: datetime,
    energy_per_phone_wh: float,
) -> Depletion | None:
    """A depletion worth a crew's trip: the battery runs out before its last booked window
    ends. None when it lasts through every booking (or there are none)."""
    booked = [w for w in windows if w.phones > 0 and w.start + slot > now]
    if not booked:
        return None
    run_out = run_out_time(energy_wh, discharge_w, booked, slot, now, energy_per_phone_wh)
    if run_out is None:
        return None
    at_risk = sum(w.phones for w in booked if w.start + slot > run_out)
    return Depletion(run_out, at_risk) if at_risk else None
