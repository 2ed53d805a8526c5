"""`create_app(settings)`: the FastAPI app, composed of small services in its lifespan.

Start: migrate, open the database, make the services (registry, booking, incidents), the
SSE hub, the change fan-out to [booking, LINE notices, incidents, hub], the MQTT link (when
an MQTT URL is set) and the periodic jobs (staleness every half report period; no-show
release, reminders and incident timers every 15 s, `app.state.timers`; the LINE notices
when woken and every few seconds), the outbox sender (a transport per platform with
credentials; everyone who writes outbox rows wakes it). Stop: let the sender's sends in
flight end, cancel every task, close streams, dispose the engine.
Everything lives on `app.state.services`; nothing is module-level.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, FastAPI
from fastapi_offline import FastAPIOffline

from server.access.tokens import Operators
from server.announcements.service import Announcements
from server.api import (
    announcements,
    bookings,
    districts,
    drills,
    health,
    incidents,
    metrics,
    opendata,
    operators,
    ports,
    priority,
    registry,
    reports,
    stations,
)
from server.api.body_limit import BodyLimit
from server.api.deps import Services
from server.api.errors import ErrorsAsJson, install_error_handlers, json_body
from server.api.identity import Identities
from server.api.jobs import cancel_all, every
from server.booking.service import BookingService
from server.booking.views import BookingView
from server.dashboard import routes as dashboard
from server.dashboard.relay import HubRelay
from server.dashboard.sse import EventHub
from server.db.migrate import upgrade
from server.db.session import Database
from server.delivery.sender import OutboxSender
from server.delivery.transport import Transport
from server.drills.service import DrillService
from server.incidents.service import IncidentService
from server.ingest.commands import resend_unanswered, send_command
from server.ingest.fanout import FanOut
from server.ingest.journal import undelivered
from server.ingest.link import MqttLink
from server.ingest.owner import ClientIdLock
from server.ingest.retention import forget_seen
from server.ingest.staleness import mark_stale
from server.line import webhook as line_webhook
from server.line.bot import BookingDesk, LineBot
from server.line.client import LineTransport
from server.line.notices import NoticeComposer
from server.line.reminders import remind
from server.lineworks import callbacks as lineworks_callbacks
from server.lineworks import routing as crew_routes
from server.lineworks.client import WorksTransport
from server.lineworks.pager import Pager
from server.registry.service import Registry
from server.settings import Settings

log = logging.getLogger(__name__)

TIMERS_PERIOD_S = 15.0
RETENTION_PERIOD_S = 3600.0
"""No-show release and incident escalation: minutes matter, seconds do not."""
API_PREFIX = "/api/v1"
LINK_DRAIN_S = 5.0
"""How long shutdown waits for the MQTT link to apply what it already received."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def transports(settings: Settings) -> list[Transport]:
    """One for each platform whose credentials are set; the other's rows wait in the outbox."""
    found: list[Transport] = []
    if settings.line_channel_access_token.get_secret_value():
        found.append(LineTransport(settings))
    if settings.lineworks_bot_id and settings.lineworks_client_id:
        found.append(WorksTransport(settings))
    return found


def create_app(settings: Settings, clock: Callable[[], datetime] = utc_now) -> FastAPI:
    """The app; /docs serves Swagger UI from the installed package (shelters may be offline)."""
    app = FastAPIOffline(
        title="chargenet",
        version="1",
        summary="Disaster-relief phone charging: stations, live availability, bookings.",
        lifespan=partial(lifespan, settings=settings, clock=clock),
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        static_url="/docs-static",
    )
    app.state.settings = settings
    app.state.opendata = opendata.Feed()
    install_error_handlers(app)
    api = APIRouter(prefix=API_PREFIX)
    for module in (stations, bookings, incidents, registry, districts, ports, crew_routes,
                   operators, reports, drills, announcements, priority):  # fmt: skip
        api.include_router(module.router)
    api.include_router(dashboard.events)
    app.include_router(api, dependencies=[Depends(json_body)])
    app.include_router(opendata.router)
    app.include_router(metrics.router)
    app.include_router(health.router)
    app.include_router(lineworks_callbacks.router)
    app.include_router(line_webhook.router)
    app.include_router(dashboard.page)
    app.router.routes.append(dashboard.static_mount())
    app.add_middleware(bookings.BookingLane, path=f"{API_PREFIX}/bookings")
    app.add_middleware(line_webhook.WebhookLane)
    app.add_middleware(BodyLimit)
    app.add_middleware(opendata.PublicCors)
    app.add_middleware(ErrorsAsJson)
    return app


