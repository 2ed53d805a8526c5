"""The crews' pager: turns incident transitions into LINE WORKS messages in the outbox.

`IncidentService` hands it each batch of transitions in their own transaction, so a page
exists iff its incident does (`server.delivery` sends it). What it does with them:
- opened: paged at once to the station's channels (`alerts.channels_for`), `paged_at` set,
  unless the kind has a page delay (`settings.page_delay_s`): then `tick` pages it once it
  has lasted that long with its condition still active, and never if it cleared first
  (a broker restart's `gateway_offline`s);
- escalated (open too long unacknowledged): HQ is told, if the incident was paged;
- resolved by itself: a recovery message to the channels it was paged to;
- acknowledged or resolved by a person: a short notice to those channels;
- recurred (a flapping port) or updated: nothing. It is one incident, already paged and
  still open, and escalation runs from its first opening; a message per flap would spend
  the 240 requests a minute on noise. Its count shows in every later message.
Incidents of one station in one batch are one message per channel. Pages stay within the
platform's rate (`settings.lineworks_requests_per_min`): while the outbox holds a minute's
worth of unsent LINE WORKS requests (a burst, or the platform down), new pages wait, and
the next `tick` pages what gathered, again one message per station and channel, as the
backlog shrinks; the oldest first, and one station at least when nothing is queued.
"The channels it was paged to" are those its station routes to now: the same unless an
operator rerouted it meanwhile, and then the new channel is the one responsible.

Several processes: `tick` claims what it pages with `FOR UPDATE SKIP LOCKED` (an incident
being resolved or escalated elsewhere is skipped, so never paged after it closed), and a
transition reads `paged_at` again once its row is written (locked), so a page another
process made meanwhile is followed by its escalation, recovery or notice.

`tick` (from the app's timers job) also delivers the crew's `bookings_held` notifications
to the station's crew channel, marking them delivered in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from server import audit
from server.booking.moves import CREW, NOTIFY_HELD
from server.booking.views import battery_place, load_batteries
from server.db.models import Incident, Notification, OutboxMessage, Station, Unit
from server.db.session import Database
from server.delivery.outbox import Platform, channel_target, enqueue
from server.incidents.kinds import State
from server.incidents.service import Transition, subject_of
from server.lineworks import alerts
from server.lineworks.alerts import Alert, Handled, Routes, Site, StationRef
from server.lineworks.routing import load_routes
from server.settings import Settings

WAKE_KEY = "lineworks.pager.wake"
"""`session.info` flag: the sender is woken once this session's transaction commits."""
TICK_BATCH = 500
"""Delayed incidents and held notices looked at per tick (the rest wait for the next)."""


TOLD_IF_PAGED = frozenset({"escalated", "resolved", "acknowledged"})
"""Transitions crews hear of only when the incident was paged."""


@dataclass(frozen=True, slots=True)
class _Group:
    """Incidents told together: those of one station (or of one gateway serving none)."""

    site: Site
    stations: tuple[StationRef, ...]
    alerts: tuple[Alert, ...]
    rows: tuple[Incident, ...]


class AlertContext:
    """What messages about some incidents need, loaded once per batch."""

    def __init__(
        self,
        routes: Routes,
        stations: dict[str, StationRef],
        gateway_stations: dict[str, list[str]],
        names: dict[tuple[str, str], str],
    ) -> None:
        self.routes = routes
        self._stations = stations
        self._gateway_stations = gateway_stations
        self._names = names

    @classmethod
    async def load(cls, session: AsyncSession, rows: Iterable[Incident]) -> AlertContext:
        rows = list(rows)
        gateways = {r.gw_id for r in rows if r.station_id is None and r.gw_id is not None}
        served: dict[str, list[str]] = defaultdict(list)
        if gateways:
            found = await session.execute(
                select(Unit.gw_id, Unit.station_id)
                .where(Unit.gw_id.in_(sorted(gateways)), Unit.station_id.is_not(None))
                .distinct()
            )
            for gw_id, station_id in found:
                served[gw_id].append(str(station_id))
        wanted = {r.station_id for r in rows if r.station_id} | {
            s for ids in served.values() for s in ids
        }
        stations = await load_station_refs(session, wanted)
        batteries = await load_batteries(session, wanted)
        names = {(b.gw_id, b.unit): b.name for b in batteries}
        return cls(await load_routes(session), stations, dict(served), names)

    def alert(self, row: Incident) -> Alert:
        return Alert(
            id=row.id, kind=row.kind, severity=row.severity,
            place=battery_place(self._names, row.gw_id, row.unit, row.port), detail=row.detail,
            opened_at=row.opened_at, resolved_at=row.resolved_at, occurrences=row.occurrences,
        )  # fmt: skip

    def stations(self, row: Incident) -> tuple[StationRef, ...]:
        """The incident's station, or the stations its gateway serves."""
        ids = (
            [row.station_id] if row.station_id else self._gateway_stations.get(row.gw_id or "", [])
        )
        return tuple(self._stations[i] for i in sorted(set(ids)) if i in self._stations)

    def site(self, row: Incident) -> Site:
        return alerts.site_of(self.stations(row), row.gw_id)

    def groups(self, rows: Iterable[Incident]) -> list[_Group]:
        """The rows by station (a gateway's by the stations it serves), in first-seen order."""
        by_key: dict[str, list[Incident]] = defaultdict(list)
        for row in rows:
            by_key[row.station_id or f"gw:{row.gw_id}"].append(row)
        return [
            _Group(
                self.site(members[0]),
                self.stations(members[0]),
                tuple(map(self.alert, members)),
                tuple(members),
            )
            for members in by_key.values()
        ]


