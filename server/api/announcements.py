"""Operator routes for announcements (`/api/v1/announcements`): compose and preview, send,
and list with delivery counts (`server.announcements.service`).

POST creates a draft and answers its preview: the recipients per target and in all, by
language and in LINE batches, and the message each language's residents get; never a user
id. POST `/{id}/send` sends it once (409 `already_sent` after). A municipality's operator
announces to its own municipality; HQ to any; a viewer reads only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.announcements.audience import Targets
from server.announcements.messages import MAX_TEXT
from server.announcements.service import AnnouncementView, Deliveries, Draft, Preview
from server.api.auth import ADMIN, Actor
from server.api.deps import Svc
from server.api.errors import documented
from server.api.schemas import Id, RowId
from server.registry.districts import DistrictName, Municipality

MESSAGE_RE: Final = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
"""No control characters but line breaks and tabs: an announcement has lines."""
AnnouncementText = Annotated[
    str, StringConstraints(pattern=MESSAGE_RE, min_length=1, max_length=MAX_TEXT)
]
Stay = Literal["shelter", "home", "relatives", "car"]


class AnnouncementIn(BaseModel):
    """An announcement in Japanese with English, for a municipality's districts, situations
    (where residents stay) or stations (residents registered at that shelter or with an
    active booking there, each once)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    municipality: Municipality
    districts: list[DistrictName] = Field(default_factory=list, max_length=500)
    stays: list[Stay] = Field(default_factory=list, max_length=4)
    stations: list[Id] = Field(default_factory=list, max_length=500)
    text_ja: AnnouncementText
    text_en: AnnouncementText
    drill_id: RowId | None = None
    """A drill's announcement (訓練): only residents who opted in to drills get it."""


class DeliveriesOut(BaseModel):
    """Residents counted by the state of their batch (`sent`, `failed`, `pending`)."""

    recipients: int
    batches: int
    sent: int
    failed: int
    pending: int


class AnnouncementOut(BaseModel):
    id: int
    municipality: str
    districts: list[str]
    stays: list[str]
    stations: list[str]
    drill_id: int | None
    text_ja: str
    text_en: str
    created_by: str
    created_at: datetime
    sent_by: str | None
    sent_at: datetime | None
    deliveries: DeliveriesOut


class PerTarget(BaseModel):
    districts: dict[str, int]
    stays: dict[str, int]
    stations: dict[str, int]


class PreviewOut(BaseModel):
    announcement: AnnouncementOut
    recipients: int
    """Residents it would reach now, each once."""
    languages: dict[str, int]
    batches: int
    """LINE multicast requests (500 residents each at most, one language each)."""
    per_target: PerTarget
    unfollowed: int
    """Reached, but blocked the account: left out."""
    not_in_drill: int
    """Reached, but a drill's and not opted in to drills: left out."""
    messages: dict[str, dict[str, Any]]
    """Language -> the LINE message its residents get."""


class AnnouncementList(BaseModel):
    announcements: list[AnnouncementOut]


router = APIRouter(
    prefix="/announcements", tags=["announcements"], dependencies=[ADMIN],
    responses=documented(401, 403, 422, 503),
)  # fmt: skip


def _out(view: AnnouncementView, deliveries: Deliveries) -> AnnouncementOut:
    t = view.targets
    return AnnouncementOut(
        id=view.id, municipality=t.municipality, districts=list(t.districts),
        stays=list(t.stays), stations=list(t.stations), drill_id=t.drill_id,
        text_ja=view.text_ja, text_en=view.text_en, created_by=view.created_by,
        created_at=view.created_at, sent_by=view.sent_by, sent_at=view.sent_at,
        deliveries=DeliveriesOut.model_validate(deliveries, from_attributes=True),
    )  # fmt: skip


def _preview(found: Preview) -> PreviewOut:
    a = found.audience
    none = Deliveries(found.view.recipients or 0, 0, 0, 0, 0)
    return PreviewOut(
        announcement=_out(found.view, none), recipients=a.total,
        languages=a.languages, batches=a.batches,
        per_target=PerTarget(districts=dict(a.districts), stays=dict(a.stays),
                             stations=dict(a.stations)),
        unfollowed=a.unfollowed, not_in_drill=a.not_in_drill, messages=found.messages,
    )  # fmt: skip


@router.post("", response_model=PreviewOut, status_code=201, responses=documented(400, 415))
async def create_announcement(body: AnnouncementIn, actor: Actor, svc: Svc) -> PreviewOut:
    """A draft, and its preview: who it reaches (counts only) and what they read."""
    targets = Targets(body.municipality.strip(), tuple(body.districts), tuple(body.stays),
                      tuple(body.stations), body.drill_id)  # fmt: skip
    draft = Draft(targets, body.text_ja, body.text_en)
    return _preview(await svc.announcements.create(draft, actor))


@router.get("", response_model=AnnouncementList)
async def list_announcements(actor: Actor, svc: Svc) -> AnnouncementList:
    """Newest first, with delivery counts; a municipality's operator sees its own."""
    found = await svc.announcements.list(actor)
    return AnnouncementList(announcements=[_out(v, d) for v, d in found])


@router.get("/{announcement_id}/preview", response_model=PreviewOut, responses=documented(404))
async def preview_announcement(announcement_id: RowId, actor: Actor, svc: Svc) -> PreviewOut:
    """Who it reaches now (the registrations may have changed since it was drafted)."""
    return _preview(await svc.announcements.preview(announcement_id, actor))


@router.post("/{announcement_id}/send", response_model=AnnouncementOut,
             responses=documented(404, 409))  # fmt: skip
async def send_announcement(announcement_id: RowId, actor: Actor, svc: Svc) -> AnnouncementOut:
    """Send it, once, to whom it reaches now: LINE multicast batches through the outbox."""
    view, deliveries = await svc.announcements.send(announcement_id, actor)
    return _out(view, deliveries)
