"""What LINE residents are told without asking: their booking moved, cancelled, restored,
a reminder, the check-in seen at the port, thanks when it is done.

Booking upkeep and the reminder job record `notifications` in the transaction of each
change. `NoticeComposer` turns those of LINE residents (`line:{userId}`) into outbox
messages (pushes: there is no reply token) and sets `delivered_at` in the same transaction,
so each is handed to the outbox exactly once: on PostgreSQL the rows are claimed with FOR
UPDATE SKIP LOCKED, so two processes never both take one; on SQLite the write lock taken at
BEGIN serialises the composers, and the claim re-checks `delivered_at`. Other residents'
notifications stay as they are, visible in the API.

It runs when woken (after the fan-out's booking listener and the timers, which record
them) and every `period_s` besides (another process's notices, a wake lost to a crash).
Fresh options for a cancelled booking are ranked from the lost station's coordinates (the
resident's own location is never stored), before the claim: ranking reads the database in
its own transaction. `render` is pure, over `Notice`; the shell loads, claims and writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.booking.moves import (
    NOTIFY_CANCELLED,
    NOTIFY_CHECKED_IN,
    NOTIFY_COMPLETED,
    NOTIFY_MOVED,
    NOTIFY_REMINDER,
    NOTIFY_RESTORED,
)
from server.booking.ranking import Option, walking_minutes
from server.booking.service import BookingService
from server.booking.upkeep import ENDED_WINDOW_OVER
from server.booking.views import BookingView, load_battery_names
from server.db.models import Booking, LineResident, Notification, Station
from server.db.session import Database, is_outage
from server.delivery.outbox import Platform, enqueue
from server.ingest.changeset import ChangeSet
from server.line import messages
from server.line.messages import Message
from server.line.stations import StationInfo, load_drill_stations, load_stations
from server.settings import Settings

log = logging.getLogger(__name__)

LINE_RESIDENT: Final = "line:"
"""The prefix of a LINE resident's `resident_id`, before their user id."""
BATCH: Final = 100
"""Notices claimed per transaction."""
PERIOD_S: Final = 5.0
"""Delivery without a wake: another process's notices, or a wake lost to a crash."""
OPTIONS: Final = 3
"""Fresh options offered with an apology (a carousel the resident books from)."""


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification as `render` sees it: plain data, loaded by the shell."""

    id: int
    kind: str
    payload: Mapping[str, Any]
    booking: BookingView | None
    """The booking it is about (for a move: the new one); None if it is gone."""
    stations: Mapping[str, StationInfo]
    """Every station it names: the booking's, the one it left, the options'."""
    options: Sequence[Option] = ()
    """Fresh options, for a cancellation."""

    @property
    def station(self) -> StationInfo | None:
        """The booking's station (for a move: where it is now)."""
        return self.stations.get(self.booking.station_id) if self.booking else None

    @property
    def origin(self) -> StationInfo | None:
        """The station the booking left (a move or a cancellation)."""
        return self.stations.get(origin_id(self.payload))


def origin_id(payload: Mapping[str, Any]) -> str:
    """The station a moved or cancelled booking left ('' for other kinds)."""
    source = payload.get("from") or {}
    return str(source.get("station_id", ""))


# -- rendering (pure) ------------------------------------------------------------------------

Renderer = Callable[[Notice, str, ZoneInfo], list[Message]]


def render(notice: Notice, lang: str, tz: ZoneInfo) -> list[Message]:
    """The LINE messages telling a resident of `notice` (the last with the menu's quick
    replies); none for a kind not theirs, or a booking no longer there to tell of."""
    renderer = RENDERERS.get(notice.kind)
    told = renderer(notice, lang, tz) if renderer is not None else []
    return [*told[:-1], messages.with_menu(told[-1], lang)] if told else []


def _fields(notice: Notice, lang: str, tz: ZoneInfo) -> dict[str, str]:
    """What the texts name: stations, window (local, 24-hour), code."""
    station, origin, view = notice.station, notice.origin, notice.booking
    lost_at = (notice.payload.get("from") or {}).get("window_start")
    return {
        "station": station.name(lang) if station else "",
        "origin": origin.name(lang) if origin else "",
        "start": messages.clock_time(view.window_start, tz) if view else "",
        "end": messages.clock_time(view.window_end, tz) if view else "",
        "lost_start": messages.clock_time(datetime.fromisoformat(lost_at), tz) if lost_at else "",
        "code": view.ticket_code if view else "",
    }


