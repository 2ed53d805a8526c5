"""Granting and revoking priority: operators' decisions on residents' requests.

A resident's self-reported need (`resident_registrations.need_requested`) is a request,
never a grant: only an operator grants, by the registration's reference (which the resident
shows at the desk, `desk`), or from the municipality's own list (a CSV file
`municipality,reference`, `municipal_list`: all rows or none, each bad row reported). What
operators see of the requests is counts and references, never a LINE user id. A
municipality's operator acts on its own residents only; every grant and revoke is audited,
by reference. A registration deleted by its resident takes its grant with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access.operators import Operator
from server.api.schemas import Text
from server.db.models import PriorityResident, ResidentRegistration
from server.db.session import Database
from server.errors import Forbidden, NotFound
from server.line.conversation import LINE_RESIDENT, resident_id
from server.priority.references import normalised
from server.registry.csv_import import ParsedCsv, RowError, parse_rows
from server.registry.service import ImportReport

Source = Literal["desk", "municipal_list"]
COLUMNS: Final = ("municipality", "reference")
Reference = Annotated[Text, Field(min_length=4, max_length=16)]


@dataclass(frozen=True, slots=True)
class PriorityRequest:
    """A registration as operators see it for priority: no user id, no district."""

    reference: str
    municipality: str
    need_requested: str | None
    granted: bool
    source: str | None
    granted_at: datetime | None


@dataclass(frozen=True, slots=True)
class RequestCounts:
    municipality: str
    requested: int
    """Registrations with a self-reported need."""
    granted: int
    waiting: int
    """Requested and not granted: the desk's queue."""


