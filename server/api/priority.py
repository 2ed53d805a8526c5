"""The priority API (`/api/v1/priority`, admin): residents who depend on power.

- `GET /priority/requests`: counts per municipality, and the registrations that asked
  (a self-reported need) or were granted, by reference (never a LINE user id);
- `PUT /priority/residents/{reference}` grants (`source`: `desk`, seen by staff, or
  `municipal_list`), `DELETE` revokes; `POST /priority/residents` `text/csv`
  (`municipality,reference`) grants a municipality's list, all rows or none;
- `GET /priority/rules`, `PUT /priority/rules/{municipality}`: the share of each window a
  station holds back for priority residents and the lead time before the window when the
  held places are released (`server.booking.holdback`).

A municipality's operator acts on its own only (403 otherwise); every change is audited.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from server.api import schemas
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented
from server.booking.holdback import HoldRule
from server.priority.grants import PriorityDesk, PriorityRequest, Reference, Source
from server.priority.rules import PriorityRules, RuleView
from server.registry.districts import Municipality

CSV_EXAMPLE = "municipality,reference\n大洲市,K7Q2M9XA\n大洲市,R4T8HN3C\n"
MAX_LEAD_MIN = 24 * 60


class RequestOut(BaseModel):
    reference: str
    municipality: str
    need_requested: str | None
    """What the resident said (`medical_device`, `care`): a request, not a grant."""
    granted: bool
    source: str | None
    granted_at: datetime | None

    @classmethod
    def of(cls, found: PriorityRequest) -> RequestOut:
        return cls(reference=found.reference, municipality=found.municipality,
                   need_requested=found.need_requested, granted=found.granted,
                   source=found.source, granted_at=found.granted_at)  # fmt: skip


class CountsOut(BaseModel):
    municipality: str
    requested: int
    granted: int
    waiting: int
    """Requested and not yet granted."""


class RequestsOut(BaseModel):
    counts: list[CountsOut]
    requests: list[RequestOut]


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: Source = "desk"


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hold_share: float = Field(ge=0.0, le=1.0, allow_inf_nan=False)
    """Of each window's places (healthy ports), floored: 0.25 holds 1 of 4 ports, 0 of 3."""
    release_before_min: int = Field(ge=0, le=MAX_LEAD_MIN)
    """Held places are everyone's from this many minutes before the window starts."""


class RuleOut(RuleIn):
    municipality: str
    updated_by: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, found: RuleView) -> RuleOut:
        rule = found.rule
        return cls(
            municipality=found.municipality, hold_share=rule.share,
            release_before_min=round(rule.release_before / timedelta(minutes=1)),
            updated_by=found.updated_by, updated_at=found.updated_at,
        )  # fmt: skip


class RuleList(BaseModel):
    rules: list[RuleOut]


router = APIRouter(
    prefix="/priority", tags=["priority"], dependencies=[ADMIN],
    responses=documented(401, 403, 422, 503),
)  # fmt: skip


@router.get("/requests", response_model=RequestsOut)
async def list_requests(
    actor: Actor,
    svc: Svc,
    municipality: Annotated[Municipality | None, Query(description="as stations name it")] = None,
) -> RequestsOut:
    """Residents' priority requests and grants, within the operator's reach."""
    counts, found = await PriorityDesk(svc.db, svc.clock).requests(actor, municipality)
    return RequestsOut(
        counts=[CountsOut(municipality=c.municipality, requested=c.requested, granted=c.granted,
                          waiting=c.waiting) for c in counts],
        requests=[RequestOut.of(r) for r in found],
    )  # fmt: skip


@router.put(
    "/residents/{reference}", response_model=RequestOut, responses=documented(400, 404, 415)
)
async def grant(reference: Reference, actor: Actor, svc: Svc, body: GrantIn) -> RequestOut:
    """Grant priority to the resident of this registration (staff checked it)."""
    return RequestOut.of(await PriorityDesk(svc.db, svc.clock).grant(reference, body.source, actor))


@router.delete("/residents/{reference}", response_model=RequestOut, responses=documented(404))
async def revoke(reference: Reference, actor: Actor, svc: Svc) -> RequestOut:
    """Take priority back; their current booking stays where it is."""
    return RequestOut.of(await PriorityDesk(svc.db, svc.clock).revoke(reference, actor))


@router.post("/residents", response_model=schemas.ImportOut, responses=documented(400, 415))
async def import_list(
    actor: Actor,
    svc: Svc,
    body: Annotated[
        str, Body(media_type="text/csv", openapi_examples={"list": {"value": CSV_EXAMPLE}})
    ],
) -> schemas.ImportOut:
    """Grant every reference of a municipality's list (`municipality,reference`); a file with
    a bad row (unknown reference, another municipality's) grants nothing (422 names each)."""
    report = await PriorityDesk(svc.db, svc.clock).import_csv(body, actor)
    return schemas.import_out(report)


@router.get("/rules", response_model=RuleList)
async def list_rules(actor: Actor, svc: Svc) -> RuleList:
    """Every municipality's hold-back within reach (share 0: nothing held, the default)."""
    found = await PriorityRules(svc.db, svc.clock).list(actor)
    return RuleList(rules=[RuleOut.of(r) for r in found])


@router.put("/rules/{municipality}", response_model=RuleOut, responses=documented(400, 404, 415))
async def put_rule(municipality: Municipality, body: RuleIn, actor: Actor, svc: Svc) -> RuleOut:
    """Set the municipality's hold-back; bookings see it at once in this process, in the
    others within seconds. 404 names an unknown municipality (one without stations)."""
    rule = HoldRule(body.hold_share, timedelta(minutes=body.release_before_min))
    found = await PriorityRules(svc.db, svc.clock).put(municipality, rule, actor)
    svc.booking.invalidate_rules()
    return RuleOut.of(found)
