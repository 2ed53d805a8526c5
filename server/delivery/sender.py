"""The outbox sender: sends due rows to their platforms, each person's rows in order.

One per process (the app lifespan), several processes on one database. A round is one short
transaction (no platform call inside it), which:
1. records the attempts that ended since the last round, each only if the row is still
   this claim's (same `attempts`): sent; retried after a backoff
   (`server.delivery.backoff`); failed for good; or, for a reply token the platform refused,
   pushed next at once;
2. claims the due rows (PostgreSQL `FOR UPDATE SKIP LOCKED`, SQLite the write lock at
   BEGIN), at most one per target and only a target's earliest unsent row, so a person's
   messages arrive in the order they were written, also across retries and processes;
   LINE multicast rows (an announcement's batches) in slots of their own, so a big
   announcement never keeps residents' replies waiting for a slot. The
   claim sets `lease_until` and `attempts + 1` (the claim's identity) and, when the row's
   reply token is still usable, `reply_tried`: that is persisted before the reply is tried.
The claimed rows are then sent concurrently across targets, each platform through its rate
limiter (`aiolimiter`; the rate is per process: several processes share the platform's
limit by each setting its part; LINE multicast rows, an announcement's batches, through
their own, as LINE limits that endpoint apart), each attempt cut off before its lease
ends, so no other sender takes a row while it is in flight. Recording many attempts in one
transaction keeps the writes few when thousands of residents are answered a second (SQLite
has one writer).
Rounds run on `wake()` (a commit that wrote rows), when a send ends (its outcome is to be
recorded, its target's next row may follow), when a retry it recorded comes due, and every
`poll_s` (other processes' rows, leases run out).

Exactly once, though the process may die anywhere: a row whose sender died is claimed again
when its lease runs out. The lease is half of `line_reply_within_s`, so the row is retried
while its reply token is still usable: a second reply that LINE refuses as an invalid token
means the first reply was accepted (nothing else holds the token), so the row is sent. A
push carries the row's `X-Line-Retry-Key`: LINE answers a repeat with 409, also sent. What
cannot be told apart: a reply whose answer was lost and whose token is stale by the next
attempt (the server down for longer than the reply window) is pushed, so it may arrive twice
rather than never; LINE WORKS keeps no idempotency key at all (`server.lineworks.client`).
The reading of a refused second reply relies on our reply window (`line_reply_within_s`,
50 s) ending before LINE's: a token LINE expired sooner would be taken for our own reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from aiolimiter import AsyncLimiter
from sqlalchemy import Select, case, exists, literal_column, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnClause

from server.db.models import OutboxMessage
from server.db.session import Database, is_outage
from server.delivery.backoff import retry_delay_s
from server.delivery.outbox import Platform
from server.delivery.transport import Attempt, Outcome, Outgoing, Transport
from server.settings import Settings

log = logging.getLogger(__name__)

POLL_S: Final = 2.0
IN_FLIGHT_PER_PLATFORM: Final = 32
"""Sends in flight per platform and process (the rate limiter spaces them)."""
LEASE_MARGIN_S: Final = 1.0
"""An attempt is cut off this long before its lease ends, leaving time to record it."""
FOR_GOOD: Final = frozenset({Outcome.SENT, Outcome.FAILED})
"""Outcomes that end a row: a multicast batch's user ids are emptied with them."""
PENDING: ColumnClause[str] = literal_column("'pending'")
"""Inline (not a bound parameter), so PostgreSQL's planner matches the partial index."""


CLAIMED: Final = (
    OutboxMessage.id, OutboxMessage.target, OutboxMessage.body, OutboxMessage.reply_token,
    OutboxMessage.reply_until, OutboxMessage.reply_tried, OutboxMessage.retry_key,
    OutboxMessage.attempts, OutboxMessage.recipients,
)  # fmt: skip
"""What a claim reads of a row: plain columns, no ORM objects to flush."""