class ListRow(BaseModel):
    """One row of a municipality's list."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)

    municipality: Annotated[Text, Field(min_length=1, max_length=100)]
    reference: Reference


def parse_list_csv(text: str) -> ParsedCsv[ListRow]:
    return parse_rows(text, COLUMNS, frozenset(COLUMNS), ListRow,
                      lambda r: (normalised(r.reference),))  # fmt: skip


async def priority_among(session: AsyncSession, resident_ids: Sequence[str]) -> set[str]:
    """Those of these residents (booking ids, `line:...`) granted priority."""
    wanted = sorted(set(resident_ids))
    if not wanted:
        return set()
    found = await session.scalars(
        select(PriorityResident.resident_id).where(PriorityResident.resident_id.in_(wanted))
    )
    return set(found)


async def forget(session: AsyncSession, user_id: str, at: datetime) -> None:
    """The resident deleted their registration: its grant goes too (audited)."""
    gone = (
        await session.scalars(
            delete(PriorityResident)
            .where(PriorityResident.resident_id == resident_id(user_id))
            .returning(PriorityResident.reference)
        )
    ).all()
    for reference in gone:
        await audit.record(session, "resident", "priority.revoked", f"registration:{reference}",
                           {"reason": "registration_deleted"}, at=at)  # fmt: skip


class PriorityDesk:
    """Requests, grants and revokes; made per request from a database and clock."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self._db = db
        self._clock = clock

    async def requests(
        self, by: Operator, municipality: str | None = None
    ) -> tuple[list[RequestCounts], list[PriorityRequest]]:
        """Counts per municipality and the registrations that asked or were granted."""
        if municipality is not None:
            by.require_reach(municipality, f"the priority requests of {municipality}")
        granted_to = (
            PriorityResident.resident_id == literal(LINE_RESIDENT) + ResidentRegistration.user_id
        )
        query = (
            select(ResidentRegistration, PriorityResident)
            .outerjoin(PriorityResident, granted_to)
            .where(or_(ResidentRegistration.need_requested.is_not(None),
                       PriorityResident.resident_id.is_not(None)))
            .order_by(ResidentRegistration.municipality, ResidentRegistration.consented_at)
        )  # fmt: skip
        wanted = municipality if municipality is not None else by.municipality
        if wanted is not None:
            query = query.where(ResidentRegistration.municipality == wanted)
        async with self._db.transaction() as session:
            rows = list(await session.execute(query))
        listed: list[PriorityRequest] = []
        counts: dict[str, list[int]] = {}
        for row, grant in rows:
            tally = counts.setdefault(row.municipality, [0, 0, 0])
            tally[0] += row.need_requested is not None
            tally[1] += grant is not None
            tally[2] += row.need_requested is not None and grant is None
            listed.append(PriorityRequest(
                row.reference or "", row.municipality, row.need_requested, grant is not None,
                grant.source if grant else None, grant.granted_at if grant else None,
            ))  # fmt: skip
        return [RequestCounts(m, *c) for m, c in sorted(counts.items())], listed

    async def grant(self, reference: str, source: Source, by: Operator) -> PriorityRequest:
        """Grant the registration's resident priority (unchanged if already granted)."""
        async with self._db.transaction() as session:
            return (await self._grant(session, reference, source, by, None))[0]

    async def revoke(self, reference: str, by: Operator) -> PriorityRequest:
        """Take the grant back (unchanged if there was none)."""
        now = self._clock()
        async with self._db.transaction() as session:
            row = await self._registration(session, reference, by)
            grant = await session.get(PriorityResident, resident_id(row.user_id))
            if grant is not None:
                await session.delete(grant)
                await audit.record(session, by.name, "priority.revoked",
                                   f"registration:{row.reference}",
                                   {"municipality": row.municipality, "was": grant.source},
                                   at=now)  # fmt: skip
            return PriorityRequest(row.reference or "", row.municipality, row.need_requested,
                                   False, None, None)  # fmt: skip

    async def import_csv(self, text: str, by: Operator) -> ImportReport:
        """Grant every reference of the municipality's list (`municipal_list`); a file with a
        bad row (unknown reference, another municipality's) grants nothing."""
        parsed = parse_list_csv(text)
        if parsed.errors:
            return ImportReport(errors=parsed.errors)
        created: list[str] = []
        unchanged: list[str] = []
        try:
            async with self._db.transaction() as session:
                errors: list[RowError] = []
                for item in parsed.rows:
                    try:
                        granted, new = await self._grant(
                            session, item.model.reference, "municipal_list", by,
                            item.model.municipality,
                        )  # fmt: skip
                    except (NotFound, Forbidden) as exc:
                        errors.append(RowError(item.row, "reference", exc.message))
                        continue
                    (created if new else unchanged).append(granted.reference)
                if errors:
                    raise _Refused(errors)
        except _Refused as refused:
            return ImportReport(errors=tuple(refused.errors))
        return ImportReport(tuple(created), (), tuple(unchanged))

    async def _grant(
        self,
        session: AsyncSession,
        reference: str,
        source: Source,
        by: Operator,
        municipality: str | None,
    ) -> tuple[PriorityRequest, bool]:
        """The grant, and whether it is new."""
        now = self._clock()
        row = await self._registration(session, reference, by)
        if municipality is not None and row.municipality != municipality:
            raise NotFound(f"reference {row.reference}: not registered in {municipality}")
        key = resident_id(row.user_id)
        grant = await session.get(PriorityResident, key)
        new = grant is None
        if grant is None:
            grant = PriorityResident(resident_id=key, reference=row.reference,
                                     municipality=row.municipality, source=source,
                                     granted_by=by.name, granted_at=now)  # fmt: skip
            session.add(grant)
            await audit.record(session, by.name, "priority.granted",
                               f"registration:{row.reference}",
                               {"municipality": row.municipality, "source": source,
                                "requested": row.need_requested}, at=now)  # fmt: skip
        found = PriorityRequest(row.reference or "", row.municipality, row.need_requested, True,
                                grant.source, grant.granted_at)  # fmt: skip
        return found, new

    async def _registration(
        self, session: AsyncSession, reference: str, by: Operator
    ) -> ResidentRegistration:
        code = normalised(reference)
        row = await session.scalar(
            select(ResidentRegistration)
            .where(ResidentRegistration.reference == code)
            .with_for_update()
        )
        if row is None:
            raise NotFound(f"reference: no registration {code}")
        by.require_reach(row.municipality, f"registration {code}")
        return row


class _Refused(Exception):
    """A list with bad rows: roll the grants back."""

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
