"""Bid prices: with none the choice is the ranking's first option; a price moves residents."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from server.booking.capacity import StationView
from server.booking.pricing import (
    BidPrices,
    aggregate_demand,
    blend_prices,
    mean_prices,
    priced_choice,
)
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


def test_mean_prices_averages_place_by_place_a_missing_price_counting_zero() -> None:
    a = BidPrices({("near", 1.0): 10.0}, {"far": 4.0})
    b = BidPrices({("near", 1.0): 20.0, ("far", 2.0): 6.0}, {})
    m = mean_prices([a, b], weight=0.5)
    assert m.window == {("near", 1.0): pytest.approx(7.5), ("far", 2.0): pytest.approx(1.5)}
    assert m.station == {"far": pytest.approx(1.0)}
    assert mean_prices([]) == BidPrices()
    assert mean_prices([a]).window == a.window


def test_blend_prices_keeps_a_share_of_the_old_and_drops_zeros() -> None:
    old = BidPrices({("near", 1.0): 10.0}, {"far": 4.0})
    new = BidPrices({("far", 2.0): 6.0}, {})
    b = blend_prices(old, new, keep=0.25)
    assert b.window == {("near", 1.0): pytest.approx(2.5), ("far", 2.0): pytest.approx(4.5)}
    assert b.station == {"far": pytest.approx(1.0)}
    assert blend_prices(old, new, keep=0.0) == new
    with pytest.raises(ValueError):
        blend_prices(old, new, keep=1.0)


def test_aggregate_demand_pools_draws_per_cell_and_bucket_into_expected_counts() -> None:
    t = T0.timestamp()
    deg = 0.5 * KM_LAT
    lat = (math.floor(LAT / deg) + 0.3) * deg  # inside a 0.5 km cell, away from its edges
    lon = (math.floor(LON * math.cos(math.radians(lat)) / deg) + 0.5) * deg
    lon /= math.cos(math.radians(lat))
    near = (lat, lon, t + 60)
    also_near = (lat + 0.1 * KM_LAT, lon, t + 120)  # same 0.5 km cell, same 10 min bucket
    later = (lat, lon, t + 3600)
    points = aggregate_demand([near, also_near, later, near], n_samples=2)
    assert sum(p.weight for p in points) == pytest.approx(2.0)  # 4 draws over 2 samples
    by_time = sorted(points, key=lambda p: p.earliest)
    assert [p.weight for p in by_time] == [pytest.approx(1.5), pytest.approx(0.5)]
    assert by_time[0].earliest == pytest.approx(t + 80)
    assert by_time[0].lat == pytest.approx(lat + 0.1 * KM_LAT / 3)
    with pytest.raises(ValueError):
        aggregate_demand([near], n_samples=0)
