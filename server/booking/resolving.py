"""Near-optimal live ranking: a batch of requests re-solved with forecasts of those to come.

Greedy gives each resident the cheapest place left, even when someone later with no
alternative will need it and this resident could have walked a little further. Here the
requests that arrived together (a batch of a second or so) are solved with `draws`
independent forecasts of the requests still to come (`demand.Forecast`): each draw is one
min-cost flow over the time-expanded network (`flow`) of the batch plus the draw into the
free places, and each request of the batch takes the station most draws send it to, its
earliest free window there (sample-average approximation of the stochastic assignment).

What a resident sees stays explainable: the options are the ranking's (walking minutes,
window, cost), the policy only chooses which comes first; the others follow in the
ranking's order. Requests of one batch are decided in order on a copy of the free places,
so two residents are not both offered the last place first.

`Resolver.rank` returns None, and the caller ranks greedily, when there is no forecast or
when not even one draw is expected to end in the time `left()` says remains: before each
draw its cost is predicted from the draws measured (`pace.Pace`, per arc of its network),
and the draws that would not fit are left out, so a late batch falls back at once instead
of after a draw of seconds. The service solves the draws in processes of their own
(`solver.SolverPool`, injected as `solve`, `parallel` of them side by side), so the
measured cost of a draw includes sending its network there and its flows back, and a draw
still running when the time is up is cut short there (`flow.SolveLate`): the batch is
answered with the draws before it.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import numpy as np
from numpy.typing import NDArray

from server.booking import flow
from server.booking.capacity import StationView
from server.booking.demand import Drawn, Forecast
from server.booking.flow import Floats, Ints
from server.booking.pace import Pace
from server.booking.ranking import FreeTable, Option, Ranker


@dataclass(frozen=True, slots=True)
class Ask:
    """A request to rank: where the resident is and when they can leave (POSIX s)."""

    lat: float
    lon: float
    earliest: float


def unlimited() -> float:
    return math.inf


def solve_here(network: flow.Network, left: Callable[[], float]) -> flow.Solution:
    """A draw solved in this thread, to its end (the time left cannot cut it short)."""
    return flow.solve(network)


STAND_FOR: Final = (1, 2, 4)
"""Residents a forecast request may stand for, finest first, when a draw must be smaller to
be in time (`Resolver._cut`)."""


class Resolver:
    """The policy, for one set of stations (build again when stations come or go)."""

    def __init__(
        self,
        stations: Sequence[StationView],
        draws: int = 7,
        k: int = 8,
        seed: int = 0,
        max_walk_min: float = 60.0,
        bucket_s: float = 600.0,
        pace: Pace | None = None,
        solve: Callable[[flow.Network, Callable[[], float]], flow.Solution] = solve_here,
        parallel: int = 1,
    ) -> None:
        self.bucket_s = bucket_s
        self.solve = solve
        """Each draw's min-cost flow, given the clock of the seconds left: here, or in a
        solver process (`solver`), which cuts it short when they run out."""
        self.parallel = parallel
        """Draws solved side by side (`solve` in as many threads: a pool of solver
        processes, `solver.SolverPool`)."""
        self.pace = pace if pace is not None else Pace()
        self.used = 0
        """Draws the last `votes` solved; `skipped`, those it left out to be in time;
        `kept`, the stations its draws took in; `stand_for`, the residents each of their
        forecast requests stood for."""
        self.skipped = 0
        self.kept = 0
        self.stand_for = 1
        self.ids = [s.id for s in stations]
        self.index = {sid: i for i, sid in enumerate(self.ids)}
        self.ranker = Ranker(stations)
        self.draws = draws
        self.k = k
        self.max_walk_min = max_walk_min
        self.rng = np.random.default_rng(seed)
        self._pt_station: list[int] = []
        self._pt_walk: list[float] = []
        self._pt_offsets: list[int] = [0]
        self._links: list[set[int]] = [set() for _ in self.ids]
        """Per station, the stations a support point reaches together with it."""
        self._support: Forecast | None = None
        """The forecast whose support points the walks above are of."""

    def reach(self, lat: float, lon: float) -> list[tuple[float, str]]:
        """(walk minutes, station id) of the `k` nearest stations in walking reach."""
        return self.ranker.within(lat, lon, self.max_walk_min)[: self.k]

    def rank(
        self,
        asks: Sequence[Ask],
        free: FreeTable,
        forecast: Forecast | None,
        now: float,
        phones: Mapping[str, int] | None = None,
        limit: int = 5,
        left: Callable[[], float] = unlimited,
    ) -> list[list[Option]] | None:
        """Options per ask, the policy's choice first; None: rank greedily instead."""
        self.used = self.skipped = 0
        if forecast is None or not forecast.ready or not asks:
            return None
        votes = self.votes(asks, free, forecast, now, phones, left)
        if votes is None:
            return None
        table = free.copy()
        charging = dict(phones) if phones is not None else None
        out = []
        for ask, tally in zip(asks, votes, strict=True):
            options = self._options(ask, table, tally, limit)
            out.append(options)
            if options:
                first = options[0]
                table.take(first.station_id, first.window_start)
                if charging is not None and first.station_id in charging:
                    charging[first.station_id] -= 1
                    if charging[first.station_id] <= 0:
                        table.clear_station(first.station_id)
        return out

    def votes(
        self,
        asks: Sequence[Ask],
        free: FreeTable,
        forecast: Forecast,
        now: float,
        phones: Mapping[str, int] | None = None,
        left: Callable[[], float] = unlimited,
    ) -> list[Counter[str]] | None:
        """Per ask, how many draws' flows send it to each station; None when not one draw
        fits in the seconds `left()` gives (each draw's cost predicted by `pace`, and
        measured by `left()` before and after to learn it).

        Only the part of the network the asks can touch is solved: the stations linked to
        one an ask reaches (two stations are linked when a place reaches both), and the
        forecast demand of those stations. Where that whole part would not be solved in
        time for all the draws (200 stations and 20,000 requests on 2 cores already), each
        forecast request first stands for several residents (`_cut`: a draw of half or a
        quarter of the requests, each of two or four), then the part is cut to the
        stations fewer links from the asks'; the forecast demand at its edge then has only
        the stations kept.
        Forecast requests alike (one support point, one `bucket_s` of earliest times) are
        one demand node of their number.
        """
        self.measure(forecast)
        self.used = self.skipped = self.kept = 0
        self.stand_for = 1
        a_dem, a_st, a_walk = [], [], []
        for j, ask in enumerate(asks):
            for walk, sid in self.reach(ask.lat, ask.lon):
                a_dem.append(j)
                a_st.append(self.index[sid])
                a_walk.append(walk)
        if not a_st:  # no station in anyone's reach: nothing to solve
            return [Counter() for _ in asks]
        layer = self._layers(set(a_st))
        pt_station = np.asarray(self._pt_station, dtype=np.int64)
        pt_walk = np.asarray(self._pt_walk, dtype=np.float64)
        offsets = np.asarray(self._pt_offsets, dtype=np.int64)
        draws = forecast.draws(self.rng, now, self.draws, np.diff(offsets) > 0)
        first = next(draws, None)
        if first is None:
            return None
        reached = np.flatnonzero(layer >= 0).tolist()
        per_station = {s: free.windows(self.ids[s], now) for s in reached}
        looked = left()  # also the first draw's start: one look at the clock a draw
        cut_to = self._cut(first, layer, per_station, len(a_dem), looked, pt_station, offsets)
        if cut_to is None:
            self.skipped = self.draws
            return None
        depth, self.stand_for = cut_to
        local = np.flatnonzero((layer >= 0) & (layer <= depth))
        self.kept = len(local)
        kept = np.zeros(len(self.ids), dtype=bool)
        kept[local] = True
        renumber = np.full(len(self.ids), -1, dtype=np.int64)
        renumber[local] = np.arange(len(local), dtype=np.int64)
        windows = flow.Windows.of(
            [per_station[s] for s in local.tolist()],
            None if phones is None else [phones.get(self.ids[s], 0) for s in local.tolist()],
        )
        arc_kept = kept[pt_station]
        pt_keep = _any_per_point(arc_kept, offsets)
        n_ask = len(asks)
        ask_earliest = np.array([a.earliest for a in asks], dtype=np.float64)
        ask_arcs = (np.asarray(a_dem, dtype=np.int64), renumber[np.asarray(a_st, dtype=np.int64)],
                    np.asarray(a_walk, dtype=np.float64))  # fmt: skip
        tallies: list[Counter[str]] = [Counter() for _ in asks]
        running: deque[tuple[Future[flow.Solution], flow.Network, int, float]] = deque()
        cut = False

        def collect() -> None:
            """The oldest running draw's flows into the tallies, its time into the pace."""
            nonlocal cut
            future, network, size, began = running.popleft()
            try:
                solution = future.result()
            except flow.SolveLate:
                self.pace.late(size, began - left())
                self.skipped += 1
                cut = True
                return
            self.pace.learn(size, began - left())
            self.used += 1
            used = np.nonzero(solution.flows[: network.n_demand_arcs] > 0)[0]
            mine = used[network.tails[used] < n_ask]
            stations = local[network.window_station_ids[network.window_of[mine]]]
            for j, s in zip(network.tails[mine].tolist(), stations.tolist(), strict=True):
                tallies[j][self.ids[s]] += 1

        with ThreadPoolExecutor(self.parallel, thread_name_prefix="draw") as pool:
            for i, draw in enumerate(itertools.chain([first], draws)):
                if len(running) == self.parallel:
                    collect()
                if cut:
                    self.skipped += self.draws - i
                    break
                rows, arcs, supply, earliest = _pool_arcs(draw, pt_keep, offsets, self.bucket_s,
                                                          self.stand_for)  # fmt: skip
                on = arc_kept[arcs]
                rows, arcs = rows[on], arcs[on]
                demand = flow.Demand(
                    earliest=np.r_[ask_earliest, earliest],
                    supply=np.r_[np.ones(n_ask, dtype=np.int64), supply],
                    arc_demand=np.r_[ask_arcs[0], n_ask + rows],
                    arc_station=np.r_[ask_arcs[1], renumber[pt_station[arcs]]],
                    arc_walk=np.r_[ask_arcs[2], pt_walk[arcs]],
                )
                size = len(demand.arc_demand) + len(windows.start)
                before = looked if i == 0 else left()
                if not self.pace.fits(size, before):
                    self.skipped += self.draws - i
                    break
                network = flow.build(demand, windows)
                running.append((pool.submit(self.solve, network, left), network, size, before))
            while running:
                collect()
        if not self.used:
            return None
        return tallies

    def _cut(
        self,
        draw: Drawn,
        layer: Ints,
        per_station: Mapping[int, Sequence[tuple[float, int]]],
        ask_arcs: int,
        budget: float,
        pt_station: Ints,
        offsets: Ints,
    ) -> tuple[int, int] | None:
        """How many links from the asks' stations the draws take in, and how many residents
        each forecast request stands for (`STAND_FOR`): the most links, then the fewest
        residents, at which all the batch's draws (`parallel` side by side) are predicted
        to end in time, else the same for one draw, with `budget` seconds left; None when
        not even the asks' own stations fit. The links are kept first: a coarser forecast
        still sees every station the asks compete with for places, a cut one does not. The
        sizes are this draw's; the batch's other draws are alike. `pt_station` and
        `offsets`: the support's reach as arrays (`votes` made them)."""
        reached = _any_per_point(layer[pt_station] >= 0, offsets)
        deepest = int(layer.max())
        windows_at = np.zeros(deepest + 1, dtype=np.int64)
        for s, found in per_station.items():
            windows_at[layer[s]] += len(found)
        sizes: dict[int, Ints] = {}  # per coarseness, made when first asked: mostly only 1

        def size(m: int, d: int) -> int:
            if m not in sizes:
                _rows, arcs, _supply, _earliest = _pool_arcs(draw, reached, offsets,
                                                             self.bucket_s, m)  # fmt: skip
                arcs_at = np.bincount(layer[pt_station[arcs]], minlength=deepest + 1)
                sizes[m] = ask_arcs + np.cumsum(arcs_at + windows_at)
            return int(sizes[m][d])

        for rounds in (-(-self.draws // self.parallel), 1):
            for d in range(deepest, -1, -1):
                for m in STAND_FOR:
                    if self.pace.fits(size(m, d) * rounds, budget):
                        return d, m
        return None

    def _layers(self, start: set[int]) -> Ints:
        """Per station, how many links away from the nearest of `start` it is (0 for those);
        -1 where nothing links it to them."""
        layer = np.full(len(self.ids), -1, dtype=np.int64)
        frontier = sorted(start)
        layer[frontier] = 0
        d = 0
        while frontier:
            d += 1
            frontier = sorted({t for s in frontier for t in self._links[s] if layer[t] < 0})
            layer[frontier] = d
        return layer

    def measure(self, forecast: Forecast) -> None:
        """Measure the reach of support points not seen before (the places seen grow), and
        link the stations each reaches; all again for a forecast built anew (seconds for
        the 16,000 points of 2,000 stations: `batches.Batches.prepare` does it at start)."""
        if forecast is not self._support:
            self._support = forecast
            self._pt_station, self._pt_walk, self._pt_offsets = [], [], [0]
            self._links = [set() for _ in self.ids]
        for lat, lon in forecast.points[len(self._pt_offsets) - 1 :]:
            reach = self.reach(lat, lon)
            stations = [self.index[sid] for _walk, sid in reach]
            for s in stations:
                self._links[s].update(stations)
            self._pt_station.extend(stations)
            self._pt_walk.extend(walk for walk, _sid in reach)
            self._pt_offsets.append(len(self._pt_station))

    def _options(self, ask: Ask, table: FreeTable, tally: Counter[str], limit: int) -> list[Option]:
        """The ranking's options, the station most draws chose first (if it has a window)."""
        earliest = datetime.fromtimestamp(ask.earliest, UTC)
        ranked = self.ranker.rank(ask.lat, ask.lon, earliest, table, limit, self.max_walk_min)
        chosen = self._chosen(ask, table, tally)
        if chosen is None:
            return ranked
        return [chosen, *(o for o in ranked if o.station_id != chosen.station_id)][:limit]

    def _chosen(self, ask: Ask, table: FreeTable, tally: Counter[str]) -> Option | None:
        """The earliest reachable window of the most voted station that has one; ties go
        to the cheaper option."""
        best: Option | None = None
        best_key: tuple[int, float] | None = None
        for walk, sid in self.reach(ask.lat, ask.lon):
            n = tally.get(sid, 0)
            if not n:
                continue
            arrival = ask.earliest + walk * 60.0
            first = table.first(sid, arrival)
            if first is None:
                continue
            wait = (first[0] - arrival) / 60.0
            key = (-n, 2 * walk + wait)
            if best_key is None or key < best_key:
                best_key = key
                best = Option(sid, datetime.fromtimestamp(first[0], UTC), walk, wait,
                              2 * walk + wait, first[1])  # fmt: skip
        return best


def _any_per_point(per_arc: NDArray[np.bool_], offsets: Ints) -> NDArray[np.bool_]:
    """Per support point, whether any of its reach arcs is True."""
    point = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    return np.bincount(point, weights=per_arc, minlength=len(offsets) - 1) > 0


def _pool_arcs(
    draw: Drawn, keep: NDArray[np.bool_], offsets: Ints, bucket_s: float, stand_for: int = 1
) -> tuple[Ints, Ints, Ints, Floats]:
    """A draw's requests at the points kept, pooled (`_pooled`): each pool's reach arcs
    (its row, the arc's index in the support's reach), and each pool's size and earliest.
    With `stand_for` m, every m-th request of the draw (drawn independently, so a sample of
    it) stands for m residents."""
    sample = slice(None, None, stand_for)
    at, when = draw.point[sample], draw.earliest[sample]
    point, supply, earliest = _pooled(at[keep[at]], when[keep[at]], bucket_s)
    counts = offsets[point + 1] - offsets[point]
    rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    first = np.repeat(offsets[point] - (np.cumsum(counts) - counts), counts)
    return rows, first + np.arange(len(rows), dtype=np.int64), supply * stand_for, earliest


def _pooled(
    point: np.ndarray, earliest: np.ndarray, bucket_s: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forecast requests pooled per (support point, bucket of earliest times): the point,
    the number and the mean earliest time of each pool."""
    if not len(point):
        return point, point.copy(), earliest
    bucket = np.floor(earliest / bucket_s).astype(np.int64)
    bucket -= bucket.min()
    key = point * (int(bucket.max()) + 1) + bucket
    _keys, first, inverse, counts = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    mean = np.bincount(inverse, weights=earliest) / counts
    return point[first], counts.astype(np.int64), mean
