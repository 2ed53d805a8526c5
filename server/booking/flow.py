"""The time-expanded assignment network and its min-cost flow (OR-Tools).

Nodes: one per demand (a request, or several alike: `supply`), one per free window of each
station, one per station, one sink. Arcs:

- demand -> (station, first free window it can reach): walk + window start - earliest
  (minutes), for each station in the demand's reach;
- demand -> sink: `UNSERVED_MIN`, what a request nobody serves costs in every policy;
- (station, window) -> (station, next free window): the gap, i.e. waiting on;
- (station, window) -> station: capacity the window's free places;
- station -> sink: capacity the phones its energy can still charge.

A path's cost is walk + start - earliest = 2 x walk + wait, the ranking's cost, so the
minimum-cost flow is the assignment of least total ranking cost. Network matrices are
totally unimodular: the integer flow the network solver finds is optimal among fractional
ones too, and an LP over the same arcs (`Network.tails` ...) must agree with it.

Costs are integers for the solver: minutes x `COST_SCALE`. Only demand arcs are rounded
(gaps are whole minutes, `UNSERVED_MIN` too), so for any flow its rounded and true costs
differ by at most 0.5 / `COST_SCALE` minutes per unit of demand: `Solution.lower_bound` is
a certified bound on the true optimum, and `Solution.cost` (the true cost of the flow found)
is within `supply / COST_SCALE` minutes of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray
from ortools.graph.python import min_cost_flow

UNSERVED_MIN: Final = 24 * 60.0
COST_SCALE: Final = 1000
_SPAN_S: Final = 1e7
"""Seconds between stations' keys in the search for first windows (beyond any horizon)."""

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Demand:
    """Demand nodes and their reach: arc i joins demand `arc_demand[i]` to station
    `arc_station[i]`, `arc_walk[i]` walking minutes away."""

    earliest: Floats
    """POSIX seconds, per demand node."""
    supply: Ints
    arc_demand: Ints
    arc_station: Ints
    arc_walk: Floats


