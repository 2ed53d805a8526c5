"""POST /lineworks/callback: crews' button presses, verified, handled and answered at once.

LINE WORKS signs each callback (`X-WORKS-Signature`: base64 HMAC-SHA256 of the raw body
with the bot secret, beside `X-WORKS-BotId`) and never sends it again, so a press is done
inside the request: the incident acknowledged or resolved, the press audited, and the
presser answered (an outbox row to them), all in one transaction, before the 200. A bad
signature or bot id is a 401 (an empty secret refuses everything); anything we cannot read
is a 200 with, where there is someone to tell, a short reply, never a 500.

A button in a `button_template` is a message action: its press arrives as a message event
with `content.postback`; the postback-event shape (`data`) is read the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.api.deps import Services, Svc
from server.api.errors import TOO_LARGE, error_body
from server.db.models import Incident
from server.delivery.outbox import Platform, enqueue, user_target
from server.errors import ServerError
from server.incidents.kinds import State
from server.incidents.service import IncidentService, subject_of
from server.lineworks import alerts
from server.lineworks.alerts import Outcome, Result
from server.lineworks.buttons import Button, Press, decode
from server.lineworks.pager import AlertContext
from server.settings import Settings

log = logging.getLogger(__name__)

CALLBACK_PATH: Final = "/lineworks/callback"
MAX_BODY: Final = 64_000
"""A callback is one event of well under 2 KB; anything far larger is refused unread (413)."""


class Source(BaseModel):
    model_config = ConfigDict(extra="ignore")
    user_id: str = Field(alias="userId", min_length=1, max_length=200)
    channel_id: str | None = Field(default=None, alias="channelId", max_length=200)
    """None in a 1:1 chat with the bot."""


class Content(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None
    postback: str | None = None


class Callback(BaseModel):
    """The fields of a callback event we read (message, postback; others are ignored)."""

    model_config = ConfigDict(extra="ignore")
    type: str
    source: Source
    content: Content | None = None
    data: str | None = None

    @property
    def postback(self) -> str | None:
        if self.type == "postback":
            return self.data
        if self.type == "message" and self.content is not None:
            return self.content.postback
        return None


@dataclass(frozen=True, slots=True)
class PressContext:
    """What a button handler works with: the request's transaction, as the presser."""

    session: AsyncSession
    incidents: IncidentService
    actor: str
    now: datetime


Handler = Callable[[PressContext, Sequence[int]], Awaitable[list[Outcome]]]
"""Does what the button says to these incidents; what it did, incident by incident."""


async def on_ack(ctx: PressContext, incident_ids: Sequence[int]) -> list[Outcome]:
    return await _act(ctx, incident_ids, {State.OPEN}, ctx.incidents.acknowledge_in,
                      Result.ACKNOWLEDGED)  # fmt: skip


async def on_resolve(ctx: PressContext, incident_ids: Sequence[int]) -> list[Outcome]:
    return await _act(ctx, incident_ids, {State.OPEN, State.ACKNOWLEDGED},
                      ctx.incidents.resolve_in, Result.RESOLVED)  # fmt: skip


BUTTONS: Final[dict[Button, Handler]] = {Button.ACK: on_ack, Button.RESOLVE: on_resolve}


def verified(settings: Settings, bot_id: str | None, signature: str | None, body: bytes) -> bool:
    """The callback is from our bot: its id matches and the body is signed with its secret
    (compared in constant time; an unset secret or bot id verifies nothing)."""
    secret = settings.lineworks_bot_secret.get_secret_value().encode()
    expected_bot = settings.lineworks_bot_id.encode()
    if not secret or not expected_bot or bot_id is None or signature is None:
        return False
    same_bot = hmac.compare_digest(bot_id.encode(), expected_bot)
    digest = base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())
    return hmac.compare_digest(signature.encode(), digest) and same_bot


router = APIRouter()


