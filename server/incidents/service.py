"""The incidents' shell: load the unresolved incidents, ask the rules, write and audit.

`on_changes` is the listener ingest calls after applying a batch; `tick` runs every few
seconds from the app (debounced auto-resolve, escalation, depletion forecasts); people
`acknowledge` and `resolve` through the API and LINE WORKS buttons (`acknowledge_in` and
`resolve_in`, in the caller's transaction). Every transition writes an audit entry in the
same transaction as the change, and is handed, in that transaction too, to the optional
`TransitionHook` (the crews' pager, `server.lineworks.pager`), one batch at a time so that
what happened together can be told together.

Several server processes may run this at once (shared MQTT ingest): two of them opening
the same incident collide on the database's unique index on open `dedupe_key`s; the loser
retries, sees the winner's incident, and counts itself as an occurrence of it or a touch.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.access.places import stations_of
from server.db.models import Incident
from server.db.session import Database
from server.drills.scope import drill_of
from server.errors import Conflict, Invalid, NotFound
from server.incidents.depletion import forecast_signals
from server.incidents.kinds import IncidentView, Policy, State, worse
from server.incidents.rules import (
    Action,
    AutoResolve,
    Clear,
    Escalate,
    Open,
    Recur,
    Touch,
    Unmute,
    decide,
    due,
    signals_from_changes,
)
from server.ingest.changeset import ChangeSet
from server.settings import Settings

Clock = Callable[[], datetime]
ATTEMPTS = 3


class Transition(NamedTuple):
    row: Incident
    what: str
    """As audited (`incident.{what}`): opened, recurred, updated, condition_cleared,
    resolved (by `row.resolved_by`), escalated, acknowledged."""


class TransitionHook(Protocol):
    async def transitioned(
        self, session: AsyncSession, changes: Sequence[Transition], now: datetime
    ) -> None:
        """Called in the transaction of the changes, after they are flushed."""


class IncidentService:
    """Made once in the app lifespan; holds no state between calls but its collaborators."""

    def __init__(
        self, db: Database, settings: Settings, clock: Clock, hook: TransitionHook | None = None
    ) -> None:
        self._db = db
        self._settings = settings
        self._clock = clock
        self._hook = hook
        self.policy = Policy.from_settings(settings)

    async def on_changes(self, changes: ChangeSet) -> None:
        """React to one ingest batch: open, count, touch or clear incidents."""
        gateways = {item.gw_id for group in _items(changes) for item in group}
        if not gateways:
            return

        async def step(session: AsyncSession) -> None:
            now = self._clock()
            rows = await _unresolved(session, Incident.gw_id.in_(gateways))
            views = [view_of(row) for row in rows.values()]
            signals = signals_from_changes(changes, views, self.policy)
            muted = await self._muted(session, {s.dedupe_key for s in signals}, now)
            await self._apply(session, rows, decide(signals, _by_key(views), muted), now)

        await self._retrying(step)

    async def tick(self, now: datetime | None = None) -> None:
        """Forecasts, then auto-resolve and escalation, as of `now` (the clock's by default)."""

        async def step(session: AsyncSession) -> None:
            at = now or self._clock()
            rows = await _unresolved(session)
            views = [view_of(row) for row in rows.values()]
            signals = await forecast_signals(session, views, self._settings, self.policy, at)
            muted = await self._muted(session, {s.dedupe_key for s in signals}, at)
            await self._apply(session, rows, decide(signals, _by_key(views), muted), at)
            await self._apply(session, rows, due(map(view_of, rows.values()), at, self.policy), at)

        await self._retrying(step)

    async def acknowledge(self, incident_id: int, actor: str) -> IncidentView:
        """Someone is on it: stops escalation. Idempotent; a resolved incident is a 409."""
        async with self._db.transaction() as session:
            [view] = await self.acknowledge_in(session, [incident_id], actor)
            return view

    async def acknowledge_in(
        self, session: AsyncSession, incident_ids: Sequence[int], actor: str
    ) -> builtins.list[IncidentView]:
        """`acknowledge` several at once in the caller's transaction (a LINE WORKS "acknowledge
        all"); an unknown one is a 404 and a resolved one a 409 before anything changes."""
        rows = await _locked(session, incident_ids)
        for row in rows:
            if row.state == State.RESOLVED:
                raise Conflict(f"incident {row.id} is resolved", code="incident_resolved")
        now, done = self._clock(), list[Transition]()
        for row in rows:
            if row.state == State.OPEN:
                row.state, row.acknowledged_at, row.acknowledged_by = State.ACKNOWLEDGED, now, actor
                await _audit(session, actor, "acknowledged", row, now, {})
                done.append(Transition(row, "acknowledged"))
        await self._told(session, done, now)
        return [view_of(row) for row in rows]

    async def resolve(self, incident_id: int, actor: str) -> IncidentView:
        """Done, whatever the condition says. Idempotent.

        If the condition is still active, it does not reopen the incident until it has
        cleared and come back (see `Policy.mute_after_resolve`).
        """
        async with self._db.transaction() as session:
            [view] = await self.resolve_in(session, [incident_id], actor)
            return view

    async def resolve_in(
        self, session: AsyncSession, incident_ids: Sequence[int], actor: str
    ) -> builtins.list[IncidentView]:
        """`resolve` several at once in the caller's transaction; an unknown one is a 404."""
        rows = await _locked(session, incident_ids)
        now, done = self._clock(), list[Transition]()
        for row in rows:
            if row.state != State.RESOLVED:
                row.state, row.resolved_at, row.resolved_by = State.RESOLVED, now, actor
                detail = {"auto": False, "condition_active": row.condition_cleared_at is None}
                await _audit(session, actor, "resolved", row, now, detail)
                done.append(Transition(row, "resolved"))
        await self._told(session, done, now)
        return [view_of(row) for row in rows]

    async def get(self, incident_id: int) -> IncidentView:
        async with self._db.transaction() as session:
            return view_of(await _row(session, incident_id))

    async def list(
        self,
        state: str | None = None,
        station_id: str | None = None,
        limit: int = 500,
        *,
        municipality: str | None = None,
    ) -> builtins.list[IncidentView]:
        """Newest first; `state` one of open / acknowledged / resolved; `municipality`: at
        its stations only."""
        query = select(Incident).order_by(Incident.opened_at.desc(), Incident.id.desc())
        if state is not None:
            if state not in set(State):
                raise Invalid(f"state {state!r} is not one of {', '.join(State)}")
            query = query.where(Incident.state == state)
        if station_id is not None:
            query = query.where(Incident.station_id == station_id)
        if municipality is not None:
            query = query.where(Incident.station_id.in_(stations_of(municipality)))
        async with self._db.transaction() as session:
            return [view_of(row) for row in await session.scalars(query.limit(limit))]

    async def _retrying(self, step: Callable[[AsyncSession], Awaitable[None]]) -> None:
        for attempt in range(ATTEMPTS):
            try:
                async with self._db.transaction() as session:
                    await step(session)
                return
            except IntegrityError:
                if attempt == ATTEMPTS - 1:
                    raise

    async def _told(self, session: AsyncSession, done: Sequence[Transition], now: datetime) -> None:
        if done and self._hook is not None:
            await session.flush()
            await self._hook.transitioned(session, done, now)

    async def _muted(
        self, session: AsyncSession, keys: set[str], now: datetime
    ) -> dict[str, IncidentView]:
        """Per key, the latest incident a person resolved while its condition was active.

        Queried without the keys (a tick has one per battery): such incidents are few.
        """
        if not keys:
            return {}
        rows = await session.scalars(
            select(Incident)
            .where(
                Incident.state == State.RESOLVED,
                Incident.condition_cleared_at.is_(None),
                Incident.resolved_at >= now - self.policy.mute_after_resolve,
            )
            .order_by(Incident.resolved_at)
        )
        return {row.dedupe_key: view_of(row) for row in rows if row.dedupe_key in keys}

    async def _apply(
        self,
        session: AsyncSession,
        rows: dict[str, Incident],
        actions: Sequence[Action],
        now: datetime,
    ) -> None:
        """Write each action and its audit entry; `rows` (by key) is kept up to date."""
        done: list[Transition] = []

        async def record(what: str, row: Incident, detail: dict[str, Any]) -> None:
            await _audit(session, audit.SYSTEM_ACTOR, what, row, now, detail)
            done.append(Transition(row, what))

        for action in actions:
            if isinstance(action, Open):
                s = action.signal
                drill = await drill_of(session, s.station_id, s.gw_id)
                if drill is not None and drill.ended_at is not None:
                    continue  # an ended drill's gateway going away is no one's incident
                row = Incident(
                    kind=s.kind, dedupe_key=s.dedupe_key, severity=s.severity, state=State.OPEN,
                    station_id=s.station_id, gw_id=s.gw_id, unit=s.unit, port=s.port,
                    detail=s.detail, occurrences=1, opened_at=now, last_seen_at=now,
                    drill_id=drill.id if drill is not None else None,
                )  # fmt: skip
                session.add(row)
                await session.flush()
                rows[s.dedupe_key] = row
                await record("opened", row, _seen(s.at, s.detail))
            elif isinstance(action, Recur | Touch):
                s = action.signal
                row = rows[s.dedupe_key]
                before = row.severity
                row.last_seen_at, row.severity = now, worse(row.severity, s.severity)
                row.detail = s.detail or row.detail
                row.station_id = row.station_id or s.station_id
                if isinstance(action, Recur):
                    row.occurrences += 1
                    row.condition_cleared_at = None
                    detail = {**_seen(s.at, s.detail), "occurrences": row.occurrences}
                    await record("recurred", row, detail)
                elif before != row.severity:  # not on detail: a forecast's minute moves often
                    detail = {**_seen(s.at, s.detail), "severity": row.severity}
                    await record("updated", row, detail)
            elif isinstance(action, Clear):
                row = rows[action.dedupe_key]
                row.condition_cleared_at = now
                await record("condition_cleared", row, _seen(action.at, ""))
            elif isinstance(action, Unmute):
                muted = await _row(session, action.incident_id)
                muted.condition_cleared_at = now
                await record("condition_cleared", muted, _seen(action.at, "after resolve"))
            elif isinstance(action, AutoResolve):
                row = rows.pop(action.dedupe_key)
                row.state, row.resolved_at, row.resolved_by = (
                    State.RESOLVED,
                    now,
                    audit.SYSTEM_ACTOR,
                )
                detail = {"auto": True, "condition_cleared_at": row.condition_cleared_at}
                await record("resolved", row, detail)
            elif isinstance(action, Escalate):
                row = rows[action.dedupe_key]
                row.escalated_at = now
                detail = {"open_for_s": (now - row.opened_at).total_seconds()}
                await record("escalated", row, detail)
        await session.flush()
        await self._told(session, done, now)


def view_of(row: Incident) -> IncidentView:
    return IncidentView(
        id=row.id, kind=row.kind, dedupe_key=row.dedupe_key, severity=row.severity,
        state=row.state, station_id=row.station_id, gw_id=row.gw_id, unit=row.unit,
        port=row.port, detail=row.detail, occurrences=row.occurrences, opened_at=row.opened_at,
        last_seen_at=row.last_seen_at, condition_cleared_at=row.condition_cleared_at,
        acknowledged_at=row.acknowledged_at, acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at, resolved_by=row.resolved_by, escalated_at=row.escalated_at,
        drill_id=row.drill_id,
    )  # fmt: skip


def subject_of(incident_id: int) -> str:
    """The audit subject of an incident, for the API's history view."""
    return f"incident:{incident_id}"


async def _audit(
    session: AsyncSession, actor: str, what: str, row: Incident, now: datetime,
    detail: dict[str, Any],
) -> None:  # fmt: skip
    detail = {"kind": row.kind, "dedupe_key": row.dedupe_key, "state": row.state, **detail}
    await audit.record(session, actor, f"incident.{what}", subject_of(row.id), detail, at=now)


def _seen(at: datetime, detail: str) -> dict[str, Any]:
    return {"observed_at": at, "detail": detail}


def _items(changes: ChangeSet) -> Iterable[Iterable[Any]]:
    return (changes.ports, changes.units, changes.events, changes.gateways)


def _by_key(views: Iterable[IncidentView]) -> dict[str, IncidentView]:
    return {view.dedupe_key: view for view in views}


async def _unresolved(session: AsyncSession, *where: Any) -> dict[str, Incident]:
    """Locked until the caller's transaction ends (PostgreSQL; SQLite has one writer): two
    server processes deciding on the same incidents take turns, and the second decides on
    what the first wrote (an escalation, an occurrence), never on what it read before.
    Locked in id order, so two callers never wait on each other in a cycle."""
    query = (
        select(Incident)
        .where(Incident.state != State.RESOLVED, *where)
        .order_by(Incident.id)
        .with_for_update()
    )
    return {row.dedupe_key: row for row in await session.scalars(query)}


async def _locked(session: AsyncSession, incident_ids: Sequence[int]) -> list[Incident]:
    """The incidents in the order asked, locked in id order as `_unresolved` locks them; an
    unknown one is NotFound."""
    query = select(Incident).where(Incident.id.in_(incident_ids)).order_by(Incident.id)
    found = {row.id: row for row in await session.scalars(query.with_for_update())}
    for incident_id in incident_ids:
        if incident_id not in found:
            raise NotFound(f"incident {incident_id} is unknown")
    return [found[incident_id] for incident_id in incident_ids]


async def _row(session: AsyncSession, incident_id: int) -> Incident:
    row = await session.get(Incident, incident_id)
    if row is None:
        raise NotFound(f"incident {incident_id} is unknown")
    return row
