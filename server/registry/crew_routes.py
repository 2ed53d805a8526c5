"""Crew routes, registry data an operator sets: which LINE WORKS channel hears what.

A route is (scope, key) -> channel: `municipality` and `group` keyed by the name stations
give (`Station.municipality`, `Station.counterpart_group`), `hq` with an empty key. Set one
at a time or from a CSV file (`scope,key,channel_id`, all rows or none, each bad row
reported); every change is audited, and writing the same routes again changes nothing.
The API is `server.lineworks.routing`; the pager reads them as `alerts.Routes`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access.operators import Operator
from server.api.schemas import Text
from server.db.models import CrewRoute
from server.db.session import Database
from server.errors import Invalid, NotFound
from server.registry.csv_import import ParsedCsv, parse_rows
from server.registry.service import ImportReport

Scope = Literal["municipality", "group", "hq"]
COLUMNS: Final = ("scope", "key", "channel_id")
REQUIRED: Final = frozenset({"scope", "channel_id"})
CHANNEL_ID_RE: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
"""Safe in the send URL's path (`/channels/{channelId}/messages`)."""

Clock = Callable[[], datetime]
Key = Annotated[Text, Field(max_length=100)]
ChannelId = Annotated[str, Field(pattern=CHANNEL_ID_RE)]


class RouteSpec(BaseModel):
    """One route as an operator gives it; `hq` takes no key, the others need one."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, strict=True)

    scope: Scope
    key: Key = ""
    channel_id: ChannelId

    @model_validator(mode="after")
    def _key_fits_scope(self) -> RouteSpec:
        if self.scope == "hq" and self.key:
            raise ValueError("an hq route takes no key")
        if self.scope != "hq" and not self.key:
            raise ValueError(f"a {self.scope} route needs a key (the name stations give)")
        return self

    @property
    def name(self) -> str:
        return f"{self.scope}:{self.key}" if self.key else self.scope


class RouteOut(BaseModel):
    scope: Scope
    key: str
    channel_id: str
    updated_at: AwareDatetime


def route_spec(scope: Scope, key: str, channel_id: str) -> RouteSpec:
    """A route from its parts; `Invalid` (a 422) names what is wrong."""
    try:
        return RouteSpec(scope=scope, key=key, channel_id=channel_id)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc


def parse_routes_csv(text: str) -> ParsedCsv[RouteSpec]:
    """Routes, each error with its row and column; a (scope, key) given twice is an error."""
    return parse_rows(text, COLUMNS, REQUIRED, RouteSpec, lambda r: (r.scope, r.key))


async def route_rows(session: AsyncSession) -> list[CrewRoute]:
    """Every route, by scope and key."""
    rows = await session.scalars(select(CrewRoute).order_by(CrewRoute.scope, CrewRoute.key))
    return list(rows)


class CrewRoutes:
    """Reads and writes the routes; made per request (or load) from a database and clock."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def list(self, by: Operator) -> list[RouteOut]:
        """The routes `by` reaches: a municipality's operator sees its own only."""
        async with self._db.transaction() as session:
            return [
                RouteOut.model_validate(r, from_attributes=True)
                for r in await route_rows(session)
                if _reaches(by, r.scope, r.key)
            ]

    async def put(self, spec: RouteSpec, by: Operator) -> tuple[RouteOut, bool]:
        """The route as stored, and whether it was new."""
        async with self._db.transaction() as session:
            row, created = await self._write(session, spec, by)
            return RouteOut.model_validate(row, from_attributes=True), created

    async def delete(self, scope: Scope, key: str, by: Operator) -> None:
        _require_reach(by, scope, key)
        async with self._db.transaction() as session:
            row = await session.get(CrewRoute, (scope, key))
            if row is None:
                raise NotFound(f"no {scope} route {key!r}")
            await session.delete(row)
            await audit.record(session, by.name, "crew_route.deleted", _subject(scope, key),
                               {"channel_id": row.channel_id}, at=self._clock())  # fmt: skip

    async def import_csv(self, text: str, by: Operator) -> ImportReport:
        """Every route of the file, or none of them; routes not in the file stay."""
        parsed = parse_routes_csv(text)
        if parsed.errors:
            return ImportReport(errors=parsed.errors)
        created: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        async with self._db.transaction() as session:
            for parsed_row in parsed.rows:
                spec = parsed_row.model
                row = await session.get(CrewRoute, (spec.scope, spec.key))
                if row is not None and row.channel_id == spec.channel_id:
                    unchanged.append(spec.name)
                    continue
                (created if row is None else updated).append(spec.name)
                await self._write(session, spec, by)
        return ImportReport(tuple(created), tuple(updated), tuple(unchanged))

    async def _write(
        self, session: AsyncSession, spec: RouteSpec, by: Operator
    ) -> tuple[CrewRoute, bool]:
        _require_reach(by, spec.scope, spec.key)
        now = self._clock()
        row = await session.get(CrewRoute, (spec.scope, spec.key))
        before = None if row is None else row.channel_id
        if row is None:
            row = CrewRoute(scope=spec.scope, key=spec.key, channel_id=spec.channel_id,
                            updated_at=now)  # fmt: skip
            session.add(row)
        elif row.channel_id != spec.channel_id:
            row.channel_id, row.updated_at = spec.channel_id, now
        else:
            return row, False
        action = "crew_route.created" if before is None else "crew_route.updated"
        detail = {"channel_id": spec.channel_id, "before": before}
        await audit.record(session, by.name, action, _subject(spec.scope, spec.key), detail, at=now)
        await session.flush()
        return row, before is None


def _reaches(by: Operator, scope: str, key: str) -> bool:
    return by.everywhere or (scope == "municipality" and by.reaches(key))


def _require_reach(by: Operator, scope: str, key: str) -> None:
    """A municipality's operator sets its own municipality's route only; a counterpart
    group's and HQ's are everyone's."""
    if scope == "municipality":
        by.require_reach(key, f"the {key} crew route")
    else:
        by.require_everywhere(f"the {scope} crew route")


def _subject(scope: str, key: str) -> str:
    return f"crew_route:{scope}:{key}" if key else f"crew_route:{scope}"