def _with_ticket(key: str) -> Renderer:
    """A text, then the booking's ticket (a move, a restore: the place is new news)."""

    def told(notice: Notice, lang: str, tz: ZoneInfo) -> list[Message]:
        station = notice.station
        if notice.booking is None or station is None:
            return []
        intro = messages.text(key, lang, **_fields(notice, lang, tz))
        return [messages.text_message(intro),
                messages.ticket_bubble(notice.booking, station, lang, tz)]  # fmt: skip

    return told


def _cancelled(notice: Notice, lang: str, tz: ZoneInfo) -> list[Message]:
    """An apology, then fresh options to book from (or how to look again)."""
    apology = messages.text("notice_cancelled", lang, **_fields(notice, lang, tz))
    carousel = messages.options_carousel(notice.options, notice.stations, lang, tz)
    if not carousel["contents"]["contents"]:
        return [messages.text_message(f"{apology}\n\n{messages.text('notice_no_options', lang)}")]
    return [messages.text_message(apology), carousel]


def _said(key: str, *, only_active: bool = False) -> Renderer:
    """A notice told in one text, about a booking still on record (`only_active`: and
    still active: a reminder of a booking cancelled since is no news)."""

    def told(notice: Notice, lang: str, tz: ZoneInfo) -> list[Message]:
        view = notice.booking
        if view is None or notice.station is None or (only_active and view.status != "active"):
            return []
        return [messages.text_message(messages.text(key, lang, **_fields(notice, lang, tz)))]

    return told


def _completed(notice: Notice, lang: str, tz: ZoneInfo) -> list[Message]:
    """Thanks; when the window ran out, also a word to free the port."""
    over = notice.payload.get("ended") == ENDED_WINDOW_OVER
    return _said("notice_window_over" if over else "notice_thanks")(notice, lang, tz)


RENDERERS: Final[Mapping[str, Renderer]] = {
    NOTIFY_MOVED: _with_ticket("notice_moved"),
    NOTIFY_CANCELLED: _cancelled,
    NOTIFY_RESTORED: _with_ticket("notice_restored"),
    NOTIFY_REMINDER: _said("notice_reminder", only_active=True),
    NOTIFY_CHECKED_IN: _said("notice_checked_in"),
    NOTIFY_COMPLETED: _completed,
}
"""What residents are told of, by notification kind (crew kinds are not theirs)."""


# -- the shell -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Pending:
    id: int
    kind: str
    payload: Mapping[str, Any]


