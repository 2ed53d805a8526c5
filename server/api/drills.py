"""Operator routes for drills: start one for some municipalities, end it, read its report.

`chargenet drill` calls these around the simulator and gateway it runs for the drill.
A municipality's operator may drill its own municipality; HQ any.
"""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter

from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented
from server.drills.report import ack_s, resolve_s
from server.drills.service import DrillSpec, DrillView
from server.errors import Conflict, NotFound

router = APIRouter(
    prefix="/drills", tags=["drills"], dependencies=[ADMIN],
    responses=documented(401, 403, 422, 503),
)  # fmt: skip


def _out(view: DrillView) -> schemas.DrillOut:
    return schemas.DrillOut.model_validate(view)


async def _reachable(svc: Svc, actor: Actor, drill_id: int) -> DrillView:
    view = await svc.drills.get(drill_id)
    for municipality in view.municipalities:
        actor.require_reach(municipality, f"drill {drill_id}")
    return view


@router.post("", response_model=schemas.DrillOut, status_code=201,
             responses=documented(400, 409, 415))  # fmt: skip
async def start_drill(body: schemas.DrillStart, actor: Actor, svc: Svc) -> schemas.DrillOut:
    """Twins of the municipalities' stations, with the scenario's batteries on them."""
    for municipality in body.municipalities:
        actor.require_reach(municipality, f"a drill in {municipality}")
    spec = DrillSpec(body.name, body.scenario, body.municipalities, body.units)
    view = await svc.drills.start(spec, actor.name)
    svc.booking.invalidate_stations()
    svc.hub.publish({"type": "registry", "stations": []})  # dashboards re-read: twins came
    return _out(view)


@router.get("", response_model=schemas.DrillList)
async def list_drills(actor: Actor, svc: Svc) -> schemas.DrillList:
    """Newest first; a municipality's operator sees those of its own municipality."""
    views = await svc.drills.list()
    return schemas.DrillList(drills=[_out(v) for v in views
                                     if all(map(actor.reaches, v.municipalities))])  # fmt: skip


@router.get("/{drill_id}", response_model=schemas.DrillOut, responses=documented(404))
async def get_drill(drill_id: schemas.RowId, actor: Actor, svc: Svc) -> schemas.DrillOut:
    return _out(await _reachable(svc, actor, drill_id))


@router.post("/{drill_id}/end", response_model=schemas.DrillOut, responses=documented(404, 409))
async def end_drill(drill_id: schemas.RowId, actor: Actor, svc: Svc) -> schemas.DrillOut:
    """Its twins disappear; what it left open is closed; its active bookings cancelled."""
    await _reachable(svc, actor, drill_id)
    view, bookings = await svc.drills.end(drill_id, actor.name)
    for booking_id in bookings:
        try:
            await svc.booking.cancel(booking_id)
        except (Conflict, NotFound):  # checked in or cancelled meanwhile: nothing to undo
            continue
    svc.booking.invalidate_stations()
    svc.hub.publish({"type": "registry", "stations": []})  # and went
    return _out(view)


@router.get("/{drill_id}/report", response_model=schemas.DrillReportOut,
            responses=documented(404))  # fmt: skip
async def drill_report(drill_id: schemas.RowId, actor: Actor, svc: Svc) -> schemas.DrillReportOut:
    """Alerts sent, times to acknowledge and resolve, who acted; the drill's bookings."""
    await _reachable(svc, actor, drill_id)
    view, figures = await svc.drills.report(drill_id)
    fields = {f.name: getattr(figures, f.name) for f in dataclasses.fields(figures)}
    rows = [{**dataclasses.asdict(r), "ack_s": ack_s(r), "resolve_s": resolve_s(r)}
            for r in figures.rows]  # fmt: skip
    return schemas.DrillReportOut.model_validate({**fields, "drill": _out(view), "rows": rows})