@router.post(CALLBACK_PATH, include_in_schema=False)
async def callback(request: Request, svc: Svc) -> Response:
    """Not in the OpenAPI: LINE WORKS calls it, signed, and nobody else may."""
    body = b""
    async for chunk in request.stream():  # read no further than a callback can be long
        body += chunk
        if len(body) > MAX_BODY:
            return JSONResponse(TOO_LARGE, 413)
    headers = request.headers
    if not verified(svc.settings, headers.get("x-works-botid"), headers.get("x-works-signature"),
                    body):  # fmt: skip
        return JSONResponse(error_body("unauthorized", "bad LINE WORKS signature or bot id"), 401)
    try:
        event = Callback.model_validate_json(body)
    except ValidationError:
        log.warning("LINE WORKS callback not understood (%d bytes), ignored", len(body))
        return Response(status_code=200)
    data = event.postback
    if data is None:
        if event.type == "message" and event.source.channel_id is None:  # a 1:1 chat
            await _reply(svc, event.source.user_id, alerts.typed_message_reply(), "hint")
        return Response(status_code=200)
    await handle_press(svc, event.source, data)
    return Response(status_code=200)


async def handle_press(svc: Services, source: Source, data: str) -> None:
    """Do what the button says, audit it and answer the presser, in one transaction."""
    press = decode(data)
    actor = f"lineworks:{source.user_id}"[:100]
    tz = ZoneInfo(svc.settings.timezone)
    async with svc.db.transaction() as session:
        now = svc.clock()
        if press is None:
            await audit.record(session, actor, "incident.button_pressed", "lineworks:callback",
                               {"data": data[:300], "result": "unknown_button",
                                "channel_id": source.channel_id}, at=now)  # fmt: skip
            reply = alerts.unknown_button_reply()
        else:
            outcomes = await _run(PressContext(session, svc.incidents, actor, now), press)
            for outcome in outcomes:
                detail = {"button": press.button.value, "result": outcome.result.value,
                          "incidents": list(press.incident_ids),
                          "channel_id": source.channel_id}  # fmt: skip
                await audit.record(session, actor, "incident.button_pressed",
                                   subject_of(outcome.incident_id), detail, at=now)  # fmt: skip
            reply = alerts.press_reply(outcomes, tz)
        await enqueue(session, Platform.LINEWORKS, user_target(source.user_id), [reply], now=now,
                      source=f"lineworks_press:{data[:150]}")  # fmt: skip
    svc.wake_outbox()


async def _run(ctx: PressContext, press: Press) -> list[Outcome]:
    try:
        return await BUTTONS[press.button](ctx, press.incident_ids)
    except ServerError as exc:  # a race with another process: the presser may try again
        log.warning("LINE WORKS press %s failed: %s", press, exc.message)
        return [Outcome(i, Result.UNKNOWN) for i in press.incident_ids]


async def _act(
    ctx: PressContext,
    incident_ids: Sequence[int],
    acts_on: Collection[str],
    act: Callable[[AsyncSession, Sequence[int], str], Awaitable[Any]],
    done: Result,
) -> list[Outcome]:
    """Apply `act` to those of the incidents in a state it `acts_on` (rows locked first, so
    the states read are the ones changed); the others are told as they stand."""
    rows = {i: await ctx.session.get(Incident, i, with_for_update=True) for i in incident_ids}
    before = {i: row.state for i, row in rows.items() if row is not None}
    await act(ctx.session, [i for i, state in before.items() if state in acts_on], ctx.actor)
    context = await AlertContext.load(ctx.session, [r for r in rows.values() if r is not None])
    outcomes = []
    for incident_id, row in rows.items():
        if row is None:
            outcomes.append(Outcome(incident_id, Result.UNKNOWN))
            continue
        alert, site = context.alert(row), context.site(row)
        if before[incident_id] in acts_on:
            outcomes.append(Outcome(incident_id, done, alert, site))
        elif row.state == State.RESOLVED:
            outcomes.append(Outcome(incident_id, Result.ALREADY_RESOLVED, alert, site,
                                    row.resolved_by, row.resolved_at))  # fmt: skip
        else:
            outcomes.append(Outcome(incident_id, Result.ALREADY_ACKNOWLEDGED, alert, site,
                                    row.acknowledged_by, row.acknowledged_at))  # fmt: skip
    return outcomes


async def _reply(svc: Services, user_id: str, content: dict[str, Any], why: str) -> None:
    async with svc.db.transaction() as session:
        await enqueue(session, Platform.LINEWORKS, user_target(user_id), [content],
                      now=svc.clock(), source=f"lineworks_callback:{why}")  # fmt: skip
    svc.wake_outbox()