Lane = tuple[Platform, bool]
"""Where a row waits its turn: its platform, and whether it is a LINE multicast (an
announcement's batch), which has slots of its own, so a big announcement never holds the
slots residents' replies need."""


def due(platform: Platform, now: datetime, limit: int, *, multicast: bool = False) -> Select[Any]:
    """The rows to claim: due, not leased, and no earlier row of their target unsent; the
    multicast rows, or the others."""
    row, earlier = OutboxMessage, aliased(OutboxMessage)
    unsent_before = exists().where(
        earlier.platform == row.platform, earlier.target == row.target,
        earlier.state == PENDING, earlier.id < row.id,
    )  # fmt: skip
    return (
        select(*CLAIMED)
        .where(
            row.platform == platform.value,
            row.state == PENDING,
            row.next_at <= now,
            or_(row.lease_until.is_(None), row.lease_until <= now),
            row.recipients.is_not(None) if multicast else row.recipients.is_(None),
            ~unsent_before,
        )
        .order_by(row.next_at)  # the index's order: the most overdue first, no sort
        .limit(limit)
        .with_for_update(skip_locked=True, of=row)
    )


def recorded(
    attempt: Attempt, number: int, now: datetime, cap_s: float, *, tried_before: bool = False
) -> dict[str, Any]:
    """The row's new values after its attempt `number` went as `attempt`.

    A reply the platform answered with a 429 or 5xx did not use the token: unless an earlier
    attempt's reply is still unaccounted for (`tried_before`), `reply_tried` is cleared, or
    a later "Invalid reply token" (it expired meanwhile) would be taken for our reply."""
    error = attempt.error[:500] if attempt.error else None
    match attempt.outcome:
        case Outcome.SENT:
            return {"state": "sent", "sent_at": now, "lease_until": None}
        case Outcome.FAILED:
            return {"state": "failed", "lease_until": None, "last_error": error}
        case Outcome.REPLY_UNUSABLE:
            return {"reply_token": None, "reply_until": None, "next_at": now,
                    "lease_until": None, "last_error": error}  # fmt: skip
        case Outcome.RETRY:
            delay = retry_delay_s(number, cap_s, attempt.retry_after_s)
            values: dict[str, Any] = {"next_at": now + timedelta(seconds=delay),
                                      "lease_until": None, "last_error": error}  # fmt: skip
            if attempt.answered and not tried_before:
                values["reply_tried"] = False
            return values


