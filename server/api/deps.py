"""Typed access to what the lifespan put on `app.state`, for route functions.

Routes take these as FastAPI dependencies, so a route names exactly the services it
uses and tests can build the app with real services on a throwaway database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from server.access.tokens import Operators
from server.announcements.service import Announcements
from server.booking.service import BookingService
from server.dashboard.sse import EventHub
from server.db.session import Database
from server.delivery.sender import OutboxSender
from server.drills.service import DrillService
from server.incidents.service import IncidentService
from server.ingest.fanout import FanOut
from server.registry.service import Registry
from server.settings import Settings

if TYPE_CHECKING:  # not at run time: the pager imports the crew routes, whose API uses Svc
    from server.api.identity import Identities
    from server.line.bot import LineBot
    from server.lineworks.pager import Pager

CommandSender = Callable[[str, str, str, int | None, str | None], Awaitable[str]]
"""(gw_id, unit, action, port, value) -> cmd_id: recorded, then published by the link."""


@dataclass(frozen=True)
class Services:
    """The app's composed parts, made once in the lifespan."""

    settings: Settings
    db: Database
    clock: Callable[[], datetime]
    hub: EventHub
    registry: Registry
    booking: BookingService
    incidents: IncidentService
    send_command: CommandSender
    fan_out: FanOut
    """Hands a ChangeSet to every listener (booking, incidents, the hub)."""
    pager: Pager
    """Pages LINE WORKS crews on incident transitions; its `wake_after_commit` wakes the sender."""
    line_bot: LineBot
    """Processes the LINE webhook's stored events (the resident conversation)."""
    outbox: OutboxSender
    """Sends the outbox to LINE and LINE WORKS (the platforms with credentials)."""
    wake_outbox: Callable[[], None]
    """Call after committing outbox rows (`server.delivery.outbox.enqueue`): sent at once."""
    identities: Identities
    """Who may book through the API (`server.api.identity`)."""
    operators: Operators
    """The operator accounts behind the operator API's tokens (`server.api.auth`)."""
    drills: DrillService
    announcements: Announcements
    """Operators' announcements to residents (`server.announcements`)."""


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


Svc = Annotated[Services, Depends(services)]
