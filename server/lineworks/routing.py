"""The crew routes' API (`/api/v1/crew-routes`, admin) and the pager's view of them.

The routes are registry data (`server.registry.crew_routes`): set one at a time (PUT,
DELETE) or from a CSV file (POST `text/csv`: `scope,key,channel_id`, all rows or none, each
bad row reported), every change audited. `load_routes` reads them as `alerts.Routes`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession

from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented
from server.lineworks.alerts import Routes
from server.registry.crew_routes import (
    ChannelId,
    CrewRoutes,
    Key,
    RouteOut,
    Scope,
    route_rows,
    route_spec,
)

CSV_EXAMPLE = (
    "scope,key,channel_id\nmunicipality,大洲市,crew-ozu\ngroup,南予,group-nanyo\nhq,,hq-ehime\n"
)


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    channel_id: ChannelId


class RouteList(BaseModel):
    routes: list[RouteOut]


async def load_routes(session: AsyncSession) -> Routes:
    """The routes as `alerts.channels_for` takes them, read in the caller's transaction."""
    by_scope: dict[str, dict[str, str]] = {"municipality": {}, "group": {}, "hq": {}}
    for row in await route_rows(session):
        by_scope.setdefault(row.scope, {})[row.key] = row.channel_id
    return Routes(by_scope["municipality"], by_scope["group"], by_scope["hq"].get(""))


router = APIRouter(
    prefix="/crew-routes", tags=["crew routes"], dependencies=[ADMIN],
    responses=documented(401, 403, 422, 503),
)  # fmt: skip

KeyQuery = Annotated[Key, Query(description="the municipality or counterpart group; none for hq")]


@router.get("", response_model=RouteList)
async def list_routes(actor: Actor, svc: Svc) -> RouteList:
    """Which LINE WORKS channel hears each municipality's, group's and HQ's alerts (a
    municipality's operator: its own)."""
    return RouteList(routes=await CrewRoutes(svc.db, svc.clock).list(actor))


@router.post("", response_model=schemas.ImportOut, responses=documented(400))
async def import_routes(
    actor: Actor,
    svc: Svc,
    body: Annotated[
        str, Body(media_type="text/csv", openapi_examples={"routes": {"value": CSV_EXAMPLE}})
    ],
) -> schemas.ImportOut:
    """Import routes from a CSV file (`scope,key,channel_id`), all rows or none: a file with
    a bad row changes nothing (422 names each bad row); routes not in the file stay."""
    report = await CrewRoutes(svc.db, svc.clock).import_csv(body, actor)
    return schemas.import_out(report)


@router.put("/{scope}", response_model=RouteOut, responses=documented(400, 415))
async def put_route(
    scope: Scope, body: ChannelIn, actor: Actor, svc: Svc, key: KeyQuery = ""
) -> RouteOut:
    """Set (create or replace) one route: `PUT /crew-routes/municipality?key=大洲市`."""
    spec = route_spec(scope, key, body.channel_id)
    route, _ = await CrewRoutes(svc.db, svc.clock).put(spec, actor)
    return route


@router.delete("/{scope}", status_code=204, responses=documented(404))
async def delete_route(scope: Scope, actor: Actor, svc: Svc, key: KeyQuery = "") -> None:
    await CrewRoutes(svc.db, svc.clock).delete(scope, key.strip(), actor)
