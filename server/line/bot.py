"""The LINE bot: stored webhook events, processed in order per resident, answered via the outbox.

The webhook stores events (`Inbox`) and hands the new ones to `LineBot.submit`, with their
coordinates, which are never stored. The bot keeps a queue per resident, so a resident's
events are handled one at a time in arrival order while different residents' events are
handled together: a worker takes the next event of every resident who has one, loads their
chats in one read, runs the handlers concurrently (the booking service group-commits their
bookings), then in ONE transaction marks the events processed (only those still
unprocessed: another process may have recovered one), saves the chats and enqueues the
replies in the outbox, with the event's reply token while it is fresh. Then it wakes the
outbox sender.

A crash between storing and processing loses nothing: `start` and, every `recover_s`,
the worker pick up stored events still unprocessed (a location among them comes back
without its point, and the resident is asked again); processed events are forgotten
after `KEEP_EVENTS`. Every event is leased to the process that queued it (its client id,
renewed every `recover_s` while it lives): recovery takes an event only once its lease ran
out, so a live but busy process's queue is not handled twice, and at start a process takes
back at once what its own earlier run held. A database outage leaves the batch
unprocessed, to be tried again. A handler's bug costs the resident one "sorry" message,
never silence.

Abuse: per resident, `resident_requests_per_min` messages a minute (a moving window, via
`limits`); the first one beyond it is answered with a polite "slow down", later ones not
at all until the window lets them through again. Per process: several processes each
allow as much (the limit is against floods, not a quota).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Generic, TypeVar
from zoneinfo import ZoneInfo

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Table, delete, false, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from server.announcements.audience import Sent
from server.announcements.service import heard_by
from server.booking.ranking import Option
from server.booking.service import BookingService
from server.booking.views import BookingView
from server.db.models import LineEvent, LineResident
from server.db.session import Database, is_outage
from server.delivery.outbox import Platform, enqueue
from server.errors import NotFound
from server.line import messages
from server.line.conversation import OPTIONS, Ask, Chat, Offer, Registration, Reply, Ticket
from server.line.events import Kind, ResidentEvent
from server.line.inbox import LEASE, Inbox, Received
from server.line.registration_rows import RegistrationRows
from server.line.routes import handler_of, route
from server.line.stations import StationInfo, find_stations, load_drill_stations, load_stations
from server.settings import Settings

log = logging.getLogger(__name__)

RECOVER_S: Final = 30.0
"""How often unprocessed events are looked for, and how old they must be (younger ones are
most likely another process's, in hand)."""
RETRY_S: Final = 1.0
"""Pause before a batch that failed for an outage is tried again."""
MAX_BATCH: Final = 64
"""Events handled together at most: their handlers and the commit are CPU the webhook's
acknowledgements wait behind, so a batch stays a few milliseconds of it."""
RECOVER_LIMIT: Final = 5000
RENEW_CHUNK: Final = 1000
"""Event ids per renewing UPDATE (SQLite's parameter limit)."""
KEEP_EVENTS: Final = timedelta(days=7)
"""Processed events are kept this long, so a redelivery (LINE's come within hours) is
still known as one; then they go (`forget`)."""
UNLIMITED: Final = frozenset({Kind.FOLLOW, Kind.UNFOLLOW})
"""Events no rate limit holds back (they are not requests)."""

STATIONS_TTL_S: Final = 60.0
K = TypeVar("K")
V = TypeVar("V")

Languages = Callable[[str], Awaitable[str | None]]
"""A resident's LINE language by user id (`LineTransport.language`); None when unknown."""
Announce = Callable[[BookingView, str], None]
"""(booking, "booked" | "cancelled"): tells the dashboards, as the REST API does."""


class Coalesced(Generic[K, V]):
    """Look-ups made in the same turn of the event loop, fetched together in one call.

    The bot runs a batch of residents' handlers at once; each asks for its own options or
    booking, and one read for all of them costs about what one read for one costs.
    """

    def __init__(self, fetch: Callable[[list[K]], Awaitable[Sequence[V]]]) -> None:
        self._fetch = fetch
        self._pending: list[tuple[K, asyncio.Future[V]]] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._pending.append((key, future))
        if len(self._pending) == 1:  # after every handler of this turn has asked
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        task = asyncio.create_task(self._resolve(pending))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _resolve(self, pending: list[tuple[K, asyncio.Future[V]]]) -> None:
        try:
            values = await self._fetch([key for key, _future in pending])
        except Exception as exc:
            for _key, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_key, future), value in zip(pending, values, strict=True):
            if not future.done():
                future.set_result(value)


