"""`GET /livez` and `GET /readyz`: what a supervisor or a load balancer asks.

Liveness is the event loop answering at all (restart the process when it does not).
Readiness is whether this process can do its work now: the database answers a query within
a deadline, and, when it ingests MQTT, its broker connection is up. A load balancer takes
a process that is not ready out of rotation rather than restarting it: a database outage
is not the process's fault, and it recovers by itself (`server.db.session`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from server.db.session import is_outage
from server.ingest.link import MqttLink

router = APIRouter(tags=["health"])

DATABASE_CHECK_S: Final = 2.0


@router.get("/livez")
async def livez() -> dict[str, str]:
    """200 while the process's event loop answers."""
    return {"status": "alive"}


@router.get("/readyz", responses={503: {"description": "a check failed; `checks` says which"}})
async def readyz(request: Request) -> JSONResponse:
    """200 when the database answers and the MQTT ingest (if configured) is connected."""
    checks: dict[str, Any] = {"database": await _database(request)}
    link: MqttLink | None = getattr(request.app.state, "link", None)
    if request.app.state.settings.mqtt_url:
        checks["mqtt"] = "up" if link is not None and link.connected.is_set() else "down"
    ready = all(state == "up" for state in checks.values())
    body = {"status": "ready" if ready else "not_ready", "checks": checks}
    return JSONResponse(body, 200 if ready else 503)


async def _database(request: Request) -> str:
    try:
        async with asyncio.timeout(DATABASE_CHECK_S):
            async with request.app.state.services.db.transaction() as session:
                await session.execute(text("SELECT 1"))
    except Exception as exc:
        if isinstance(exc, TimeoutError) or is_outage(exc):
            return "down"
        raise
    return "up"
