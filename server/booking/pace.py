"""How long a forecast draw takes to solve, learned from the draws solved, so a batch runs
only the draws that fit before its answer is due.

Checking the clock between draws is not enough: at 2,000 stations one draw's min-cost flow
takes seconds, so a batch would overrun its deadline by a whole draw before falling back.
A draw's cost grows with its network, so the cost is kept per arc (demand arcs and windows),
an exponentially weighted mean over the draws measured, and a draw's predicted seconds are
that times its size. Before any draw was measured the prediction is 0: the first draw runs
(and is measured) if any time is left at all; a draw cut short at the deadline
(`flow.SolveLate`) says only that draws of its size take longer than that (`late`), so the
next such draw is predicted not to fit. The clock is the caller's, so tests inject it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class Pace:
    """Seconds per arc of a draw's network, learned (one per service: it is the machine's)."""

    weight: float = 0.3
    """Share of the newest measurement in the mean: a few draws follow a change of load."""
    per_arc_s: float | None = None
    measured: int = 0

    def predict(self, arcs: int) -> float:
        """Seconds a draw of `arcs` arcs is expected to take (0 until one was measured)."""
        return 0.0 if self.per_arc_s is None else self.per_arc_s * max(arcs, 1)

    def fits(self, arcs: int, left_s: float) -> bool:
        """Whether a draw of `arcs` arcs is expected to end within `left_s` seconds."""
        return left_s > 0 and self.predict(arcs) < left_s

    def learn(self, arcs: int, seconds: float) -> None:
        """A draw of `arcs` arcs took `seconds` (nothing learned from an unlimited clock's nan)."""
        if not math.isfinite(seconds):
            return
        rate = max(seconds, 0.0) / max(arcs, 1)
        if self.per_arc_s is None:
            self.per_arc_s = rate
        else:
            self.per_arc_s += self.weight * (rate - self.per_arc_s)
        self.measured += 1

    def late(self, arcs: int, seconds: float) -> None:
        """A draw of `arcs` arcs was cut short after `seconds`: it would have taken longer
        (how much longer is unknown), so draws of its size are predicted to take at least
        twice that: each cut at a size at least doubles its prediction, and a draw far
        beyond the deadline is cut a few times, not at every batch."""
        rate = 2 * max(seconds, 0.0) / max(arcs, 1)
        self.per_arc_s = rate if self.per_arc_s is None else max(self.per_arc_s, rate)
