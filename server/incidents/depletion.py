"""Depletion forecasts from the database: each mapped battery's energy against its bookings.

Reads what `forecast.forecast_depletion` needs (SoC x rated Wh, the present discharge, the
active bookings per window on this battery's ports) and returns one signal per battery:
active with "runs out by HH:MM" when the booked load would empty it early, cleared
otherwise. A battery that is offline, stale or unmapped is not forecast (its numbers are stale
or it serves nobody); a forecast incident left on one is cleared.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import ACTIVE_BOOKING, Booking, Station, Unit
from server.incidents.forecast import Depletion, WindowDemand, forecast_depletion
from server.incidents.kinds import IncidentView, Kind, Policy, Severity, Signal, Where, unit_key
from server.settings import Settings

LONGEST_SLOT = timedelta(minutes=240)
"""Windows that started this long ago may still be running (the registry's maximum slot)."""


async def forecast_signals(
    session: AsyncSession,
    current: Iterable[IncidentView],
    settings: Settings,
    policy: Policy,
    now: datetime,
) -> list[Signal]:
    units = (
        await session.execute(
            select(Unit, Station.slot_minutes)
            .join(Station, Unit.station_id == Station.id)
            .where(Unit.online.is_(True), Unit.stale.is_(False))
        )
    ).all()
    demand = await _demand(session, now, now + timedelta(hours=settings.booking_horizon_h))
    signals: list[Signal] = []
    for unit, slot_minutes in units:
        if unit.soc_pct is None or unit.rated_wh is None:
            continue
        slot = timedelta(minutes=slot_minutes)
        depletion = forecast_depletion(
            energy_wh=unit.soc_pct / 100 * unit.rated_wh,
            discharge_w=max(0.0, -(unit.power_w or 0.0)),
            windows=demand.get(unit.id, []),
            slot=slot,
            now=now,
            energy_per_phone_wh=settings.energy_per_phone_wh,
        )
        signals.append(_signal(unit, depletion, policy, now))
    evaluated = {s.dedupe_key for s in signals}
    signals += [
        Signal(Kind.DEPLETION_FORECAST, view.dedupe_key, False, now, detail="no longer forecast")
        for view in current
        if view.kind == Kind.DEPLETION_FORECAST and view.dedupe_key not in evaluated
    ]
    return signals


def _signal(unit: Unit, depletion: Depletion | None, policy: Policy, now: datetime) -> Signal:
    key = unit_key(Kind.DEPLETION_FORECAST, unit.gw_id, unit.unit)
    where = Where(station_id=unit.station_id, gw_id=unit.gw_id, unit=unit.unit)
    if depletion is None:
        return Signal(
            Kind.DEPLETION_FORECAST, key, False, now, detail="lasts the bookings", **where
        )
    soon = depletion.run_out_at - now < policy.forecast_critical
    hhmm = depletion.run_out_at.astimezone(policy.local_tz).strftime("%H:%M")
    detail = (
        f"this battery will run out by {hhmm} at the booked load; "
        f"{depletion.phones_at_risk} booked phones after that"
    )
    severity = Severity.CRITICAL if soon else Severity.WARNING
    return Signal(Kind.DEPLETION_FORECAST, key, True, now, severity, detail=detail, **where)


async def _demand(
    session: AsyncSession, now: datetime, horizon_end: datetime
) -> dict[int, list[WindowDemand]]:
    """Active bookings per battery and window, from windows that may still run to the horizon."""
    rows = await session.execute(
        select(Booking.unit_pk, Booking.window_start, func.count())
        .where(
            ACTIVE_BOOKING,
            Booking.window_start > now - LONGEST_SLOT,
            Booking.window_start < horizon_end,
        )
        .group_by(Booking.unit_pk, Booking.window_start)
    )
    demand: dict[int, list[WindowDemand]] = {}
    for unit_pk, window_start, phones in rows:
        demand.setdefault(unit_pk, []).append(WindowDemand(window_start, phones))
    return demand