@asynccontextmanager
async def lifespan(
    app: FastAPI, settings: Settings, clock: Callable[[], datetime]
) -> AsyncIterator[None]:
    await asyncio.to_thread(upgrade, settings.database_url)
    db = Database(settings.database_url)
    hub = EventHub()
    tasks: list[asyncio.Task[None]] = []
    link: MqttLink | None = None

    def wake() -> None:
        if link is not None:
            link.notify_commands()

    async def send(gw_id: str, unit: str, action: str, port: int | None, value: str | None) -> str:
        """A gateway command, stored durably, then the link is woken to publish it."""
        return await send_command(db, gw_id, unit, action, port, value, wake=wake)

    # Booking writes its display commands in its own transaction; `wake` publishes them.
    booking = BookingService(db, settings, clock, wake=wake)
    # Whoever writes outbox rows wakes the sender once their transaction committed.
    senders = transports(settings)
    outbox = OutboxSender(db, settings, clock, senders)
    pager = Pager(db, settings, wake=outbox.wake)
    incidents_ = IncidentService(db, settings, clock, hook=pager)
    # LINE residents told of what booking recorded
    notices = NoticeComposer(db, settings, booking, clock, outbox.wake)
    fan_out = FanOut(
        db, [booking.on_changes, notices.on_changes, incidents_.on_changes, hub.on_changes]
    )
    owner = settings.mqtt_client_id

    def announce(view: BookingView, what: str) -> None:
        hub.publish({"type": "booking", "what": what, "stations": [view.station_id],
                     "window_start": view.window_start.isoformat()})  # fmt: skip

    desk = BookingDesk(db, booking, clock, ZoneInfo(settings.timezone), announce)
    # A resident's LINE language comes from their profile when the bot meets them.
    line = next((t for t in senders if isinstance(t, LineTransport)), None)
    languages = line.language if line is not None else None
    line_bot = LineBot(db, settings, desk, clock, wake=outbox.wake, languages=languages)
    accounts = Operators(db, clock)
    app.state.services = Services(
        settings=settings, db=db, clock=clock, hub=hub, registry=Registry(db, clock),
        booking=booking, incidents=incidents_, send_command=send, fan_out=fan_out, pager=pager,
        line_bot=line_bot, outbox=outbox, wake_outbox=outbox.wake,
        identities=Identities(settings, accounts), operators=accounts,
        drills=DrillService(db, clock), announcements=Announcements(db, clock, outbox.wake),
    )  # fmt: skip
    app.state.metrics = metrics.Metrics()
    client_id = ClientIdLock(db, owner)
    try:
        await client_id.take()  # before taking over the change sets it journalled
        for changes in await undelivered(db, owner, clock(), own=True):  # before a crash
            await fan_out(changes)
        if settings.mqtt_url:
            link = MqttLink(settings, db, fan_out)
            tasks.append(asyncio.create_task(link.run(), name="mqtt-link"))
        app.state.link = link
        await line_bot.start()
        tasks.append(asyncio.create_task(notices.run(), name="line-notices"))
        if not db.is_sqlite:  # other processes may share the database: relay the hub
            relay = app.state.relay = HubRelay(db, hub)
            hub.relay = relay.send
            tasks.append(asyncio.create_task(relay.run(), name="dashboard-relay"))
        tasks.append(asyncio.create_task(outbox.run(), name="outbox"))
        if booking.batches is not None:  # the live policy ready before the first resident
            tasks.append(asyncio.create_task(booking.batches.prepare(), name="assignment"))

        async def stale() -> None:
            now = clock()
            if link is None or link.may_judge_silence(now):
                await fan_out(await mark_stale(db, now, settings.report_period_s, owner=owner))

        async def timers() -> None:
            await booking.release_no_shows(clock())
            await booking.relocate_due(clock())
            await remind(db, settings, clock())
            notices.wake()  # the reminders, moves and thanks just recorded
            await incidents_.tick(clock())
            await pager.tick(clock())
            for changes in await undelivered(db, owner, clock(), own=False):
                await fan_out(changes)
            resends = await resend_unanswered(
                db, clock(), settings.command_answer_s, settings.command_sends
            )
            if resends.resend:
                wake()

        tasks.append(
            asyncio.create_task(every("stale", settings.report_period_s / 2, stale), name="stale")
        )

        async def retention() -> None:
            await forget_seen(db, clock() - timedelta(hours=settings.seen_retention_h))

        tasks.append(asyncio.create_task(every("timers", TIMERS_PERIOD_S, timers), name="timers"))
        app.state.timers = timers  # one round at a time of the app's choosing (tests: their clock)
        tasks.append(
            asyncio.create_task(every("retention", RETENTION_PERIOD_S, retention), name="retention")
        )
        log.info("server ready (mqtt %s; sending to %s)", "on" if link else "off",
                 ", ".join(sorted(outbox.platforms)) or "no platform")  # fmt: skip
        yield
    finally:
        hub.close()
        if link is not None:
            await link.stop()  # it applies what it already received, then its task ends
            await asyncio.wait(tasks[:1], timeout=LINK_DRAIN_S)
        await line_bot.stop()  # before the outbox: it may still ask for a profile
        await outbox.stop()  # the sends in flight end and are recorded
        await cancel_all(tasks)
        await booking.close()
        await app.state.services.identities.aclose()
        await client_id.release()
        await db.dispose()
        log.info("server stopped")