class Pager:
    """Made once in the app lifespan and given to `IncidentService` as its transition hook."""

    def __init__(self, db: Database, settings: Settings, wake: Callable[[], None]) -> None:
        """`wake`: the outbox sender's (`Services.wake_outbox`), called after a commit that
        wrote pages."""
        self._db = db
        self._tz = ZoneInfo(settings.timezone)
        self._escalate_after_min = settings.escalate_after_min
        self._delays = {kind: timedelta(seconds=s) for kind, s in settings.page_delay_s.items()}
        self._per_min = settings.lineworks_requests_per_min
        self._wake = wake

    def page_delay(self, kind: str) -> timedelta:
        return self._delays.get(kind, timedelta(0))

    async def transitioned(
        self, session: AsyncSession, changes: Sequence[Transition], now: datetime
    ) -> None:
        """Tell the crews what these transitions mean for them (module docstring)."""
        pages = [row for row, what in changes
                 if what == "opened" and self.page_delay(row.kind) <= timedelta(0)]  # fmt: skip
        await _see_paged(session, [row for row, what in changes if what in TOLD_IF_PAGED])
        paged = [(row, what) for row, what in changes if row.paged_at is not None]
        escalated = [row for row, what in paged if what == "escalated"]
        recovered = [row for row, what in paged
                     if what == "resolved" and row.resolved_by == audit.SYSTEM_ACTOR]  # fmt: skip
        handled = [(row, what) for row, what in paged if what == "acknowledged"
                   or (what == "resolved" and row.resolved_by != audit.SYSTEM_ACTOR)]  # fmt: skip
        if not (pages or escalated or recovered or handled):
            return
        context = await AlertContext.load(session, [*pages, *escalated, *recovered,
                                                *(row for row, _ in handled)])  # fmt: skip
        sent = await self._page(session, context, pages, now)
        for group in context.groups(escalated):
            contents = alerts.alert_contents(group.site, group.alerts, self._tz,
                                             self._escalate_after_min)  # fmt: skip
            hq = [context.routes.hq] if context.routes.hq else []
            sent += await self._send(session, group, hq, contents, "escalation_sent", now)
        for group in context.groups(recovered):
            contents = [alerts.recovery_content(group.site, group.alerts, self._tz)]
            channels = alerts.channels_for(group.stations, context.routes)
            sent += await self._send(session, group, channels, contents, "recovery_sent", now)
        by_kind: dict[tuple[str, str], list[Incident]] = defaultdict(list)
        for row, what in handled:
            by = row.acknowledged_by if what == "acknowledged" else row.resolved_by
            by_kind[(what, by or "")].append(row)
        for (what, by), rows in by_kind.items():
            for group in context.groups(rows):
                contents = [alerts.handled_content(group.site, group.alerts, Handled(what), by)]
                channels = alerts.channels_for(group.stations, context.routes)
                sent += await self._send(session, group, channels, contents, "notice_sent", now)
        if sent:
            self.wake_after_commit(session)

    async def tick(self, now: datetime) -> int:
        """Page the delayed incidents now due and deliver the crew's held-booking notices;
        the number of messages written (the sender is woken if any)."""
        async with self._db.transaction() as session:
            candidates = await session.scalars(
                select(Incident)
                .where(
                    Incident.state == State.OPEN,
                    Incident.paged_at.is_(None),
                    Incident.condition_cleared_at.is_(None),
                )
                .order_by(Incident.id)
                .limit(TICK_BATCH)
                .with_for_update(skip_locked=True)
            )
            due = [row for row in candidates if now - row.opened_at >= self.page_delay(row.kind)]
            sent = await self._page(session, await AlertContext.load(session, due), due, now)
            sent += await self._deliver_held(session, now)
        if sent:
            self._wake()
        return sent

    async def _page(
        self, session: AsyncSession, context: AlertContext, rows: Sequence[Incident], now: datetime
    ) -> int:
        """Page these incidents, one message per station and channel, as far as the rate
        allows (module docstring); `paged_at` is set on those that reached a channel (with
        no route yet, or no room, the next tick tries again)."""
        groups = context.groups(rows)
        room = await self._room(session) if groups else 0
        idle = room >= self._per_min
        sent = 0
        for group in groups:
            contents = alerts.alert_contents(group.site, group.alerts, self._tz)
            channels = alerts.channels_for(group.stations, context.routes)
            if len(contents) * len(channels) > room - sent and not (idle and sent == 0):
                break  # the rest wait for a tick, gathering what else their stations get
            written = await self._send(session, group, channels, contents, "paged", now)
            if written:
                for row in group.rows:
                    row.paged_at = now
            sent += written
        return sent

    async def _room(self, session: AsyncSession) -> int:
        """LINE WORKS requests the outbox may take now: a minute's worth less those unsent."""
        unsent = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.platform == Platform.LINEWORKS, OutboxMessage.state == "pending")
        )
        return self._per_min - (unsent or 0)

    async def _send(
        self, session: AsyncSession, group: _Group, channels: Sequence[str],
        contents: Sequence[dict[str, Any]], what: str, now: datetime,
    ) -> int:  # fmt: skip
        """The contents to every channel, audited on each incident as `incident.{what}`."""
        if not channels:
            return 0
        ids = [a.id for a in group.alerts]
        source = f"incident:{'.'.join(map(str, ids))}:{what}"[:200]
        for channel in channels:
            await enqueue(session, Platform.LINEWORKS, channel_target(channel), contents,
                          now=now, source=source)  # fmt: skip
        detail = {"channels": list(channels), "incidents": ids, "messages": len(contents)}
        for alert in group.alerts:
            await audit.record(session, audit.SYSTEM_ACTOR, f"incident.{what}",
                               subject_of(alert.id), detail, at=now)  # fmt: skip
        return len(channels) * len(contents)

    async def _deliver_held(self, session: AsyncSession, now: datetime) -> int:
        rows = (
            await session.scalars(
                select(Notification)
                .where(
                    Notification.resident_id == CREW,
                    Notification.kind == NOTIFY_HELD,
                    Notification.delivered_at.is_(None),
                )
                .order_by(Notification.id)
                .limit(TICK_BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return 0
        routes = await load_routes(session)
        stations = await load_station_refs(
            session, {str(n.payload.get("station_id")) for n in rows}
        )
        sent = 0
        for notice in rows:
            station = stations.get(str(notice.payload.get("station_id")))
            channel = alerts.crew_channel(station, routes) if station is not None else None
            if station is None or channel is None:
                continue  # stays pending (visible in the API) until a route exists
            move_at = notice.payload.get("move_at")
            content = alerts.held_content(
                alerts.site_of([station], None),
                int(notice.payload.get("held", 0)), int(notice.payload.get("newly_held", 0)),
                datetime.fromisoformat(move_at) if isinstance(move_at, str) else None, self._tz,
            )  # fmt: skip
            await enqueue(session, Platform.LINEWORKS, channel_target(channel), [content],
                          now=now, source=f"notification:{notice.id}")  # fmt: skip
            notice.delivered_at = now
            sent += 1
        return sent

    def wake_after_commit(self, session: AsyncSession) -> None:
        """Wake the sender once, when this session's transaction (which wrote outbox rows)
        commits: woken earlier, it would find nothing."""
        if session.info.get(WAKE_KEY):
            return
        session.info[WAKE_KEY] = True

        def committed(_session: Session) -> None:
            session.info.pop(WAKE_KEY, None)
            self._wake()

        event.listen(session.sync_session, "after_commit", committed, once=True)


async def _see_paged(session: AsyncSession, rows: Sequence[Incident]) -> None:
    """Read the rows' `paged_at` again, as committed now. On PostgreSQL another process's
    `tick` may have paged an incident after this transaction read it and before its UPDATE
    (which then waited for that tick's row lock): read as it was, the page would go without
    its escalation, recovery or notice. (SQLite's write lock at BEGIN rules this out.)"""
    stale = [row.id for row in rows if row.paged_at is None]
    if stale:
        await session.execute(
            select(Incident).where(Incident.id.in_(stale)).execution_options(populate_existing=True)
        )


async def load_station_refs(session: AsyncSession, ids: Iterable[str]) -> dict[str, StationRef]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await session.scalars(select(Station).where(Station.id.in_(wanted)))
    return {
        row.id: StationRef(
            row.id, row.name_ja, row.name_en, row.municipality, row.counterpart_group
        )
        for row in rows
    }