class BookingDesk:
    """The conversation's `Desk`: the booking service and the stations, as plain data.

    Options and active bookings asked for together are read together (`Coalesced`);
    stations are kept for `STATIONS_TTL_S` (names and addresses change rarely, and a
    station not seen yet is read at once)."""

    def __init__(
        self,
        db: Database,
        booking: BookingService,
        clock: Callable[[], datetime],
        tz: ZoneInfo,
        announce: Announce | None = None,
    ) -> None:
        self._db = db
        self._booking = booking
        self._clock = clock
        self.tz = tz
        self._announce = announce
        self._near = Coalesced(self._options_many)
        self._active = Coalesced(self._actives)
        self._known: dict[str, StationInfo] = {}
        self._known_at = float("-inf")
        self._loading = asyncio.Lock()
        self._registrations = RegistrationRows(db, clock)

    async def options_near(
        self, latitude: float, longitude: float, resident: str | None = None
    ) -> Offer:
        found = await self._near.get((latitude, longitude, resident))
        return Offer(found, await self._stations(o.station_id for o in found))

    async def options_at(self, station_id: str, resident: str | None = None) -> Offer:
        try:
            found = await self._booking.station_options(station_id, self._clock(), OPTIONS,
                                                        resident)  # fmt: skip
        except NotFound:
            return Offer([], {})
        return Offer(found, await self._stations([station_id]))

    async def find(self, text: str) -> Sequence[StationInfo]:
        async with self._db.transaction() as session:
            return await find_stations(session, text)

    async def station(self, station_id: str) -> StationInfo | None:
        return (await self._stations([station_id])).get(station_id)

    async def drill_stations(self) -> Sequence[StationInfo]:
        async with self._db.transaction() as session:
            return await load_drill_stations(session)

    async def active(self, resident: str) -> Ticket | None:
        booking = await self._active.get(resident)
        return await self._ticket(booking) if booking is not None else None

    async def book(
        self, resident: str, station_id: str, window_start: datetime, walk_m: int | None = None
    ) -> Ticket:
        booking = await self._booking.book(resident, station_id, window_start, walk_m=walk_m)
        self._told(booking, "booked")
        return await self._ticket(booking)

    async def cancel(self, booking_id: str) -> Ticket:
        booking = await self._booking.cancel(booking_id)
        self._told(booking, "cancelled")
        return await self._ticket(booking)

    async def municipalities(self) -> Sequence[str]:
        return await self._registrations.municipalities()

    async def districts(self, municipality: str) -> Sequence[str]:
        return await self._registrations.districts(municipality)

    async def shelters(self, municipality: str) -> Sequence[StationInfo]:
        return await self._registrations.shelters(municipality)

    async def registration(self, user_id: str) -> Registration | None:
        return await self._registrations.registration(user_id)

    async def register(self, registration: Registration) -> None:
        await self._registrations.register(registration)

    async def unregister(self, user_id: str) -> bool:
        return await self._registrations.unregister(user_id)

    async def announcements(
        self, registration: Registration, drills: bool, count: int
    ) -> Sequence[Sent]:
        return await heard_by(self._db, registration, drills, count)

    async def _options_many(
        self, asked: list[tuple[float, float, str | None]]
    ) -> list[list[Option]]:
        points = [(lat, lon) for lat, lon, _who in asked]
        return await self._booking.options_many(points, self._clock(), OPTIONS,
                                                [who for _lat, _lon, who in asked])  # fmt: skip

    async def _actives(self, residents: list[str]) -> list[BookingView | None]:
        found = await self._booking.active_for_residents(residents)
        return [found.get(resident) for resident in residents]

    def _told(self, booking: BookingView, what: str) -> None:
        if self._announce is not None:
            self._announce(booking, what)

    async def _ticket(self, booking: BookingView) -> Ticket:
        station = await self.station(booking.station_id)
        if station is None:  # a booking's station is a foreign key: never gone
            raise NotFound(f"no station {booking.station_id}")
        return Ticket(booking, station)

    async def _stations(self, ids: Iterable[str]) -> dict[str, StationInfo]:
        wanted = set(ids)
        async with self._loading:  # one read at a time: concurrent misses share it
            if time.monotonic() - self._known_at > STATIONS_TTL_S:
                async with self._db.transaction() as session:
                    self._known = await load_stations(session)
                self._known_at = time.monotonic()
            elif missing := wanted - self._known.keys():
                async with self._db.transaction() as session:
                    self._known.update(await load_stations(session, missing))
        return {i: self._known[i] for i in wanted if i in self._known}