class NoticeComposer:
    """One per process, made in the app lifespan: `run()` as a task, `wake()` after a
    change recorded notifications (`on_changes` is the fan-out listener that does it)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        booking: BookingService,
        clock: Callable[[], datetime],
        wake_outbox: Callable[[], None],
        *,
        period_s: float = PERIOD_S,
        batch: int = BATCH,
    ) -> None:
        self._db = db
        self._booking = booking
        self._clock = clock
        self._wake_outbox = wake_outbox
        self._tz = ZoneInfo(settings.timezone)
        self._period_s = period_s
        self._batch = batch
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Deliver now (what was just committed); wakes during a round make one more."""
        self._woken.set()

    async def on_changes(self, _changes: ChangeSet) -> None:
        """Fan-out listener, after booking's: the moves and check-ins it recorded go out."""
        self.wake()

    async def run(self) -> None:
        """Deliver on every wake and every `period_s`, until cancelled; never raises."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._period_s):
                    await self._woken.wait()
            self._woken.clear()
            try:
                while await self.deliver() == self._batch:
                    pass
            except Exception as exc:
                if is_outage(exc):
                    log.debug("LINE notices wait for the database (%s)", type(exc).__name__)
                else:
                    log.exception("LINE notices failed; retrying in %.0fs", self._period_s)

    async def deliver(self) -> int:
        """One round: up to `batch` pending notices of LINE residents handed to the outbox
        (those of a resident who unfollowed: marked delivered, not sent); how many this
        process claimed. The outbox sender is woken if anything was written."""
        now = self._clock()
        async with self._db.transaction() as session:
            pending = [
                _Pending(*row)
                for row in await session.execute(
                    select(Notification.id, Notification.kind, Notification.payload)
                    .where(
                        Notification.resident_id.startswith(LINE_RESIDENT, autoescape=True),
                        Notification.delivered_at.is_(None),
                    )
                    .order_by(Notification.id)
                    .limit(self._batch)
                )
            ]
            lost = {origin_id(p.payload) for p in pending if p.kind == NOTIFY_CANCELLED}
            origins = await load_stations(session, lost)
        if not pending:
            return 0
        fresh = {sid: await self._fresh_options(station, now) for sid, station in origins.items()}
        async with self._db.transaction() as session:
            rows = list(
                await session.scalars(
                    select(Notification)
                    .where(
                        Notification.id.in_([p.id for p in pending]),
                        Notification.delivered_at.is_(None),
                    )
                    .order_by(Notification.id)
                    .with_for_update(skip_locked=True)
                )
            )
            written = await self._compose(session, rows, fresh, now)
        if written:
            self._wake_outbox()
        return len(rows)

    async def _fresh_options(self, lost: StationInfo, now: datetime) -> list[Option]:
        """Up to `OPTIONS` windows near the lost station, elsewhere (it can no longer
        charge, whatever a snapshot a moment old still says), in its own world: a drill's
        twin lost is made good by the same drill's twins, never by a real place."""
        if lost.drill_id is not None:
            return await self._twin_options(lost, now)
        found = await self._booking.options(lost.latitude, lost.longitude, now, OPTIONS + 1)
        return [o for o in found if o.station_id != lost.id][:OPTIONS]

    async def _twin_options(self, lost: StationInfo, now: datetime) -> list[Option]:
        """The earliest window of each other twin of the lost twin's drill (none once the
        drill ended), ranked by the ranking's cost from the lost twin."""
        async with self._db.transaction() as session:
            twins = [t for t in await load_drill_stations(session)
                     if t.drill_id == lost.drill_id and t.id != lost.id]  # fmt: skip
        found = []
        for twin in twins:
            walk = walking_minutes(lost.latitude, lost.longitude, twin.latitude, twin.longitude)
            found += [replace(o, walk_min=walk, cost=2 * walk + o.wait_min)
                      for o in (await self._booking.station_options(twin.id, now, 1))]  # fmt: skip
        return sorted(found, key=lambda o: (o.cost, o.station_id))[:OPTIONS]

    async def _compose(
        self,
        session: AsyncSession,
        rows: Sequence[Notification],
        fresh: Mapping[str, Sequence[Option]],
        now: datetime,
    ) -> int:
        """Render and enqueue each claimed notice, marking it delivered; outbox rows written."""
        users = {row.resident_id.removeprefix(LINE_RESIDENT) for row in rows}
        residents = {
            r.user_id: r
            for r in await session.scalars(
                select(LineResident).where(LineResident.user_id.in_(sorted(users)))
            )
        }
        bookings = await _load_bookings(session, {r.booking_id for r in rows if r.booking_id})
        options = {
            row.id: fresh.get(origin_id(row.payload), ()) if row.kind == NOTIFY_CANCELLED else ()
            for row in rows
        }
        named = {origin_id(row.payload) for row in rows}
        named |= {view.station_id for view in bookings.values()}
        named |= {o.station_id for found in options.values() for o in found}
        stations = await load_stations(session, named)
        written = 0
        for row in rows:
            row.delivered_at = now
            user_id = row.resident_id.removeprefix(LINE_RESIDENT)
            resident = residents.get(user_id)
            if resident is not None and not resident.following:
                continue  # they blocked the account: a push would only be refused
            lang = messages.language_of(resident.language if resident is not None else None)
            view = bookings.get(row.booking_id or "")
            notice = Notice(row.id, row.kind, row.payload, view, stations, options[row.id])
            told = render(notice, lang, self._tz)
            if not told:
                log.info("notification %d (%s): nothing to tell its resident", row.id, row.kind)
                continue
            written += len(await enqueue(session, Platform.LINE, user_id, told, now=now,
                                         source=f"notification:{row.id}"))  # fmt: skip
        return written


async def _load_bookings(session: AsyncSession, ids: Iterable[str]) -> dict[str, BookingView]:
    """The bookings the notices are about, as callers see them."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    found = list(
        await session.execute(
            select(Booking, Station.slot_minutes)
            .join(Station, Station.id == Booking.station_id)
            .where(Booking.id.in_(wanted))
        )
    )
    names = await load_battery_names(session, {row.station_id for row, _slot in found})
    return {row.id: BookingView.of(row, slot, names) for row, slot in found}
