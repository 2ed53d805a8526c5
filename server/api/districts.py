"""The districts' API (`/api/v1/districts`, admin): a municipality's list of districts,
which residents register under on LINE (`server.registry.districts`).

PUT replaces a municipality's list (`?municipality=大洲市`, body `{"districts": [...]}`),
POST `text/csv` (`municipality,district`) replaces the lists of the municipalities it
names, all rows or none. A municipality's operator puts its own only (403 otherwise).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict

from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented
from server.registry.districts import DistrictName, Districts, Municipality

CSV_EXAMPLE = "municipality,district\n大洲市,大洲\n大洲市,肱南\n大洲市,菅田\n"

MunicipalityQuery = Annotated[Municipality, Query(description="as stations name it")]


class DistrictList(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    districts: list[DistrictName]


router = APIRouter(
    prefix="/districts", tags=["districts"], dependencies=[ADMIN],
    responses=documented(401, 403, 422, 503),
)  # fmt: skip


@router.get("", response_model=DistrictList)
async def list_districts(municipality: MunicipalityQuery, svc: Svc) -> DistrictList:
    """The municipality's districts, in the order residents are offered them."""
    return DistrictList(districts=await Districts(svc.db, svc.clock).names(municipality))


@router.put("", response_model=DistrictList, responses=documented(400, 415))
async def put_districts(
    municipality: MunicipalityQuery, body: DistrictList, actor: Actor, svc: Svc
) -> DistrictList:
    """Replace the municipality's districts with these, in this order."""
    names = await Districts(svc.db, svc.clock).put(municipality, body.districts, actor)
    return DistrictList(districts=names)


@router.post("", response_model=schemas.ImportOut, responses=documented(400))
async def import_districts(
    actor: Actor,
    svc: Svc,
    body: Annotated[
        str, Body(media_type="text/csv", openapi_examples={"districts": {"value": CSV_EXAMPLE}})
    ],
) -> schemas.ImportOut:
    """Import districts from a CSV file (`municipality,district`): each municipality named
    gets the file's list; a file with a bad row changes nothing (422 names each bad row)."""
    report = await Districts(svc.db, svc.clock).import_csv(body, actor)
    return schemas.import_out(report)
