"""Municipalities' hold-back rules in the database (`priority_rules`), set by operators.

The rule itself is `server.booking.holdback.HoldRule` (pure); here it is read for the booking
service and written, audited, for an operator who reaches the municipality. A municipality
is known when it has stations (drills' twins aside); an unknown one is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access.operators import Operator
from server.booking.holdback import NO_HOLD, HoldRule
from server.db.models import PriorityRule, Station
from server.db.session import Database
from server.errors import NotFound


@dataclass(frozen=True, slots=True)
class RuleView:
    municipality: str
    rule: HoldRule
    updated_by: str | None
    updated_at: datetime | None


async def load_rules(session: AsyncSession) -> dict[str, HoldRule]:
    """Every municipality's rule that holds anything back."""
    return {
        row.municipality: HoldRule(row.hold_share, timedelta(minutes=row.release_before_min))
        for row in await session.scalars(select(PriorityRule).where(PriorityRule.hold_share > 0))
    }


async def municipalities(session: AsyncSession) -> list[str]:
    """Municipalities with stations (drills' twins aside)."""
    rows = await session.scalars(
        select(Station.municipality)
        .where(Station.drill_id.is_(None), Station.municipality != "")
        .distinct()
        .order_by(Station.municipality)
    )
    return list(rows)


class PriorityRules:
    """Reads and writes the rules; made per request from a database and clock."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def list(self, by: Operator) -> list[RuleView]:
        """Every municipality the operator reaches, with its rule (no hold-back if unset)."""
        async with self._db.transaction() as session:
            rows = {r.municipality: r for r in await session.scalars(select(PriorityRule))}
            names = [m for m in await municipalities(session) if by.reaches(m)]
        return [self._view(name, rows.get(name)) for name in names]

    async def put(self, municipality: str, rule: HoldRule, by: Operator) -> RuleView:
        """Set the municipality's rule (audited when it changes)."""
        by.require_reach(municipality, f"the priority rule of {municipality}")
        now = self._clock()
        async with self._db.transaction() as session:
            if municipality not in await municipalities(session):
                raise NotFound(f"municipality: no stations in {municipality!r}")
            row = await session.get(PriorityRule, municipality, with_for_update=True)
            before = self._view(municipality, row).rule
            minutes = round(rule.release_before / timedelta(minutes=1))
            if row is None:
                row = PriorityRule(municipality=municipality)
                session.add(row)
            if before != rule or row.updated_by is None:
                row.hold_share, row.release_before_min = rule.share, minutes
                row.updated_by, row.updated_at = by.name, now
                was = round(before.release_before / timedelta(minutes=1))
                detail = {
                    "hold_share": rule.share,
                    "release_before_min": minutes,
                    "before": {"hold_share": before.share, "release_before_min": was},
                }
                await audit.record(session, by.name, "priority.rule_set",
                                   f"priority_rule:{municipality}", detail, at=now)  # fmt: skip
            return self._view(municipality, row)

    @staticmethod
    def _view(municipality: str, row: PriorityRule | None) -> RuleView:
        if row is None:
            return RuleView(municipality, NO_HOLD, None, None)
        rule = HoldRule(row.hold_share, timedelta(minutes=row.release_before_min))
        return RuleView(municipality, rule, row.updated_by, row.updated_at)
