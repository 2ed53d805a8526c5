"""Admin port disable/enable: the operator's manual override of one USB port.

One transaction sets `Port.admin_disabled` and writes the audit entry; then the gateway is
told (`disable_port` / `enable_port`, so the battery itself stops or resumes), and the
change goes to the same listeners as an ingest change, so bookings on a disabled port move
and dashboards update exactly as they would for a fault.

A battery's alarms and port faults latch until its alarms are reset (AlmRst): a crew that
has fixed a port resets them (`reset_alarms`, here or when resolving the incident). The
server changes nothing itself: the battery's next state shows what the reset cleared.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from sqlalchemy import select

from protocol.payloads import CommandAction
from server import audit
from server.access.operators import Operator
from server.access.places import station_municipality
from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Services, Svc
from server.api.errors import documented
from server.db.models import Gateway, Port, Unit
from server.errors import NotFound
from server.ingest import journal
from server.ingest.changeset import ChangeSet, PortChange
from server.ingest.live import effective_status, gateway_online, is_stale, stale_cutoff

router = APIRouter(
    tags=["ports"], dependencies=[ADMIN], responses=documented(401, 403, 404, 422, 503)
)


@router.post("/ports/{gw_id}/{unit}/{port}/disable", response_model=schemas.PortAdminOut)
async def disable_port(
    gw_id: schemas.Id, unit: schemas.Id, port: schemas.PortNumber,
    actor: Actor, svc: Svc,
) -> schemas.PortAdminOut:  # fmt: skip
    """Take a port out of service: no bookings on it; those it had are moved."""
    return await _set_disabled(svc, gw_id, unit, port, True, actor)


@router.post("/ports/{gw_id}/{unit}/{port}/enable", response_model=schemas.PortAdminOut)
async def enable_port(
    gw_id: schemas.Id, unit: schemas.Id, port: schemas.PortNumber,
    actor: Actor, svc: Svc,
) -> schemas.PortAdminOut:  # fmt: skip
    """Put a port back in service."""
    return await _set_disabled(svc, gw_id, unit, port, False, actor)


@router.post("/batteries/{gw_id}/{unit}/reset-alarms", response_model=schemas.AlarmResetOut)
async def reset_battery_alarms(
    gw_id: schemas.Id, unit: schemas.Id,
    actor: Actor, svc: Svc,
) -> schemas.AlarmResetOut:  # fmt: skip
    """Clear the battery's latched alarms and port faults whose cause is gone."""
    return await reset_alarms(svc, gw_id, unit, actor)


async def reset_alarms(
    svc: Services, gw_id: str, unit: str, actor: Operator, incident_id: int | None = None
) -> schemas.AlarmResetOut:
    """Store the gateway's `reset_alarms` command, then its audit entry naming it."""
    async with svc.db.transaction() as session:
        found = (
            await session.execute(
                select(Unit.station_id).where(Unit.gw_id == gw_id, Unit.unit == unit)
            )
        ).first()
        if found is None:
            raise NotFound(f"no battery {gw_id}/{unit}")
        where = await station_municipality(session, found.station_id)
        actor.require_reach(where, f"battery {gw_id}/{unit}")
    station_id = found.station_id
    cmd_id = await svc.send_command(gw_id, unit, CommandAction.RESET_ALARMS, None, None)
    async with svc.db.transaction() as session:
        await audit.record(
            session, actor.name, "battery.alarms_reset", f"battery:{gw_id}/{unit}",
            {"station_id": station_id, "cmd_id": cmd_id, "incident_id": incident_id},
            at=svc.clock(),
        )  # fmt: skip
    return schemas.AlarmResetOut(gw_id=gw_id, unit=unit, cmd_id=cmd_id)


async def _set_disabled(
    svc: Services, gw_id: str, unit: str, port: int, disabled: bool, actor: Operator
) -> schemas.PortAdminOut:
    now = svc.clock()
    async with svc.db.transaction() as session:
        found = (
            await session.execute(
                select(Port, Unit, Gateway)
                .join(Unit, Unit.id == Port.unit_pk)
                .outerjoin(Gateway, Gateway.gw_id == Unit.gw_id)
                .where(Unit.gw_id == gw_id, Unit.unit == unit, Port.port == port)
            )
        ).first()
        if found is None:
            raise NotFound(f"no port {port} on battery {gw_id}/{unit}")
        row, unit_row, gateway = found
        where = await station_municipality(session, unit_row.station_id)
        actor.require_reach(where, f"battery {gw_id}/{unit}")
        before = _effective(row, unit_row, gateway, now, svc.settings.report_period_s)
        changed = row.admin_disabled != disabled
        row.admin_disabled = disabled
        after = _effective(row, unit_row, gateway, now, svc.settings.report_period_s)
        if changed:
            await audit.record(
                session, actor.name, "port.disabled" if disabled else "port.enabled",
                f"port:{gw_id}/{unit}/{port}", {"station_id": unit_row.station_id}, at=now,
            )  # fmt: skip
        change = PortChange(
            unit_pk=unit_row.id, station_id=unit_row.station_id, gw_id=gw_id, unit=unit,
            port=port, before_status=before, after_status=after, before_occupied=row.occupied,
            after_occupied=row.occupied, error=row.error, at=now,
        )  # fmt: skip
        changes = ChangeSet()
        if changed:
            stations = frozenset({change.station_id} if change.station_id else ())
            changes = await journal.record(
                session, ChangeSet(ports=(change,), station_ids=stations, decided=True),
                svc.settings.mqtt_client_id, now,
            )  # fmt: skip
    action = "disable_port" if disabled else "enable_port"
    cmd_id = await svc.send_command(gw_id, unit, action, port, None)
    await svc.fan_out(changes)
    return schemas.PortAdminOut(
        gw_id=gw_id, unit=unit, port=port, admin_disabled=disabled, cmd_id=cmd_id
    )


def _effective(
    port: Port, unit: Unit, gateway: Gateway | None, now: datetime, report_period_s: float
) -> str:
    stale = is_stale(unit.stale, unit.received_at, stale_cutoff(now, report_period_s))
    gw_up = gateway is not None and gateway_online(gateway.state, gateway.silent)
    return effective_status(port.status, unit.online, gw_up, stale, port.admin_disabled)
