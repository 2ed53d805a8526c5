"""Districts (地区), registry data an operator sets: a municipality's list, which residents
register under on LINE (`server.line.conversation`).

A municipality's districts are put as one list (the order given is the order residents
see), replacing the one before, or from a CSV file (`municipality,district`: every
municipality in the file gets the file's list, all rows or none, each bad row reported).
A municipality's operator puts its own only; every change is audited, and putting the same
list again changes nothing. A name is at most 20 characters (LINE's quick-reply label).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access.operators import Operator
from server.api.schemas import Text
from server.db.models import District
from server.db.session import Database
from server.errors import Invalid
from server.registry.csv_import import ParsedCsv, parse_rows
from server.registry.service import ImportReport

COLUMNS: Final = ("municipality", "district")
MAX_DISTRICTS: Final = 500
"""More than any municipality has (大洲市 has about 150 大字)."""

Clock = Callable[[], datetime]
Municipality = Annotated[Text, Field(min_length=1, max_length=100)]
DistrictName = Annotated[Text, Field(min_length=1, max_length=20)]


class DistrictRow(BaseModel):
    """One row of a districts CSV file."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)

    municipality: Municipality
    district: DistrictName


def parse_districts_csv(text: str) -> ParsedCsv[DistrictRow]:
    """Districts, each error with its row and column; a district given twice is an error."""
    return parse_rows(text, COLUMNS, frozenset(COLUMNS), DistrictRow,
                      lambda r: (r.municipality, r.district))  # fmt: skip


def checked_names(names: Sequence[str]) -> list[str]:
    """The names stripped, in order; Invalid for an empty or long one, or one given twice."""
    found = [name.strip() for name in names]
    if len(found) > MAX_DISTRICTS:
        raise Invalid(f"{len(found)} districts; at most {MAX_DISTRICTS}")
    for name in found:
        if not name or len(name) > 20:
            raise Invalid(f"district {name!r}: 1 to 20 characters")
    twice = sorted({name for name in found if found.count(name) > 1})
    if twice:
        raise Invalid(f"districts given twice: {', '.join(twice)}")
    return found


async def district_names(session: AsyncSession, municipality: str) -> list[str]:
    """A municipality's districts in the order given, read in the caller's transaction."""
    rows = await session.scalars(
        select(District.name)
        .where(District.municipality == municipality)
        .order_by(District.position, District.name)
    )
    return list(rows)


class Districts:
    """Reads and writes the districts; made per request from a database and clock."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def names(self, municipality: str) -> list[str]:
        async with self._db.transaction() as session:
            return await district_names(session, municipality)

    async def put(self, municipality: str, names: Sequence[str], by: Operator) -> list[str]:
        """Replace the municipality's list with `names`; the list as stored."""
        wanted = checked_names(names)
        async with self._db.transaction() as session:
            await self._write(session, municipality.strip(), wanted, by)
        return wanted

    async def import_csv(self, text: str, by: Operator) -> ImportReport:
        """Every municipality of the file gets the file's districts; the others keep theirs."""
        parsed = parse_districts_csv(text)
        if parsed.errors:
            return ImportReport(errors=parsed.errors)
        lists: dict[str, list[str]] = {}
        for row in parsed.rows:
            lists.setdefault(row.model.municipality, []).append(row.model.district)
        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        async with self._db.transaction() as session:
            for municipality, names in lists.items():
                before = await self._write(session, municipality, names, by)
                if before == names:
                    unchanged.append(municipality)
                else:
                    (updated if before else created).append(municipality)
        return ImportReport(tuple(created), tuple(updated), tuple(unchanged))

    async def _write(
        self, session: AsyncSession, municipality: str, names: list[str], by: Operator
    ) -> list[str]:
        """Replace the list, audited if it changed; the list before."""
        by.require_reach(municipality, f"the districts of {municipality}")
        before = await district_names(session, municipality)
        if before == names:
            return before
        await session.execute(delete(District).where(District.municipality == municipality))
        session.add_all(
            District(municipality=municipality, name=name, position=number)
            for number, name in enumerate(names)
        )
        detail = {"districts": len(names), "before": len(before)}
        await audit.record(session, by.name, "districts.set", f"districts:{municipality}",
                           detail, at=self._clock())  # fmt: skip
        return before
