"""Bid prices: with none the choice is the ranking's first option; a price moves residents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.booking.capacity import StationView
from server.booking.pricing import BidPrices, priced_choice
from server.booking.ranking import FreeTable, Ranker

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
LAT, LON = 33.8392, 132.7657
KM_LAT = 1 / 111.19508


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def station(sid: str, km_north: float) -> StationView:
    return StationView(sid, LAT + km_north * KM_LAT, LON, 30, None, None, (), 1000.0)


STATIONS = [station("near", 0.5), station("far", 1.0)]  # 9.75 and 19.5 minutes away


def table() -> FreeTable:
    return FreeTable({(s.id, at(m)): 1 for s in STATIONS for m in (30, 60, 90)})


def test_without_prices_it_is_the_rankings_best_option() -> None:
    ranker = Ranker(STATIONS)
    free = table()
    [best] = ranker.rank(LAT, LON, T0, free, limit=1)
    c = priced_choice(ranker, LAT, LON, T0.timestamp(), free, BidPrices())
    assert c is not None
    assert (c.station_id, c.window_start) == (best.station_id, best.window_start.timestamp())
    assert c.cost == pytest.approx(best.cost)
    assert c.price == 0


def test_a_window_price_moves_the_resident_to_a_later_window_or_another_station() -> None:
    ranker = Ranker(STATIONS)
    t0 = T0.timestamp()
    later = BidPrices({("near", at(30).timestamp()): 40.0}, {"far": 100.0})
    c = priced_choice(ranker, LAT, LON, t0, table(), later)
    assert c is not None
    assert (c.station_id, c.window_start) == ("near", at(60).timestamp())  # +30 min < 40
    assert c.cost == pytest.approx(2 * 9.75 + 60 - 9.75, rel=1e-3)
    elsewhere = BidPrices(station={"near": 50.0})
    c = priced_choice(ranker, LAT, LON, t0, table(), elsewhere)
    assert c is not None
    assert (c.station_id, c.window_start) == ("far", at(30).timestamp())
    assert c.price == 0


def test_nothing_in_reach_or_free_gives_none() -> None:
    ranker = Ranker(STATIONS)
    assert priced_choice(ranker, LAT, LON, T0.timestamp(), FreeTable(), BidPrices()) is None
    assert priced_choice(ranker, LAT + 1, LON, T0.timestamp(), table(), BidPrices()) is None
