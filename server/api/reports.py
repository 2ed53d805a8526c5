"""After-action reports for operators: a period's figures as CSV, PDF, PNG or kintone
records (docs/reports.md). A municipality's operator gets its own municipality's only."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Response

from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented
from server.errors import Invalid
from server.reports.documents import DOCUMENTS, Format, filename
from server.reports.figures import Period
from server.reports.read import read_report

MAX_PERIOD: Final = timedelta(days=92)
"""A quarter at most: one request reads every booking of the period into memory."""

router = APIRouter(tags=["reports"], dependencies=[ADMIN], responses=documented(401, 403, 422, 503))


@router.get(
    "/reports", response_class=Response,
    responses={200: {"content": {k.media_type.split(";")[0]: {} for k in DOCUMENTS.values()}}},
)  # fmt: skip
async def report(
    actor: Actor,
    svc: Svc,
    start: Annotated[schemas.Instant, Query()],
    end: Annotated[schemas.Instant, Query()],
    municipality: Annotated[str | None, Query(max_length=100)] = None,
    format: Annotated[Format, Query()] = "csv",
) -> Response:
    """The report of a municipality's stations (none given: the operator's own, or all for
    HQ) from `start` to `end`, as a download."""
    if end <= start or end - start > MAX_PERIOD:
        raise Invalid(f"end must follow start, within {MAX_PERIOD.days} days")
    scope = municipality if municipality is not None else actor.municipality
    actor.require_reach(scope, "the report of " + (scope or "every municipality"))
    found = await read_report(svc.db, Period(start, end), scope)
    kind = DOCUMENTS[format]
    # plotting takes a few hundred milliseconds of CPU: off the event loop
    body = await asyncio.to_thread(kind.render, found, ZoneInfo(svc.settings.timezone))
    return Response(body, media_type=kind.media_type, headers={
        "Content-Disposition": f'attachment; filename="{filename(found, format)}"',
        "Cache-Control": "no-store",
    })  # fmt: skip
