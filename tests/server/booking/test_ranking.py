"""Ranking: walking times, the cost, one option per station, and the fast index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.booking.capacity import StationView
from server.booking.ranking import FreeTable, Ranker, rank_options, walking_minutes

T0 = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
LAT, LON = 33.8392, 132.7657  # Matsuyama
KM_LAT = 1 / 111.19508  # degrees of latitude per km


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def station(sid: str, km_north: float, km_east: float = 0.0) -> StationView:
    lon = LON + km_east * KM_LAT / 0.830
    return StationView(sid, LAT + km_north * KM_LAT, lon, 30, None, None, (), 1000.0)


def test_walking_minutes_for_known_distances() -> None:
    assert walking_minutes(0, 0, 0, 1) == pytest.approx(111.195 * 1.3 * 15, rel=1e-4)
    assert walking_minutes(LAT, LON, LAT + KM_LAT, LON) == pytest.approx(19.5, rel=1e-4)
    # Matsuyama Station to Dogo Onsen Station, about 3.1 km as the crow flies.
    assert walking_minutes(33.8362, 132.7528, 33.8521, 132.7847) == pytest.approx(3.42 * 19.5, 0.02)
    assert walking_minutes(LAT, LON, LAT, LON) == 0


def test_cost_counts_walking_twice_and_waiting_once() -> None:
    s = station("a", 1.0)  # 19.5 minutes away
    [option] = rank_options(LAT, LON, T0, [s], {("a", at(30)): 2}, limit=1)
    assert option.walk_min == pytest.approx(19.5, rel=1e-4)
    assert option.wait_min == pytest.approx(30 - 19.5, rel=1e-4)
    assert option.cost == pytest.approx(2 * 19.5 + 10.5, rel=1e-4)
    assert (option.station_id, option.window_start, option.free) == ("a", at(30), 2)


def test_windows_before_arrival_and_full_windows_are_not_offered() -> None:
    s = station("a", 1.0)
    free = {("a", at(0)): 3, ("a", at(30)): 0, ("a", at(60)): 1}
    [option] = rank_options(LAT, LON, T0, [s], free, limit=1)
    assert option.window_start == at(60)


def test_one_option_per_station_ranked_by_cost() -> None:
    stations = [station("near", 0.5), station("mid", 1.0), station("far", 2.0, 1.0)]
    free = {(s.id, at(m)): 1 for s in stations for m in (30, 60, 90, 120)}
    free[("near", at(30))] = 0  # near: 9.75 walk, waits to 60 -> 19.5 + 50.25 = 69.75
    options = rank_options(LAT, LON, T0, stations, free, limit=2)
    assert [o.station_id for o in options] == ["mid", "near"]  # mid: 39 + 10.5 = 49.5
    assert len({o.station_id for o in options}) == 2


def test_later_windows_fill_in_when_few_stations_qualify() -> None:
    stations = [station("a", 0.5), station("b", 1.0)]
    free = {("a", at(30)): 1, ("a", at(60)): 1, ("b", at(30)): 1, ("b", at(90)): 1}
    options = rank_options(LAT, LON, T0, stations, free, limit=3)
    assert [(o.station_id, o.window_start) for o in options] == [
        ("a", at(30)), ("b", at(30)), ("a", at(60))
    ]  # fmt: skip


def test_stations_beyond_the_walking_limit_are_left_out() -> None:
    stations = [station("a", 1.0), station("b", 4.0)]  # 19.5 and 78 minutes
    free = {("a", at(600)): 1, ("b", at(120)): 1}
    assert [o.station_id for o in rank_options(LAT, LON, T0, stations, free)] == ["a"]
    assert rank_options(LAT, LON, T0, stations, free, max_walk_min=10) == []


def test_ties_go_to_the_earlier_window_then_the_station_id() -> None:
    stations = [station("b", 0.0), station("a", 0.0)]
    free = {("a", at(30)): 1, ("b", at(30)): 1}
    assert [o.station_id for o in rank_options(LAT, LON, T0, stations, free)] == ["a", "b"]


def test_free_table_follows_bookings() -> None:
    table = FreeTable({("a", at(0)): 1, ("a", at(30)): 2})
    table.take("a", at(0))
    assert table.first("a", T0.timestamp()) == (at(30).timestamp(), 2)
    table.set("a", at(60), 1)
    table.clear_station("a")
    assert len(table) == 0 and table.first("a", 0) is None


def brute_force(
    lat: float, lon: float, stations: list[StationView], free: dict[tuple[str, datetime], int],
    limit: int, max_walk: float,
) -> list[tuple[float, str, datetime]]:  # fmt: skip
    """The ranking rule spelt out over every (station, window)."""
    per_station: dict[str, list[tuple[float, datetime, str]]] = {}
    for s in stations:
        walk = walking_minutes(lat, lon, s.latitude, s.longitude)
        if walk > max_walk:
            continue
        arrival = T0.timestamp() + walk * 60  # seconds, not a datetime: no rounding to 1 µs
        for (sid, start), n in free.items():
            if sid == s.id and n > 0 and start.timestamp() >= arrival:
                wait = (start.timestamp() - arrival) / 60
                per_station.setdefault(sid, []).append((2 * walk + wait, start, sid))
    if len(per_station) >= limit:
        pool = [min(options) for options in per_station.values()]
    else:
        pool = [o for options in per_station.values() for o in options]
    return [(c, sid, start) for c, start, sid in sorted(pool)[:limit]]


@settings(max_examples=200, deadline=None)
@given(
    points=st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5)), min_size=0, max_size=25),
    free_bits=st.lists(st.integers(0, 2), min_size=250, max_size=250),
    limit=st.integers(1, 6),
    max_walk=st.sampled_from([15.0, 60.0, 120.0]),
)
def test_the_index_ranks_like_the_rule(
    points: list[tuple[float, float]], free_bits: list[int], limit: int, max_walk: float
) -> None:
    stations = [station(f"s{i:02}", n, e) for i, (n, e) in enumerate(points)]
    free = {
        (s.id, at(30 * k)): free_bits[i * 10 + k] for i, s in enumerate(stations) for k in range(10)
    }
    got = rank_options(LAT, LON, T0, stations, free, limit, max_walk)
    want = brute_force(LAT, LON, stations, free, limit, max_walk)
    # minutes: a cost of ~1e-10 (a station where the resident stands, a window starting on
    # arrival) is zero, whichever way the float arithmetic rounded it
    assert [o.cost for o in got] == pytest.approx([c for c, _, _ in want], abs=1e-6)
    by_id = {s.id: s for s in stations}
    for o, (cost, sid, start) in zip(got, want, strict=True):
        if (o.station_id, o.window_start) != (sid, start):  # only a tie may swap places
            s = by_id[o.station_id]
            walk = walking_minutes(LAT, LON, s.latitude, s.longitude)
            wait = (o.window_start - T0) / timedelta(minutes=1) - walk
            assert 2 * walk + wait == pytest.approx(cost, abs=1e-6)


def test_a_shared_ranker_sees_bookings_made_through_the_table() -> None:
    stations = [station("a", 0.2), station("b", 0.4)]
    ranker = Ranker(stations)
    table = FreeTable({("a", at(30)): 1, ("b", at(30)): 1})
    first = ranker.rank(LAT, LON, T0, table, limit=1)[0]
    table.take(first.station_id, first.window_start)
    second = ranker.rank(LAT, LON, T0, table, limit=1)[0]
    assert (first.station_id, second.station_id) == ("a", "b")
    assert ranker.rank(LAT, LON, T0, FreeTable(), limit=3) == []


@pytest.mark.timeout(10)
def test_a_search_near_a_pole_visits_occupied_cells_not_millions_of_empty_ones() -> None:
    """Near a pole a walk's east-west span covers millions of cells (found by schemathesis:
    a request at latitude 90 took 20 s); only the registry's cells are looked at."""
    stations = [station("a", 0.2), StationView("polar", 89.99, 0.0, 30, None, None, (), 1000.0)]
    ranker = Ranker(stations)
    [(walk, sid)] = ranker.within(90.0, 0.0, 60.0)
    assert sid == "polar" and walk == pytest.approx(21.68, rel=0.01)
    assert ranker.within(-90.0, 0.0, 60.0) == []
    assert [sid for _, sid in ranker.within(LAT, LON, 60.0)] == ["a"]
