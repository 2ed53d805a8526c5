"""The live policy's parts on tiny cases with a known optimum: the network, the forecast,
and the re-solving ranking against greedy."""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np

from server.booking import flow
from server.booking.capacity import PortView, StationView
from server.booking.demand import Area, Drawn, Forecast, Profile, Seen, municipality_areas
from server.booking.pace import Pace
from server.booking.ranking import FreeTable, Ranker, walking_minutes
from server.booking.resolving import STAND_FOR, Ask, Resolver, _pool_arcs

NOW = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
T = NOW.timestamp()
KM_LON = 1 / (111.195 * math.cos(math.radians(33.5)))


def station(sid: str, lon_km: float) -> StationView:
    ports = (PortView(1, 1, "available"),)
    return StationView(sid, 33.5, 132.5 + lon_km * KM_LON, 30, None, None, ports, 1000.0)


def demand(earliest: list[float], reach: list[tuple[int, int, float]]) -> flow.Demand:
    d, s, w = zip(*reach, strict=True)
    return flow.Demand(np.array(earliest), np.ones(len(earliest), dtype=np.int64),
                       np.array(d, dtype=np.int64), np.array(s, dtype=np.int64),
                       np.array(w, dtype=np.float64))  # fmt: skip


def test_the_flow_leaves_the_shared_place_to_who_has_no_other() -> None:
    # request 0 reaches station 0 (5 min) and 1 (10 min); request 1 only station 0 (20 min)
    windows = flow.Windows.of([[(T + 1800, 1)], [(T + 1800, 1)]])
    net = flow.build(demand([T, T], [(0, 0, 5.0), (0, 1, 10.0), (1, 0, 20.0)]), windows)
    sol = flow.solve(net)
    # 0 -> station 1: 10 + 30 - 0 = 40 min; 1 -> station 0: 20 + 30 = 50 min
    assert sol.unserved == 0
    assert sol.cost == 90.0
    assert sol.lower_bound <= sol.cost <= sol.lower_bound + 2 / flow.COST_SCALE


def test_a_late_arrival_waits_for_the_next_window_and_energy_bounds_the_station() -> None:
    windows = flow.Windows.of([[(T + 1800, 4), (T + 3600, 4)]], phones=[1])
    # both arrive after the first window started: the next one, and energy for one phone
    net = flow.build(demand([T + 1500, T + 1500], [(0, 0, 6.0), (1, 0, 7.0)]), windows)
    sol = flow.solve(net)
    assert sol.unserved == 1
    assert math.isclose(sol.cost, 6.0 + 35.0 + flow.UNSERVED_MIN)


def test_no_window_in_reach_is_unserved_at_its_cost() -> None:
    windows = flow.Windows.of([[(T, 1)]])
    net = flow.build(demand([T + 60], [(0, 0, 1.0)]), windows)
    assert net.n_demand_arcs == 0
    assert flow.solve(net).cost == flow.UNSERVED_MIN


# --- forecast ----------------------------------------------------------------------------


def test_the_profile_and_the_total_learn_from_the_requests_seen() -> None:
    profile = Profile(T, burst_share=0.5, burst_s=900, tail_s=3600)
    assert profile.share_after(T) == 1.0
    assert math.isclose(profile.share_after(T + 900), 0.5 * 0.75)
    assert profile.share_after(T + 3600) == 0.0
    forecast = Forecast([Area(33.5, 132.5, 1.0, 1.0)], profile, expected_total=10)
    assert math.isclose(forecast.remaining(T + 900), 10 * 0.375)
    forecast.see([Seen(T, 33.5, 132.5, T + 60)] * 20)  # twice the 6.25 expected by now
    assert math.isclose(forecast.remaining(T + 900), 20 / 0.625 * 0.375)
    drawn = list(forecast.draws(np.random.default_rng(1), T + 900, 2))
    assert [len(d.point) for d in drawn] == [12, 12]
    assert all((d.earliest >= T + 900).all() for d in drawn)


def test_requests_are_drawn_only_where_a_station_reaches_all_of_them_there() -> None:
    forecast = Forecast([Area(33.5, 132.5, 1.0, 1.0)], Profile(T), expected_total=40,
                        points_per_area=10, area_strength=2.0)  # fmt: skip
    forecast.see([Seen(T, 33.5, 132.5, T), Seen(T, 34.5, 133.5, T)])  # the second: no reach
    served = np.zeros(len(forecast.points), dtype=bool)
    served[[1, 4, 10]] = True  # two of the area's points, the first request's place
    for draw in forecast.draws(np.random.default_rng(2), T, 3, served):
        assert len(draw.point) == round(forecast.remaining(T)) == 40
        assert set(draw.point.tolist()) == {1, 4, 10}  # the whole number, where it can ask
    nowhere = np.zeros(len(forecast.points), dtype=bool)
    assert [len(d.point) for d in forecast.draws(np.random.default_rng(2), T, 2, nowhere)] == [
        0, 0]  # fmt: skip