class OutboxSender:
    """Drains the outbox through the transports given (platforms without one wait)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        clock: Callable[[], datetime],
        transports: Sequence[Transport],
        *,
        poll_s: float = POLL_S,
        in_flight: int = IN_FLIGHT_PER_PLATFORM,
    ) -> None:
        self._db = db
        self._clock = clock
        self._cap_s = settings.delivery_backoff_max_s
        self._poll_s = poll_s
        self._transports = {t.platform: t for t in transports}
        self.lease_s = settings.line_reply_within_s / 2
        """Shorter than the reply window: a row whose sender died is retried in it."""
        # Requests per period in each lane: LINE limits multicast on its own (200 requests a
        # second), apart from push.
        rates: dict[Lane, tuple[float, float]] = {
            (Platform.LINE, False): (settings.line_requests_per_s, 1.0),
            (Platform.LINE, True): (settings.line_multicast_requests_per_s, 1.0),
            (Platform.LINEWORKS, False): (float(settings.lineworks_requests_per_min), 60.0),
        }
        self._lanes = [lane for lane in rates if lane[0] in self._transports]
        self._limiters = {lane: AsyncLimiter(*rates[lane]) for lane in self._lanes}
        # Claim no more than the limiter lets through in half a lease: the rest would wait
        # for their turn while their lease runs out.
        self._slots: dict[Lane, int] = {
            lane: max(1, min(in_flight, int(rate / period * self.lease_s / 2)))
            for lane, (rate, period) in rates.items()
        }
        self._in_flight: dict[Lane, set[asyncio.Task[None]]] = {lane: set() for lane in rates}
        self._woken = asyncio.Event()
        self._retries: list[datetime] = []
        """A heap of when the retries this sender recorded come due (on its clock, as the
        claims compare: the loop's timers may fire a little early)."""
        self._outcomes: list[tuple[Outgoing, Attempt]] = []
        """Attempts that ended, to be recorded by the next round."""
        self._stopping = False
        self._running = False
        self._ended = asyncio.Event()
        self.counts: Counter[tuple[Platform, Outcome]] = Counter()
        """Attempts recorded, by platform and outcome (for `/metrics`)."""

    @property
    def platforms(self) -> frozenset[Platform]:
        return frozenset(self._transports)

    def wake(self) -> None:
        """Rows were committed: send them now rather than at the next poll."""
        self._woken.set()

    async def run(self) -> None:
        """Rounds until `stop`; never raises (a database outage waits for the next poll)."""
        self._running = True
        try:
            while not self._stopping:
                self._woken.clear()
                await self._round(claim=True)
                await self._sleep()
        finally:
            await self._drain()
            self._ended.set()

    async def stop(self) -> None:
        """Claim no more, let the sends in flight end (each within its lease), close."""
        self._stopping = True
        self._woken.set()
        if self._running:
            await self._ended.wait()
        for transport in self._transports.values():
            await transport.aclose()

    async def _sleep(self) -> None:
        """Until woken, the next poll, or this sender's earliest retry is due."""
        wait_s = self._poll_s
        if self._retries:
            wait_s = min(wait_s, max(0.0, (self._retries[0] - self._clock()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await self._woken.wait()

    async def _round(self, *, claim: bool) -> None:
        """One short transaction: record the attempts that ended since the last round, then
        claim what is due (a target's next row is due once its previous one is recorded)."""
        ended, self._outcomes = self._outcomes, []
        try:
            async with self._db.transaction() as session:
                await session.connection()  # BEGIN: on SQLite, once the write lock is ours
                now, started = self._clock(), asyncio.get_running_loop().time()
                while self._retries and self._retries[0] <= now:
                    heapq.heappop(self._retries)  # this round claims what was due
                kept = await self._record(session, ended, now)
                claims = await self._claim(session, now, started) if claim else []
        except Exception as exc:
            self._outcomes[:0] = ended  # a later round records them
            if is_outage(exc):
                log.debug("outbox waits for the database (%s)", type(exc).__name__)
            else:
                log.exception("outbox round failed; trying again in %.0fs", self._poll_s)
            return
        for msg, attempt, values in kept:
            self._recorded(msg, attempt, values)
        for msg, deadline in claims:
            task = asyncio.create_task(self._send(msg, deadline), name=f"outbox-{msg.id}")
            self._in_flight[msg.platform, bool(msg.recipients)].add(task)
            task.add_done_callback(self._ended_send)

    async def _claim(
        self, session: AsyncSession, now: datetime, started: float
    ) -> list[tuple[Outgoing, float]]:
        """The rows claimed, each with the event loop's time by which its attempt ends."""
        lease_until = now + timedelta(seconds=self.lease_s)
        deadline = started + self.lease_s - LEASE_MARGIN_S
        claims: list[tuple[Outgoing, float]] = []
        for platform, multicast in self._lanes:
            limit = self._slots[platform, multicast] - len(self._in_flight[platform, multicast])
            if limit <= 0:
                continue
            for row in await session.execute(due(platform, now, limit, multicast=multicast)):
                fresh = row.reply_until is not None and now < row.reply_until
                msg = Outgoing(
                    id=row.id, platform=platform, target=row.target, body=tuple(row.body),
                    reply_token=row.reply_token if fresh else None, reply_tried=row.reply_tried,
                    retry_key=row.retry_key, attempt=row.attempts + 1,
                    recipients=tuple(row.recipients or ()),
                )  # fmt: skip
                claims.append((msg, deadline))
        if claims:
            replying = [msg.id for msg, _ in claims if msg.reply_token is not None]
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([msg.id for msg, _ in claims]))
                .values(
                    attempts=OutboxMessage.attempts + 1, lease_until=lease_until,
                    reply_tried=case((OutboxMessage.id.in_(replying), True),
                                     else_=OutboxMessage.reply_tried),
                )
                .execution_options(synchronize_session=False)
            )  # fmt: skip
        return claims

    async def _send(self, msg: Outgoing, deadline: float) -> None:
        limiter = self._limiters[msg.platform, bool(msg.recipients)]
        try:
            async with asyncio.timeout_at(deadline), limiter:
                attempt = await self._transports[msg.platform].send(msg)
        except TimeoutError:
            attempt = Attempt.retry("no answer before the lease ended")
        except Exception as exc:  # a transport's bug must not end the sender
            log.exception("outbox %s: the %s transport raised", msg.id, msg.platform)
            attempt = Attempt.retry(f"transport raised {type(exc).__name__}")
        self._outcomes.append((msg, attempt))

    async def _record(
        self, session: AsyncSession, ended: Sequence[tuple[Outgoing, Attempt]], now: datetime
    ) -> list[tuple[Outgoing, Attempt, dict[str, Any]]]:
        """Record the attempts whose rows are still theirs (same `attempts`): the sent ones in
        one statement (nearly all of them), each other one in its own; with the new values."""
        sent = [(msg, attempt) for msg, attempt in ended if attempt.outcome is Outcome.SENT]
        batches = [(sent, recorded(Attempt.sent(), 0, now, self._cap_s))] if sent else []
        batches += [([(msg, attempt)], recorded(attempt, msg.attempt, now, self._cap_s,
                                                tried_before=msg.reply_tried))
                    for msg, attempt in ended if attempt.outcome is not Outcome.SENT]  # fmt: skip
        kept = []
        for batch, values in batches:
            claims = [(msg.id, msg.attempt) for msg, _ in batch]
            ours = set(await session.scalars(
                update(OutboxMessage)
                .where(tuple_(OutboxMessage.id, OutboxMessage.attempts).in_(claims),
                       OutboxMessage.state == PENDING)
                .values(values)
                .returning(OutboxMessage.id)
                .execution_options(synchronize_session=False)
            ))  # fmt: skip
            for msg, attempt in batch:
                if msg.id in ours:
                    kept.append((msg, attempt, values))
                else:
                    log.warning("outbox %s: attempt %s ended after its lease; its outcome is "
                                "dropped", msg.id, msg.attempt)  # fmt: skip
        ended_for_good = [msg.id for msg, attempt, _ in kept
                          if msg.recipients and attempt.outcome in FOR_GOOD]  # fmt: skip
        if ended_for_good:  # no user id outlives its batch's send; the count stays
            await session.execute(
                update(OutboxMessage).where(OutboxMessage.id.in_(ended_for_good))
                .values(recipients=[]).execution_options(synchronize_session=False)
            )  # fmt: skip
        return kept

    def _recorded(self, msg: Outgoing, attempt: Attempt, values: dict[str, Any]) -> None:
        """Counted and told, once committed; a retry's due time kept to wake for it."""
        self.counts[msg.platform, attempt.outcome] += 1
        if attempt.outcome is Outcome.FAILED:
            log.warning("outbox %s to %s failed for good: %s", msg.id, msg.platform, attempt.error)
        elif attempt.outcome is Outcome.RETRY:
            next_at: datetime = values["next_at"]
            heapq.heappush(self._retries, next_at)
            log.info("outbox %s to %s: attempt %s to be retried at %s: %s", msg.id, msg.platform,
                     msg.attempt, next_at.isoformat(), attempt.error)  # fmt: skip

    def _ended_send(self, task: asyncio.Task[None]) -> None:
        for tasks in self._in_flight.values():
            tasks.discard(task)
        self._woken.set()  # its outcome is to be recorded; the target's next row may follow

    async def _drain(self) -> None:
        """Let the sends in flight end, cancel what overstays, record what ended."""
        tasks = set().union(*self._in_flight.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.lease_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._outcomes:
            await self._round(claim=False)
