"""Public station routes: live availability, ports, windows, and ranked options."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented
from server.api.live import station_detail, station_list, station_windows
from server.db.models import Station
from server.line.posters import poster_pdf

router = APIRouter(tags=["stations"], responses=documented(503))


@router.get("/stations", response_model=schemas.StationList)
async def list_stations(svc: Svc, drills: Annotated[bool, Query()] = False) -> schemas.StationList:
    """Every station with free ports now, its next free window and a colour level; with
    `drills`, also the twins of the drills running (the dashboard shows them marked)."""
    now = svc.clock()
    async with svc.db.transaction() as session:
        stations = await station_list(session, svc.settings, now, drills=drills)
    return schemas.StationList(stations=stations, at=now)


@router.get(
    "/stations/{station_id}", response_model=schemas.StationDetail, responses=documented(404, 422)
)
async def get_station(station_id: schemas.Id, svc: Svc) -> schemas.StationDetail:
    """One station with its batteries, ports (effective status) and open incidents."""
    async with svc.db.transaction() as session:
        return await station_detail(session, svc.settings, svc.clock(), station_id)


@router.get(
    "/stations/{station_id}/windows", response_model=schemas.WindowList,
    responses=documented(404, 422),
)  # fmt: skip
async def get_windows(
    svc: Svc,
    station_id: schemas.Id,
    from_: Annotated[schemas.Instant | None, Query(alias="from")] = None,
) -> schemas.WindowList:
    """Bookable windows from `from` (default now) within the booking horizon."""
    now = svc.clock()
    earliest = from_ or now
    async with svc.db.transaction() as session:
        return await station_windows(session, svc.settings, now, station_id, earliest)


@router.get(
    "/stations/{station_id}/poster.pdf", dependencies=[ADMIN], response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "an A4 PDF"},
               **documented(401, 403, 404, 409, 422)},
)  # fmt: skip
async def get_poster(station_id: schemas.Id, actor: Actor, svc: Svc) -> Response:
    """The station's A4 poster (ja/en) whose QR code opens the LINE official account's chat
    with `充電予約 {station}` typed in; 409 `line_official_account_id_unset` without it."""
    station = await svc.registry.get_station(station_id)
    actor.require_reach(station.municipality, f"station {station_id}")
    pdf = poster_pdf(station, svc.settings.line_official_account_id)
    disposition = f'inline; filename="poster-{station.id}.pdf"'
    return Response(pdf, media_type="application/pdf", headers={"Content-Disposition": disposition})


@router.post("/options", response_model=schemas.OptionList, responses=documented(400, 415, 422))
async def options(request: schemas.OptionsRequest, svc: Svc) -> schemas.OptionList:
    """Ranked options for a location: cost = 2 x walking minutes + waiting minutes.

    The location is used for this ranking only; it is neither stored nor logged.
    """
    earliest = request.earliest or svc.clock()
    found = await svc.booking.options(request.lat, request.lon, earliest, request.limit)
    ids = {o.station_id for o in found}
    async with svc.db.transaction() as session:
        rows = await session.execute(
            select(Station.id, Station.name_ja, Station.name_en).where(Station.id.in_(ids))
        )
        names = {sid: (ja, en) for sid, ja, en in rows}
    return schemas.OptionList(
        options=[
            schemas.OptionOut(
                station_id=o.station_id, name_ja=names[o.station_id][0],
                name_en=names[o.station_id][1], window_start=o.window_start,
                walk_min=round(o.walk_min, 1), wait_min=round(o.wait_min, 1),
                cost=round(o.cost, 1), places=o.free,
            )
            for o in found
            if o.station_id in names
        ]
    )  # fmt: skip