def test_without_areas_or_a_total_there_is_no_forecast_until_requests_are_seen() -> None:
    empty = Forecast([], Profile(T), expected_total=100)
    assert not empty.ready
    unknown = Forecast([Area(33.5, 132.5, 1.0, 1.0)], Profile(T), expected_total=0)
    assert not unknown.ready and list(unknown.draws(np.random.default_rng(1), T, 3)) == []
    unknown.see([Seen(T, 33.5, 132.5, T)])
    assert unknown.ready


def test_municipalities_weigh_by_registrations_and_skip_the_unregistered() -> None:
    areas = municipality_areas(
        [("大洲市", 33.50, 132.50), ("大洲市", 33.52, 132.52), ("内子町", 33.55, 132.65)],
        {"大洲市": 30},
    )
    assert [(round(a.lat, 2), round(a.lon, 2), a.weight) for a in areas] == [(33.51, 132.51, 30.0)]
    assert areas[0].radius_km > 1.0  # the stations' spread, above the 0.8 km floor


TOWNS = [("大洲市", 33.50, 132.50), ("大洲市", 33.52, 132.52), ("内子町", 33.55, 132.65)]


def registered(counts: dict[str, int], start: float = T) -> Forecast:
    """The forecast as the registry gives it with these registrations (total: their sum)."""
    return Forecast(municipality_areas(TOWNS, counts), Profile(start), sum(counts.values()))


def test_new_registrations_reweigh_the_forecast_and_keep_what_requests_taught() -> None:
    forecast = registered({"大洲市": 30, "内子町": 10})
    forecast.see([Seen(T, 33.6, 132.7, T + 120)])
    support = list(forecast.points)
    same = forecast.updated(registered({"大洲市": 30, "内子町": 90}, start=T + 600))
    assert same is forecast and same.points == support  # the walks measured stay valid
    assert same.expected_total == 120 and [a.weight for a in same.areas] == [90.0, 30.0]
    assert same.profile.start == T  # the event's start, not the refresh's
    weights = np.asarray(same._area_weight)
    assert math.isclose(weights[:100].sum(), 90.0)  # 内子町's points (sorted first)

    fewer = forecast.updated(registered({"大洲市": 30}))  # 内子町 left: other areas
    assert fewer is not forecast and len(fewer.areas) == 1
    assert fewer.points[-1] == (33.6, 132.7) and fewer.remaining(T) == 30
    assert fewer.profile.start == T and fewer.ready


def test_the_resolver_measures_a_new_forecasts_support_again() -> None:
    stations, free, ask, forecast = trap()
    resolver = Resolver(stations, draws=3, seed=1)
    assert resolver.rank([ask], free, forecast, T) is not None
    measured = len(resolver._pt_offsets)
    other = Forecast([Area(33.5, 132.5 + 5 * KM_LON, 0.01, 1.0)] * 2, Profile(T), 1)
    assert resolver.rank([ask], free, other, T) is not None
    assert len(resolver._pt_offsets) == len(other.points) + 1 != measured


# --- the policy --------------------------------------------------------------------------


def trap() -> tuple[list[StationView], FreeTable, Ask, Forecast]:
    """A (one place, at 2 h) is 0.3 km from the resident asking; B (four places) 0.7 km
    east of them; residents to come from 2.5 km west of A reach A only."""
    stations = [station("A", 0.0), station("B", 1.0)]
    window = NOW + timedelta(hours=2)
    free = FreeTable({("A", window): 1, ("B", window): 4})
    ask = Ask(33.5, 132.5 + 0.3 * KM_LON, T)
    west = Area(33.5, 132.5 - 2.5 * KM_LON, 0.01, 1.0)
    forecast = Forecast([west], Profile(T, burst_share=1.0, burst_s=60), expected_total=1)
    return stations, free, ask, forecast


def test_greedy_takes_the_shared_place_the_resolver_leaves_it() -> None:
    stations, free, ask, forecast = trap()
    greedy = Ranker(stations).rank(ask.lat, ask.lon, NOW, free)
    assert [o.station_id for o in greedy] == ["A", "B"]
    ranked = Resolver(stations, draws=3, seed=1).rank([ask], free, forecast, T)
    assert ranked is not None
    options = ranked[0]
    assert [o.station_id for o in options] == ["B", "A"]
    first = options[0]  # still explained by walking minutes and the window
    walk = walking_minutes(ask.lat, ask.lon, stations[1].latitude, stations[1].longitude)
    assert math.isclose(first.walk_min, walk)
    assert first.window_start == NOW + timedelta(hours=2)
    assert math.isclose(first.cost, 2 * first.walk_min + first.wait_min)


