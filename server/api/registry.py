"""Operator registry routes: stations, battery mapping, CSV import (bearer token).

An operator changes what it reaches only (`server.registry.service` checks each row).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented
from server.errors import Invalid
from server.registry.models import (
    BatteryInfo,
    BatteryMapping,
    StationInfo,
    StationPatch,
    StationSpec,
)

router = APIRouter(
    tags=["registry"], dependencies=[ADMIN], responses=documented(401, 403, 422, 503)
)

CSV_EXAMPLE = "id,name_ja,name_en,latitude,longitude\nozu-01,大洲小学校,Ozu Elementary,33.5,132.5\n"
IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE},
            "application/geo+json": {"schema": {"type": "object"}},
        },
    }
}
"""The body is read raw (a published CSV may be Shift_JIS), so OpenAPI is told by hand."""


class StationRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    station_id: schemas.Id


@router.post(
    "/stations", response_model=StationInfo, status_code=201, responses=documented(400, 409, 415)
)
async def create_station(spec: StationSpec, actor: Actor, svc: Svc) -> StationInfo:
    station: StationInfo = await svc.registry.create_station(spec, actor)
    return station


@router.put(
    "/stations/{station_id}", response_model=StationInfo, responses=documented(400, 404, 415)
)
async def update_station(
    actor: Actor,
    svc: Svc,
    station_id: schemas.Id,
    patch: StationPatch,
) -> StationInfo:
    """Change the fields given; the id never changes."""
    station: StationInfo = await svc.registry.update_station(station_id, patch, actor)
    svc.hub.publish({"type": "registry", "stations": [station_id]})
    return station


@router.post("/registry/import", response_model=schemas.ImportOut, openapi_extra=IMPORT_BODY)
async def import_file(
    request: Request,
    actor: Actor,
    svc: Svc,
    kind: Annotated[
        Literal["stations", "batteries", "gsi-csv", "gsi-geojson", "opendata-csv"], Query()
    ] = "stations",
) -> schemas.ImportOut:
    """All rows or none: a file with a bad row changes nothing (422 names each bad row).

    `stations` and `batteries` are our own CSV files (UTF-8); the others are shelter
    lists as municipalities publish them (`server.registry.shelter_formats`), UTF-8 or
    Shift_JIS, the GeoJSON one sent as `application/geo+json` or `application/json`.
    """
    body = await request.body()
    if kind == "stations" or kind == "batteries":
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Invalid(f"row 1: the file is not UTF-8 ({exc})", code="invalid_csv") from exc
        if kind == "stations":
            report = await svc.registry.import_stations_csv(text, actor)
        else:
            report = await svc.registry.import_batteries_csv(text, actor)
    else:
        report = await svc.registry.import_shelters(body, kind, actor)
    out = schemas.import_out(report)
    svc.hub.publish({"type": "registry", "stations": []})
    return out


@router.put(
    "/batteries/{gw_id}/{unit}", response_model=BatteryInfo,
    responses=documented(400, 404, 409, 415),
)  # fmt: skip
async def map_battery(
    actor: Actor,
    svc: Svc,
    gw_id: schemas.Id,
    unit: schemas.Id,
    ref: StationRef,
) -> BatteryInfo:
    """Place battery (gateway, `bus.unit_id`) at a station."""
    try:
        mapping = BatteryMapping(gw_id=gw_id, unit=unit, station_id=ref.station_id)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    battery: BatteryInfo = await svc.registry.map_battery(mapping, actor)
    svc.hub.publish({"type": "registry", "stations": [ref.station_id]})
    return battery
