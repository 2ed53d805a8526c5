"""A drill's report: what was sent, how fast crews acknowledged and resolved, who acted.

Pure: `server.drills.service` reads the rows, this counts them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from server.reports.figures import IncidentRow, percentile

END_ACTOR: Final = "drill_end"
"""Who closed what was still open when the drill ended (not a crew's doing)."""


def ack_s(row: IncidentRow) -> float | None:
    """Seconds from opening to a crew's acknowledgement."""
    if row.acknowledged_at is None:
        return None
    return (row.acknowledged_at - row.opened_at).total_seconds()


def resolve_s(row: IncidentRow) -> float | None:
    """By a person or by the rules (the scenario's fault cleared); not the drill's end."""
    if row.resolved_at is None or row.resolved_by == END_ACTOR:
        return None
    return (row.resolved_at - row.opened_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Timing:
    count: int
    p50_s: float | None
    max_s: float | None

    @classmethod
    def of(cls, seconds: Iterable[float | None]) -> Timing:
        """The median as the after-action reports take it (nearest rank)."""
        found = [s for s in seconds if s is not None]
        middle = percentile(found, 50)
        if middle is None:
            return cls(0, None, None)
        return cls(len(found), round(middle, 1), round(max(found), 1))


@dataclass(frozen=True, slots=True)
class DrillReport:
    incidents: int
    alerts_sent: dict[str, int]
    """LINE WORKS messages about the drill's incidents, by what they said (`paged`,
    `escalated`, `resolved`, `acknowledged`)."""
    acknowledged: Timing
    resolved: Timing
    unresolved_at_end: int
    actors: dict[str, dict[str, int]]
    """Who acknowledged and who resolved how many (`system`: the rules, when the
    scenario's fault cleared)."""
    bookings: dict[str, int]
    """The drill's bookings by status, and `participants` (residents who booked)."""
    resident_notices: int
    """Messages recorded for the drill's residents (moves, cancellations, reminders)."""
    real_incidents: int
    """Real incidents opened while the drill ran: alerted as real, not counted above."""
    rows: list[IncidentRow] = field(default_factory=list)


def alert_counts(sources: Iterable[str], incident_ids: set[int]) -> dict[str, int]:
    """LINE WORKS outbox sources (`incident:{id}.{id}:{what}`) about these incidents."""
    counts: Counter[str] = Counter()
    for source in sources:
        kind, _, rest = source.partition(":")
        ids, _, what = rest.rpartition(":")
        if kind != "incident" or not ids:
            continue
        if any(int(i) in incident_ids for i in ids.split(".") if i.isdigit()):
            counts[what] += 1
    return dict(sorted(counts.items()))


def drill_report(
    incidents: Sequence[IncidentRow],
    alert_sources: Iterable[str],
    bookings: Sequence[tuple[str, str]],
    resident_notices: int,
    real_incidents: int,
) -> DrillReport:
    """`bookings`: (resident, status) of each drill booking."""
    actors: dict[str, dict[str, int]] = defaultdict(lambda: {"acknowledged": 0, "resolved": 0})
    for row in incidents:
        if row.acknowledged_by:
            actors[row.acknowledged_by]["acknowledged"] += 1
        if row.resolved_by and row.resolved_by != END_ACTOR:
            actors[row.resolved_by]["resolved"] += 1
    statuses = Counter(status for _, status in bookings)
    participants = len({resident for resident, _ in bookings})
    return DrillReport(
        incidents=len(incidents),
        alerts_sent=alert_counts(alert_sources, {i.id for i in incidents}),
        acknowledged=Timing.of(map(ack_s, incidents)),
        resolved=Timing.of(map(resolve_s, incidents)),
        unresolved_at_end=sum(i.resolved_by == END_ACTOR for i in incidents),
        actors=dict(sorted(actors.items())),
        bookings={**dict(sorted(statuses.items())), "participants": participants},
        resident_notices=resident_notices,
        real_incidents=real_incidents,
        rows=list(incidents),
    )