def test_one_batch_does_not_offer_the_last_place_first_twice() -> None:
    stations, free, ask, _ = trap()
    empty = Forecast([Area(0.0, 0.0, 0.01, 1.0)], Profile(T), expected_total=1)  # out of reach
    ranked = Resolver(stations, seed=1).rank([ask, ask], free, empty, T)
    assert ranked is not None
    assert [o.station_id for o in ranked[0]] == ["A", "B"]
    assert ranked[1][0].station_id == "B"  # A's one place went to the first


def test_no_forecast_or_a_late_solve_means_greedy() -> None:
    stations, free, ask, forecast = trap()
    resolver = Resolver(stations, seed=1)
    assert resolver.rank([ask], free, None, T) is None
    assert resolver.rank([ask], free, Forecast([], Profile(T), 0), T) is None
    assert resolver.rank([ask], free, forecast, T, left=lambda: 0.0) is None


def ticking(step_s: float, deadline_s: float = 1.0) -> Callable[[], float]:
    """Seconds left before a deadline on a fake clock that moves `step_s` at every look:
    each draw, looked at before and after, so seems to take `step_s`."""
    looks = itertools.count(1)
    return lambda: deadline_s - step_s * next(looks)


def test_a_draw_predicted_too_slow_is_not_run_and_the_batch_goes_greedy() -> None:
    stations, free, ask, forecast = trap()
    pace = Pace(per_arc_s=10.0)  # draws measured before took seconds an arc
    resolver = Resolver(stations, draws=3, seed=1, pace=pace)
    assert resolver.rank([ask], free, forecast, T, left=ticking(0.0)) is None
    assert (resolver.used, resolver.skipped, pace.measured) == (0, 3, 0)  # none was solved


def test_only_the_draws_that_fit_the_deadline_are_run() -> None:
    stations, free, ask, forecast = trap()
    resolver = Resolver(stations, draws=7, seed=1)
    # 0.15 s a draw, 1 s to go: the first is measured (nothing known), two more fit
    ranked = resolver.rank([ask], free, forecast, T, left=ticking(0.15))
    assert ranked is not None and ranked[0][0].station_id == "B"
    assert (resolver.used, resolver.skipped) == (3, 4)
    assert resolver.pace.per_arc_s is not None
    assert math.isclose(resolver.pace.predict(1), resolver.pace.per_arc_s)


class SizedPace(Pace):
    """A pace that also keeps the size of every draw it measured."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def learn(self, arcs: int, seconds: float) -> None:
        self.sizes.append(arcs)
        super().learn(arcs, seconds)


def test_a_network_too_large_for_the_deadline_is_made_coarser_then_cut() -> None:
    """Ten stations in a row, 2 km apart, each linked to the next by the places between:
    with the time for part of the draws, each forecast request first stands for more
    residents over the whole row; with less still, the draws also take in only the
    stations fewest links from the asks'. All seven draws run, and the asks are still
    ranked by them."""
    stations = [station(f"S{i}", 2.0 * i) for i in range(10)]
    window = NOW + timedelta(hours=2)
    free = FreeTable({(s.id, window): 2 for s in stations})
    areas = [Area(33.5, 132.5 + 2.0 * i * KM_LON, 0.5, 1.0) for i in range(10)]
    forecast = Forecast(areas, Profile(T, burst_share=1.0, burst_s=60), expected_total=40)
    ask = Ask(33.5, 132.5 + 0.2 * KM_LON, T)

    whole = SizedPace()
    assert Resolver(stations, seed=1, pace=whole).rank([ask], free, forecast, T,
                                                       left=lambda: 1e9) is not None  # fmt: skip
    pace = 1.0 / (7 * max(whole.sizes))
    resolver = Resolver(stations, seed=1, pace=Pace(per_arc_s=pace))
    assert resolver.rank([ask], free, forecast, T) is not None  # unlimited: all of the row
    assert (resolver.kept, resolver.stand_for) == (10, 1)
    for share in (0.6, 0.2):
        resolver = Resolver(stations, seed=1, pace=Pace(per_arc_s=pace))  # none learned
        ranked = resolver.rank([ask], free, forecast, T, left=itertools.repeat(share).__next__)
        assert ranked is not None and ranked[0][0].station_id in {"S0", "S1"}
        assert (resolver.used, resolver.skipped) == (7, 0)
        if share == 0.6:  # coarser, the whole row
            assert resolver.kept == 10 and resolver.stand_for > 1
        else:  # the coarsest, and only the asks' own two and some of their neighbours
            assert 2 <= resolver.kept < 10 and resolver.stand_for == max(STAND_FOR)


def test_a_coarser_draw_stands_for_as_many_residents() -> None:
    """Every m-th request of a draw, each of m residents: the pools' supply adds up to the
    draw's requests (to within m - 1), at fewer reach arcs."""
    offsets = np.arange(0, 4 * 3 + 1, 3, dtype=np.int64)  # 4 points, 3 stations each
    rng = np.random.default_rng(3)
    draw = Drawn(rng.integers(0, 4, size=1001), T + rng.uniform(0, 7200, size=1001))
    keep = np.ones(4, dtype=bool)
    fine = _pool_arcs(draw, keep, offsets, 60.0)
    assert int(fine[2].sum()) == 1001
    for m in STAND_FOR[1:]:
        rows, _arcs, supply, _earliest = _pool_arcs(draw, keep, offsets, 60.0, m)
        assert 1001 <= int(supply.sum()) <= 1001 + m - 1
        assert set(supply.tolist()) <= {m * n for n in range(1, 1001)}
        assert len(rows) < len(fine[0])