@dataclass(frozen=True, slots=True)
class Windows:
    """Free windows of every station, concatenated station by station, starts sorted."""

    station: Ints
    start: Floats
    """POSIX seconds."""
    free: Ints
    offsets: Ints
    """Station s's windows are [offsets[s], offsets[s + 1])."""
    phones: Ints
    """Per station, the phones its energy can still charge."""

    @staticmethod
    def of(
        per_station: Sequence[Sequence[tuple[float, int]]], phones: Sequence[int] | None = None
    ) -> Windows:
        """From each station's (start, free places) list, sorted by start."""
        counts = np.array([len(ws) for ws in per_station], dtype=np.int64)
        offsets = np.zeros(len(per_station) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        flat = [w for ws in per_station for w in ws]
        start = np.array([w[0] for w in flat], dtype=np.float64)
        free = np.array([w[1] for w in flat], dtype=np.int64)
        station = np.repeat(np.arange(len(per_station), dtype=np.int64), counts)
        if phones is not None:
            cap = np.asarray(phones, dtype=np.int64)
        else:  # no energy bound: every free place can be used
            cap = np.add.reduceat(np.r_[free, 0], offsets[:-1]) * (counts > 0)
        return Windows(station, start, np.maximum(free, 0), offsets, np.maximum(cap, 0))


@dataclass(frozen=True, slots=True)
class Network:
    """Arcs as arrays (tail, head, cost in minutes, capacity), node supplies, and where each
    kind of arc lies, so that another solver (an LP, for duals) can read the same network."""

    tails: Ints
    heads: Ints
    costs: Floats
    caps: Ints
    supplies: Ints
    n_demand_arcs: int
    """Arcs [0, n) join demands to windows: `window_of[i]` is the window arc i reaches."""
    arc_of_reach: Ints
    """For each reach entry of the `Demand`, its arc, or -1 when no free window is left."""
    window_of: Ints
    unserved: slice
    """Demand -> sink arcs, one per demand node in order."""
    window_station: slice
    """(station, window) -> station arcs, one per window in order."""
    station_sink: slice
    """Station -> sink arcs, one per station in order."""
    window_station_ids: Ints
    """Station of each window, in order (`Windows.station`)."""
    window_starts: Floats


def build(demand: Demand, windows: Windows) -> Network:
    """The time-expanded network of `demand` into `windows` (see the module doc)."""
    n_d = len(demand.earliest)
    n_w = len(windows.start)
    n_s = len(windows.phones)
    w_node = n_d + np.arange(n_w, dtype=np.int64)
    s_node = n_d + n_w + np.arange(n_s, dtype=np.int64)
    sink = n_d + n_w + n_s
    total = int(demand.supply.sum())
    # First free window at or after arrival, per reach entry: one search over keys that
    # order windows by station, then start.
    base = float(windows.start.min()) if n_w else 0.0
    keys = windows.station * _SPAN_S + (windows.start - base)
    st, walk = demand.arc_station, demand.arc_walk
    arrival = demand.earliest[demand.arc_demand] + walk * 60.0
    pos = np.searchsorted(keys, st * _SPAN_S + (arrival - base), side="left")
    pos = np.maximum(pos, windows.offsets[st])
    ok = pos < windows.offsets[st + 1]
    arc_of_reach = np.full(len(st), -1, dtype=np.int64)
    arc_of_reach[ok] = np.arange(int(ok.sum()), dtype=np.int64)
    d_rows, window_of = demand.arc_demand[ok], pos[ok]
    d_cost = walk[ok] + (windows.start[window_of] - demand.earliest[d_rows]) / 60.0
    same = windows.station[:-1] == windows.station[1:]
    wait_from = np.nonzero(same)[0]
    gaps = (windows.start[wait_from + 1] - windows.start[wait_from]) / 60.0
    parts_t = [d_rows, np.arange(n_d), w_node[wait_from], w_node, s_node]
    parts_h = [w_node[window_of], np.full(n_d, sink), w_node[wait_from + 1],
               s_node[windows.station], np.full(n_s, sink)]  # fmt: skip
    parts_c = [d_cost, np.full(n_d, UNSERVED_MIN), gaps, np.zeros(n_w), np.zeros(n_s)]
    parts_u = [demand.supply[d_rows], demand.supply, np.full(len(wait_from), total),
               windows.free, windows.phones]  # fmt: skip
    n_da = len(d_rows)
    supplies = np.zeros(sink + 1, dtype=np.int64)
    supplies[:n_d] = demand.supply
    supplies[sink] = -total
    first_ws = n_da + n_d + len(wait_from)
    return Network(
        tails=np.concatenate(parts_t).astype(np.int64),
        heads=np.concatenate(parts_h).astype(np.int64),
        costs=np.concatenate(parts_c).astype(np.float64),
        caps=np.concatenate(parts_u).astype(np.int64),
        supplies=supplies,
        n_demand_arcs=n_da,
        arc_of_reach=arc_of_reach,
        window_of=window_of,
        unserved=slice(n_da, n_da + n_d),
        window_station=slice(first_ws, first_ws + n_w),
        station_sink=slice(first_ws + n_w, first_ws + n_w + n_s),
        window_station_ids=windows.station,
        window_starts=windows.start,
    )


@dataclass(frozen=True, slots=True)
class Solution:
    cost: float
    """True cost (minutes) of the flow found."""
    lower_bound: float
    """Certified: no flow costs less (rounding of the integer costs accounted for)."""
    unserved: int
    flows: Ints
    """Flow on every arc of the network, in its order."""


class SolveLate(Exception):
    """A solve cut short at the time it was given (`solver.SolverProcess`): no flows."""


FlowSolver = Callable[[Ints, Ints, Ints, Ints, Ints], tuple[Ints, int]]
"""(tails, heads, capacities, integer unit costs, node supplies) -> (flow per arc, the
integer optimal cost): `min_cost_flows` here, or the same in a solver process
(`server.booking.solver`)."""


def min_cost_flows(
    tails: Ints, heads: Ints, caps: Ints, unit_costs: Ints, supplies: Ints
) -> tuple[Ints, int]:
    """OR-Tools' network simplex on plain arrays (what a solver process is sent); it holds
    the GIL of the process it runs in for the whole solve."""
    smcf = min_cost_flow.SimpleMinCostFlow()
    arcs = smcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, unit_costs)
    smcf.set_nodes_supplies(np.arange(len(supplies), dtype=np.int64), supplies)
    status = smcf.solve()
    if status != smcf.OPTIMAL:
        raise RuntimeError(f"min-cost flow failed: status {status}")
    return np.asarray(smcf.flows(arcs), dtype=np.int64), int(smcf.optimal_cost())


def solve(network: Network, flows_of: FlowSolver = min_cost_flows) -> Solution:
    """Min-cost flow on integer costs (see the module doc), by `flows_of`."""
    scaled = np.rint(network.costs * COST_SCALE).astype(np.int64)
    flows, optimal = flows_of(network.tails, network.heads, network.caps, scaled,
                              network.supplies)  # fmt: skip
    units = int(network.supplies[network.supplies > 0].sum())
    return Solution(
        # Not `flows @ costs`: a BLAS dot, after which OpenBLAS's threads spin on the other
        # cores for a while (40 of the 47 CPU-seconds of a replay's batches, stealing the
        # cores the solver processes and the event loop need).
        cost=float((flows * network.costs).sum()),
        lower_bound=optimal / COST_SCALE - 0.5 * units / COST_SCALE,
        unserved=int(flows[network.unserved].sum()),
        flows=flows,
    )
