"""The operator's alarm reset: a `reset_alarms` command stored for the gateway, and audited."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from server import audit
from server.db.models import CommandRow, Incident
from tests.server.api.conftest import ADMIN

pytestmark = pytest.mark.anyio
GW, UNIT = "demo-gw", "rs485-1.1"


async def commands(app: FastAPI) -> list[tuple[str, str, str, int | None]]:
    async with app.state.services.db.transaction() as session:
        rows = await session.scalars(select(CommandRow).order_by(CommandRow.created_at))
        return [(r.gw_id, r.unit, r.action, r.port) for r in rows]


async def resets(app: FastAPI, unit: str = UNIT) -> list[audit.AuditView]:
    async with app.state.services.db.transaction() as session:
        found = await audit.entries(session, subject=f"battery:{GW}/{unit}")
    return [entry for entry in found if entry.action == "battery.alarms_reset"]


async def incident(app: FastAPI, kind: str, unit: str | None = UNIT) -> int:
    now = datetime.now(UTC)
    row = Incident(kind=kind, dedupe_key=f"{kind}:{unit}", severity="warning", state="open",
                   station_id="ozu-01", gw_id=GW, unit=unit, port=2 if unit else None,
                   detail="", occurrences=1, opened_at=now, last_seen_at=now)  # fmt: skip
    async with app.state.services.db.transaction() as session:
        session.add(row)
    return row.id


async def test_a_battery_reset_stores_the_command_and_audits_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    reply = await client.post(f"/api/v1/batteries/{GW}/{UNIT}/reset-alarms",
                              headers={**ADMIN, "X-Actor": "crew-7"})  # fmt: skip
    assert reply.status_code == 200, reply.text
    assert await commands(app) == [(GW, UNIT, "reset_alarms", None)]
    [entry] = await resets(app)
    assert entry.actor == "crew-7"
    assert entry.detail["cmd_id"] == reply.json()["cmd_id"]
    assert entry.detail["station_id"] == "ozu-01"


async def test_an_unknown_battery_is_404_and_sends_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    reply = await client.post(f"/api/v1/batteries/{GW}/rs485-1.9/reset-alarms", headers=ADMIN)
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
    assert await commands(app) == []


async def test_resolving_a_port_fault_may_reset_its_battery(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    fault = await incident(app, "port_fault")
    detail = (await client.get("/api/v1/stations/ozu-01")).json()
    assert [i["alarm_reset"] for i in detail["incidents"] if i["id"] == fault] == [True]
    reply = await client.post(f"/api/v1/incidents/{fault}/resolve", headers=ADMIN,
                              json={"reset_alarms": True})  # fmt: skip
    assert reply.status_code == 200 and reply.json()["state"] == "resolved", reply.text
    assert await commands(app) == [(GW, UNIT, "reset_alarms", None)]
    [entry] = await resets(app)
    assert entry.detail["incident_id"] == fault


async def test_resolving_without_asking_sends_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    fault = await incident(app, "port_fault")
    reply = await client.post(f"/api/v1/incidents/{fault}/resolve", headers=ADMIN)
    assert reply.status_code == 200 and reply.json()["state"] == "resolved"
    assert await commands(app) == []


async def test_an_incident_without_latched_alarms_refuses_a_reset(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    offline = await incident(app, "gateway_offline", unit=None)
    reply = await client.post(f"/api/v1/incidents/{offline}/resolve", headers=ADMIN,
                              json={"reset_alarms": True})  # fmt: skip
    assert reply.status_code == 409 and reply.json()["error"]["code"] == "nothing_to_reset"
    listed = (await client.get("/api/v1/incidents", headers=ADMIN)).json()["incidents"]
    assert [i["state"] for i in listed if i["id"] == offline] == ["open"]
    assert await commands(app) == []
