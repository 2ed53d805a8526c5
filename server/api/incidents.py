"""Admin routes for crews and HQ: incidents (acknowledge, resolve), pending notifications
and the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from sqlalchemy import select

from server import audit
from server.access.operators import Operator
from server.access.places import incident_municipality
from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Services, Svc
from server.api.errors import documented
from server.api.ports import reset_alarms
from server.booking.views import battery_place, load_batteries
from server.db.models import Notification
from server.errors import Conflict
from server.incidents.kinds import LATCHING, IncidentView

router = APIRouter(
    tags=["incidents"], dependencies=[ADMIN], responses=documented(401, 403, 422, 503)
)

State = Literal["open", "acknowledged", "resolved"]


async def _out(svc: Services, incidents: Sequence[IncidentView]) -> list[schemas.IncidentOut]:
    """Incidents as answered, each naming its battery and port the way a crew finds them."""
    async with svc.db.transaction() as session:
        batteries = await load_batteries(session, {i.station_id or "" for i in incidents})
    names = {(b.gw_id, b.unit): b.name for b in batteries}
    return [
        schemas.IncidentOut.model_validate(i).model_copy(
            update={"place": battery_place(names, i.gw_id, i.unit, i.port)}
        )
        for i in incidents
    ]


async def _require_reach(svc: Services, actor: Operator, incident_id: int) -> None:
    """Forbidden unless the incident's station is the operator's (an incident's station
    never changes, so the check holds for the change that follows)."""
    async with svc.db.transaction() as session:
        where = await incident_municipality(session, incident_id)
    actor.require_reach(where, f"incident {incident_id}")


@router.get("/incidents", response_model=schemas.IncidentList)
async def list_incidents(
    actor: Actor,
    svc: Svc,
    state: Annotated[State | None, Query()] = None,
    station_id: Annotated[schemas.Id | None, Query()] = None,
) -> schemas.IncidentList:
    """Newest first; a municipality's operator sees those at its own stations."""
    found = await svc.incidents.list(state, station_id, municipality=actor.municipality)
    return schemas.IncidentList(incidents=await _out(svc, found))


@router.post(
    "/incidents/{incident_id}/acknowledge", response_model=schemas.IncidentOut,
    responses=documented(404, 409),
)  # fmt: skip
async def acknowledge(incident_id: schemas.RowId, actor: Actor, svc: Svc) -> schemas.IncidentOut:
    await _require_reach(svc, actor, incident_id)
    [incident] = await _out(svc, [await svc.incidents.acknowledge(incident_id, actor.name)])
    svc.hub.publish({"type": "incident", "stations": [incident.station_id or ""]})
    return incident


@router.post(
    "/incidents/{incident_id}/resolve", response_model=schemas.IncidentOut,
    responses=documented(400, 404, 409, 415),
)  # fmt: skip
async def resolve(
    incident_id: schemas.RowId, actor: Actor, svc: Svc, body: schemas.ResolveRequest | None = None
) -> schemas.IncidentOut:
    """Done; with `reset_alarms`, the battery's latched alarms are reset first."""
    await _require_reach(svc, actor, incident_id)
    if body is not None and body.reset_alarms:
        found = await svc.incidents.get(incident_id)
        if found.kind not in LATCHING or found.gw_id is None or found.unit is None:
            raise Conflict(f"incident {incident_id} ({found.kind}) latches no alarm to reset",
                           code="nothing_to_reset")  # fmt: skip
        await reset_alarms(svc, found.gw_id, found.unit, actor, incident_id)
    [incident] = await _out(svc, [await svc.incidents.resolve(incident_id, actor.name)])
    svc.hub.publish({"type": "incident", "stations": [incident.station_id or ""]})
    return incident


@router.get("/notifications", response_model=schemas.NotificationList)
async def notifications(
    actor: Actor,
    svc: Svc,
    pending: Annotated[bool, Query(description="only those not yet delivered")] = True,
    resident_id: Annotated[schemas.Id | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> schemas.NotificationList:
    """Who must be told what (moved or cancelled bookings ...), newest first."""
    actor.require_everywhere("residents' notifications")
    query = select(Notification).order_by(Notification.id.desc()).limit(limit)
    if pending:
        query = query.where(Notification.delivered_at.is_(None))
    if resident_id is not None:
        query = query.where(Notification.resident_id == resident_id)
    async with svc.db.transaction() as session:
        rows = (await session.scalars(query)).all()
        return schemas.NotificationList(
            notifications=[schemas.NotificationOut.model_validate(n) for n in rows]
        )


@router.get("/audit", response_model=schemas.AuditList)
async def audit_log(
    actor: Actor,
    svc: Svc,
    subject: Annotated[schemas.Id | None, Query(description="e.g. incident:42")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> schemas.AuditList:
    """Who did what, newest first: alerts sent, buttons pressed, escalations, operators' acts."""
    actor.require_everywhere("the audit log")
    async with svc.db.transaction() as session:
        found = await audit.entries(session, subject, limit)
    return schemas.AuditList(entries=[schemas.AuditEntryOut.model_validate(e) for e in found])