class LineBot:
    """One per process, made in the app lifespan: `start()`, then `accept` from the
    webhook, `stop()` on the way out."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        desk: BookingDesk,
        clock: Callable[[], datetime],
        wake: Callable[[], None] | None = None,
        *,
        languages: Languages | None = None,
        recover_s: float = RECOVER_S,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._db = db
        self._desk = desk
        self._clock = clock
        self._wake = wake
        self._languages = languages
        self._reply_within = timedelta(seconds=settings.line_reply_within_s)
        self._recover_s = recover_s
        self._max_batch = max_batch
        self._owner = settings.mqtt_client_id
        self.inbox = Inbox(db, clock, self._owner)
        self._upsert = resident_upsert(db.is_sqlite)
        self._queues: dict[str, deque[Received]] = {}
        """Per resident, their events not yet processed, oldest first."""
        self._ready: asyncio.Queue[str] = asyncio.Queue()
        """Residents whose next event may be processed (none of theirs is in hand)."""
        self._known: set[str] = set()
        """Ids of the events queued or in hand, so recovery does not queue them twice."""
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._rate = RateLimitItemPerMinute(settings.resident_requests_per_min)
        self._slowed: set[str] = set()
        """Residents told to slow down, until the limit lets them through again."""
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    # -- life ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Queue what an earlier run stored but did not process, then start working."""
        await self.recover(self._clock(), starting=True)
        self._tasks = [
            asyncio.create_task(self._work(), name="line-bot"),
            asyncio.create_task(self._recovering(), name="line-bot-recovery"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.inbox.close()

    async def idle(self) -> None:
        """Until nothing is queued or in hand (tests and benchmarks wait on it)."""
        await self._idle.wait()

    # -- intake ----------------------------------------------------------------------------

    async def accept(self, items: Sequence[Received]) -> int:
        """Store the events (raises if the store fails), queue the new ones; how many."""
        new = await self.inbox.store(items)
        self.submit(new)
        return len(new)

    def submit(self, received: Iterable[Received]) -> None:
        """Queue stored events for processing, each behind its resident's earlier ones."""
        for item in received:
            if item.event.event_id in self._known:
                continue
            self._known.add(item.event.event_id)
            self._idle.clear()
            user = item.event.user_id or f"~{item.event.event_id}"  # nobody: alone
            queue = self._queues.get(user)
            if queue is None:
                self._queues[user] = deque([item])
                self._ready.put_nowait(user)
            else:
                queue.append(item)

    async def recover(
        self, now: datetime, older_than_s: float = 0.0, *, starting: bool = False
    ) -> int:
        """Lease and queue stored events still unprocessed (received `older_than_s` ago)
        whose lease ran out, or, `starting`, that this process's earlier run held; how many."""
        cutoff = now - timedelta(seconds=older_than_s)
        free = or_(LineEvent.leased_until.is_(None), LineEvent.leased_until < now,
                   LineEvent.leased_by == self._owner if starting else false())  # fmt: skip
        due = (
            select(LineEvent.webhook_event_id)
            .where(LineEvent.processed_at.is_(None), LineEvent.received_at <= cutoff, free)
            .order_by(LineEvent.received_at, LineEvent.webhook_event_id)
            .limit(RECOVER_LIMIT)
        )
        async with self._db.transaction() as session:
            claimed = await session.scalars(
                update(LineEvent)
                .where(LineEvent.webhook_event_id.in_(due.scalar_subquery()), free)
                .values(leased_by=self._owner, leased_until=now + LEASE)
                .returning(LineEvent)
            )
            rows = sorted(claimed, key=lambda r: (r.received_at, r.webhook_event_id))
        found = [
            Received(ResidentEvent.from_stored(r.webhook_event_id, r.user_id, r.body,
                                               r.redelivery), r.received_at)
            for r in rows if r.webhook_event_id not in self._known
        ]  # fmt: skip
        if found:
            log.info("recovering %d unprocessed LINE events", len(found))
        self.submit(found)
        return len(found)

    # -- work ------------------------------------------------------------------------------

    async def forget(self, now: datetime) -> int:
        """Delete processed events received more than `KEEP_EVENTS` ago; how many."""
        table: Table = LineEvent.__table__  # type: ignore[assignment]
        async with self._db.transaction() as session:
            gone = await session.execute(
                delete(table).where(
                    table.c.received_at < now - KEEP_EVENTS, table.c.processed_at.is_not(None)
                )
            )
        return int(getattr(gone, "rowcount", 0) or 0)

    async def renew(self, now: datetime) -> None:
        """Keep the events this process holds (queued or in hand) leased to it; only those:
        an earlier run's beyond `RECOVER_LIMIT` are left to run out and be recovered."""
        held = sorted(self._known)
        async with self._db.transaction() as session:
            for at in range(0, len(held), RENEW_CHUNK):
                await session.execute(
                    update(LineEvent)
                    .where(LineEvent.webhook_event_id.in_(held[at : at + RENEW_CHUNK]),
                           LineEvent.processed_at.is_(None))
                    .values(leased_by=self._owner, leased_until=now + LEASE)
                )  # fmt: skip

    async def _recovering(self) -> None:
        while True:
            await asyncio.sleep(self._recover_s)
            try:
                await self.renew(self._clock())
                await self.recover(self._clock(), self._recover_s)
                await self.forget(self._clock())
            except Exception as exc:
                log.warning("LINE events' upkeep failed (%s)", exc)

    async def _work(self) -> None:
        while True:
            users = [await self._ready.get()]
            while len(users) < self._max_batch and not self._ready.empty():
                users.append(self._ready.get_nowait())
            batch = [self._queues[u][0] for u in users]
            try:
                await self._process(batch)
            except Exception as exc:
                if not is_outage(exc):
                    log.exception("processing %d LINE events failed", len(batch))
                await asyncio.sleep(RETRY_S)
                for user in users:  # their heads stay: tried again, in order
                    self._ready.put_nowait(user)
                continue
            for user, item in zip(users, batch, strict=True):
                queue = self._queues[user]
                queue.popleft()
                self._known.discard(item.event.event_id)
                if queue:
                    self._ready.put_nowait(user)
                else:
                    del self._queues[user]
            if not self._queues:
                self._idle.set()

    async def _process(self, batch: list[Received]) -> None:
        """Handle one event per resident, then record it all in one transaction."""
        users = sorted({i.event.user_id for i in batch if i.event.user_id})
        residents: Table = LineResident.__table__  # type: ignore[assignment]
        async with self._db.transaction() as session:
            chats = {
                row.user_id: Chat(**row._asdict())
                for row in await session.execute(
                    select(*(residents.c[f] for f in CHAT_COLUMNS)).where(
                        residents.c.user_id.in_(users)
                    )
                )
            }
        chats.update(await self._met(batch, chats))
        replies = await asyncio.gather(*(self._turn(i, chats) for i in batch))
        now = self._clock()
        table: Table = LineEvent.__table__  # type: ignore[assignment]
        sent = False
        async with self._db.transaction() as session:
            claimed = set(
                await session.scalars(
                    update(table)
                    .where(
                        table.c.webhook_event_id.in_([i.event.event_id for i in batch]),
                        table.c.processed_at.is_(None),
                    )
                    .values(processed_at=now)
                    .returning(table.c.webhook_event_id)
                )
            )
            kept: dict[str, dict[str, Any]] = {}
            for item, reply in zip(batch, replies, strict=True):
                event = item.event
                if reply is None or event.event_id not in claimed or event.user_id is None:
                    continue
                kept[event.user_id] = _row(reply.chat, now)
                if reply.messages:
                    await enqueue(
                        session, Platform.LINE, event.user_id, reply.messages, now=now,
                        source=f"line_event:{event.event_id}", reply_token=event.reply_token,
                        reply_until=item.received_at + self._reply_within, flush=False,
                    )  # fmt: skip
                    sent = True
            if kept:
                await session.execute(self._upsert, list(kept.values()))
        if sent and self._wake is not None:
            self._wake()

    async def _met(self, batch: list[Received], chats: dict[str, Chat]) -> dict[str, Chat]:
        """Chats for residents met now (first contact, or a follow) in their LINE language,
        unless they chose one."""
        met = {
            i.event.user_id for i in batch
            if i.event.user_id and (i.event.user_id not in chats or i.event.kind is Kind.FOLLOW)
            and not (i.event.user_id in chats and chats[i.event.user_id].language_chosen)
        }  # fmt: skip
        if not met or self._languages is None:
            return {}
        users = sorted(met)
        found = await asyncio.gather(*(self._languages(u) for u in users))
        return {
            user: dataclasses.replace(chats.get(user) or Chat(user),
                                      language=messages.language_of(language))
            for user, language in zip(users, found, strict=True) if language
        }  # fmt: skip

    async def _turn(self, item: Received, chats: dict[str, Chat]) -> Reply | None:
        """The reply to one event (None: nobody to answer)."""
        event = item.event
        if event.user_id is None:
            return None
        chat = chats.get(event.user_id) or Chat(event.user_id)
        routed = route(event)
        if routed.language and not chat.language_chosen:
            chat = dataclasses.replace(chat, language=routed.language)
        if event.kind not in UNLIMITED:
            if not self._limiter.hit(self._rate, event.user_id):
                if event.user_id in self._slowed:
                    return Reply([], chat)
                self._slowed.add(event.user_id)
                return Reply([messages.said("slow_down", chat.language)], chat)
            self._slowed.discard(event.user_id)
        try:
            return await handler_of(routed)(Ask(event, chat, self._desk, routed.params))
        except Exception as exc:
            if is_outage(exc):
                raise
            log.exception("LINE handler for %s failed", routed.key)
            return Reply([messages.said("trouble", chat.language)], chat)


CHAT_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Chat))
"""`line_residents` columns that are a `Chat` (the rest are bookkeeping)."""


def _row(chat: Chat, now: datetime) -> dict[str, Any]:
    """The chat as its `line_residents` row (made on first contact, else updated)."""
    row = {f: getattr(chat, f) for f in CHAT_COLUMNS}
    row["step_data"] = dict(chat.step_data)
    return {**row, "created_at": now, "updated_at": now}


def resident_upsert(is_sqlite: bool) -> Any:
    """INSERT ... ON CONFLICT (user_id) DO UPDATE, keeping `created_at`: one statement,
    executed for a whole batch's residents."""
    table: Table = LineResident.__table__  # type: ignore[assignment]
    statement = (sqlite_insert if is_sqlite else pg_insert)(table)
    changed = {f: statement.excluded[f] for f in (*CHAT_COLUMNS, "updated_at") if f != "user_id"}
    return statement.on_conflict_do_update(index_elements=["user_id"], set_=changed)