def test_the_pace_follows_the_draws_measured() -> None:
    pace = Pace(weight=0.5)
    assert pace.fits(1000, 0.01) and not pace.fits(1000, 0.0)  # unknown: try one if any time
    pace.learn(100, 1.0)
    assert math.isclose(pace.predict(200), 2.0)
    pace.learn(100, 3.0)  # slower now: half way to the newest
    assert math.isclose(pace.predict(100), 2.0)
    assert not pace.fits(100, 1.9) and pace.fits(50, 1.01)
    pace.learn(100, math.inf - math.inf)  # no deadline: nothing measured
    assert pace.measured == 2 and math.isclose(pace.predict(100), 2.0)


def test_a_draw_cut_short_answers_with_the_draws_before_it_and_is_not_tried_again() -> None:
    stations, free, ask, forecast = trap()
    solved = 0

    def solve(network: flow.Network, left: Callable[[], float]) -> flow.Solution:
        nonlocal solved
        if solved == 2:  # the third draw is still running when its time is up
            raise flow.SolveLate("cut")
        solved += 1
        return flow.solve(network)

    resolver = Resolver(stations, draws=5, seed=1, solve=solve)
    ranked = resolver.rank([ask], free, forecast, T, left=ticking(0.1))
    assert ranked is not None and ranked[0][0].station_id == "B"  # two draws' votes
    assert (resolver.used, resolver.skipped) == (2, 3)
    assert resolver.pace.measured == 2
    assert resolver.pace.per_arc_s is not None
    cut_at = resolver.pace.per_arc_s  # at least 0.1 s for a draw of this size now
    assert resolver.rank([ask], free, forecast, T, left=lambda: 0.1) is None
    assert (resolver.used, resolver.skipped, solved) == (0, 5, 2)  # none of its size tried
    assert cut_at == resolver.pace.per_arc_s


def test_a_draw_cut_short_teaches_the_pace_a_floor() -> None:
    pace = Pace()
    pace.late(128, 0.5)  # unknown before: cut after half a second, so at least a second
    assert pace.predict(128) == 1.0 and pace.measured == 0
    assert not pace.fits(128, 1.0) and pace.fits(32, 1.0)
    pace.learn(128, 0.5)  # a draw of the size ended: 0.3 of the way down to it
    assert math.isclose(pace.predict(128), 0.85)
    pace.late(128, 0.25)  # cut sooner than such draws take: nothing new
    assert math.isclose(pace.predict(128), 0.85)
    pace.late(128, 1.0)
    assert pace.predict(128) == 2.0


def test_draws_solved_side_by_side_vote_as_one_after_the_other() -> None:
    stations, free, ask, forecast = trap()
    together = threading.Barrier(3, timeout=30)  # passed only by three draws at once

    def solve(network: flow.Network, left: Callable[[], float]) -> flow.Solution:
        together.wait()
        return flow.solve(network)

    side_by_side = Resolver(stations, draws=6, seed=1, solve=solve, parallel=3)
    one_by_one = Resolver(stations, draws=6, seed=1)
    assert side_by_side.rank([ask, ask], free, forecast, T) == one_by_one.rank(
        [ask, ask], free, forecast, T)  # fmt: skip
    assert side_by_side.used == one_by_one.used == 6
