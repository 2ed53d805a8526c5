"""Apply a batch of validated gateway messages in one transaction, and say what changed.

One transaction per batch (not per message) is what lets the ingest keep up with a burst:
a handful of bulk statements instead of a round trip per message. Steps:

0. lock (PostgreSQL) the batch's gateways in gw_id order, creating them on first sight; a
   status naming a new run of seqs means the gateway's seq started again (a replaced
   gateway, or a lost outbox): forget its seqs (`_restarts`); refuse what no gateway could
   have sent (`plausibility`);
1. claim (gw, seq) in SeenMessage with one insert-if-absent; what was already there is a
   duplicate and goes no further;
2. keep, of each unit's fresh states, the newest whose whole payload is valid (see
   `_newest_states`: only the states that could be kept are validated beyond the envelope);
3. load (PostgreSQL: lock, in a fixed order) the units, ports and commands the fresh
   messages touch, creating units on first sight;
4. fold the messages into the rows in seq order (`handlers.py`); units and existing ports
   are detached from the session first and written back with one executemany UPDATE by
   primary key per table (the ORM flushed one UPDATE per row);
5. seq gaps, receipt times, events (insert-if-absent on event_id);
6. diff the live views before and after: the ChangeSet; and what the batch settled per
   gateway, for its receipts (`receipts`).

Two server processes sharing the ingest may race to create the same unit; the loser
rolls back and the batch is retried.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Select, Table, bindparam, delete, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.payloads import CommandResult, GatewayStatus, UnitEvent, UnitState
from protocol.topics import UnitAddress
from server.db.models import CommandRow, Gateway, Port, SeenMessage, SeqGap, Unit, UnitEventRow
from server.db.session import Database
from server.ingest import journal, snapshot
from server.ingest.batch import Batch, UnitKey
from server.ingest.changeset import ChangeSet, EventRecord
from server.ingest.handlers import PORT_STATE_COLUMNS, RETIRED_RUNS, UNIT_STATE_COLUMNS
from server.ingest.plausibility import DEFAULT_BOUNDS, Bounds, refused
from server.ingest.receipts import Settled, settlement
from server.ingest.router import Inbound, IngestCounters, complete
from server.ingest.seqs import new_gaps, without

log = logging.getLogger(__name__)

RETRIES = 3
_SEEN = cast(Table, SeenMessage.__table__)
"""The table itself: a Core executemany, without the ORM's per-row bulk-insert bookkeeping."""
_UNITS = cast(Table, Unit.__table__)
_PORTS = cast(Table, Port.__table__)


async def apply_batch(
    db: Database,
    messages: Sequence[Inbound[Any]],
    counters: IngestCounters,
    *,
    owner: str,
    bounds: Bounds = DEFAULT_BOUNDS,
    settled: list[Settled] | None = None,
) -> ChangeSet:
    """Apply `messages` in one transaction (retried on a lost race); count what happened.

    The ChangeSet is journalled in that transaction for `owner` to hand out (`journal`).
    `settled`, when given, receives what the committed batch settled for good per gateway
    (stored now or before, or dropped as malformed): what the gateways are told
    (`receipts`), so that they stop sending it.
    """
    unique = list({(m.gw_id, m.seq): m for m in reversed(messages)}.values())
    unique.reverse()
    counters.duplicates += len(messages) - len(unique)
    checked: dict[tuple[str, int], Inbound[Any] | None] = {}

    def whole(message: Inbound[Any]) -> Inbound[Any] | None:
        """`complete`, once per message whatever the retries (it logs and counts)."""
        key = (message.gw_id, message.seq)
        if key not in checked:
            checked[key] = complete(message, counters)
        return checked[key]

    for attempt in range(1, RETRIES + 1):
        try:
            async with db.transaction() as session:
                changeset, tally = await _apply(session, unique, whole, bounds)
                changeset = await journal.record(session, changeset, owner, datetime.now(UTC))
        except (IntegrityError, DBAPIError) as exc:
            if attempt == RETRIES or not _retryable(exc):
                raise
            counters.batch_retries += 1
            log.info("batch of %d lost a race (%s); retrying", len(unique), type(exc).__name__)
            continue
        counters.batches += 1
        counters.applied += tally.applied
        counters.duplicates += len(unique) - tally.applied - tally.malformed
        counters.history += tally.history
        counters.superseded += tally.superseded
        counters.seq_restarts += tally.restarts
        counters.implausible += tally.implausible
        if settled is not None:
            settled.extend(tally.settled)
        return changeset
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class _Tally:
    applied: int
    history: int
    superseded: int
    malformed: int
    """Fresh states whose envelope was valid but the rest not (counted by `complete`)."""
    restarts: int
    """Gateways whose seq started again (`_restarts`)."""
    implausible: int = 0
    settled: tuple[Settled, ...] = ()


def _retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    text = str(exc.orig).lower()
    return "deadlock" in text or "could not serialize" in text


Complete = Callable[[Inbound[Any]], Inbound[Any] | None]


async def _apply(
    session: AsyncSession, messages: list[Inbound[Any]], whole: Complete, bounds: Bounds
) -> tuple[ChangeSet, _Tally]:
    postgres = session.get_bind().dialect.name == "postgresql"
    gateways = await _gateways(session, sorted({m.gw_id for m in messages}), postgres)
    messages, restarts = await _restarts(session, gateways, messages)
    messages, implausible = _plausible(gateways, messages, bounds)
    fresh = await _claim(session, messages)
    if not fresh:
        settled = tuple(settlement(gateways, messages))
        return ChangeSet(), _Tally(0, 0, 0, 0, restarts, implausible, settled)
    fresh.sort(key=lambda m: (m.gw_id, m.seq))
    kept, superseded, malformed = _newest_states(fresh, whole)
    batch = await _load(session, gateways, kept, postgres)
    before = snapshot.take(batch.gateways, batch.units.values(), batch.ports)
    _detach_states(session, batch)
    for message in kept:
        message.route.handler(batch, message)
    session.add_all(batch.new_ports)
    await _write_states(session, batch)
    await _track_gateways(session, batch, fresh)
    events = await _store_events(session, batch, postgres)
    after = snapshot.take(batch.gateways, batch.units.values(), batch.ports)
    at = max(m.received_at for m in fresh)
    changeset = snapshot.changes(before, after, at, events, batch.answers)
    settled = tuple(settlement(gateways, messages))  # after the handlers: a birth names its run
    tally = _Tally(len(fresh) - malformed, batch.history, superseded, malformed, restarts,
                   implausible, settled)  # fmt: skip
    return changeset, tally


def _plausible(
    gateways: dict[str, Gateway], messages: list[Inbound[Any]], bounds: Bounds
) -> tuple[list[Inbound[Any]], int]:
    """`messages` less those `plausibility.refused` (logged); how many were refused."""
    by_gateway: dict[str, list[Inbound[Any]]] = defaultdict(list)
    for m in messages:
        by_gateway[m.gw_id].append(m)
    out: set[int] = set()
    for gw_id, own in by_gateway.items():
        gateway = gateways[gw_id]
        own.sort(key=lambda m: m.seq)
        for message, reason in refused(own, gateway.max_seq, gateway.last_seen_at, bounds):
            out.add(id(message))
            log.warning("refusing %s from gateway %s seq %d: %s", message.route.kind, gw_id,
                        message.seq, reason)  # fmt: skip
    if not out:
        return messages, 0
    return [m for m in messages if id(m) not in out], len(out)


def _newest_states(
    fresh: list[Inbound[Any]], whole: Complete
) -> tuple[list[Inbound[Any]], int, int]:
    """`fresh` (in order) with each unit's newest valid state only; superseded, malformed.

    The ChangeSet compares the batch's start and end, so applying only the newest state per
    unit changes nothing a listener sees (events still report every fault), and a burst of
    snapshots costs one row update per unit rather than one per message.

    States may come deferred (only their envelope validated, see `router.complete`). The
    rule: per unit, the fresh states are validated whole from the newest down until one is
    valid, which is kept; each invalid one on the way is logged and counted malformed and
    applies nothing; the older ones are superseded without being validated further. So a
    state with a valid envelope is claimed as seen (and counts towards the gateway's seqs,
    never as a gap) whatever the rest of it; one with an invalid envelope was dropped at
    routing, malformed and never claimed. Every other kind of message is validated whole
    at routing and kept.
    """
    by_unit: dict[tuple[str, Any], list[Inbound[Any]]] = defaultdict(list)
    for m in fresh:
        if m.route.model is UnitState:
            by_unit[(m.gw_id, m.unit)].append(m)
    kept_states: dict[tuple[str, int], Inbound[Any]] = {}
    malformed = 0
    for states in by_unit.values():
        for m in reversed(states):  # `fresh` is in seq order per gateway
            full = whole(m)
            if full is not None:
                kept_states[(m.gw_id, m.seq)] = full
                break
            malformed += 1
    kept = []
    for m in fresh:
        if m.route.model is not UnitState:
            kept.append(m)
        elif (full := kept_states.get((m.gw_id, m.seq))) is not None:
            kept.append(full)
    total = sum(len(s) for s in by_unit.values())
    return kept, total - len(kept_states) - malformed, malformed


def _detach_states(session: AsyncSession, batch: Batch) -> None:
    """Take the loaded units and ports out of the session: `_write_states` writes them."""
    for unit in batch.units.values():
        session.expunge(unit)
    for ports in batch.ports.values():
        for port in ports.values():
            session.expunge(port)


async def _write_states(session: AsyncSession, batch: Batch) -> None:
    """The columns `on_unit_state` sets, for every unit it applied a state to and its ports.

    Ports created in this batch are not among them: the session inserts those.
    """
    if not batch.applied_units:
        return
    created = {id(port) for port in batch.new_ports}
    units = [{"pk": u.id, **{c: getattr(u, c) for c in UNIT_STATE_COLUMNS}}
             for u in batch.applied_units.values()]  # fmt: skip
    ports = [
        {"pk": p.id, **{c: getattr(p, c) for c in PORT_STATE_COLUMNS}}
        for unit_pk in batch.applied_units
        for p in batch.ports.get(unit_pk, {}).values()
        if id(p) not in created
    ]
    await session.execute(update(_UNITS).where(_UNITS.c.id == bindparam("pk")), units)
    if ports:
        await session.execute(update(_PORTS).where(_PORTS.c.id == bindparam("pk")), ports)


def _insert(postgres: bool, table: type[Any]) -> Any:
    return (pg_insert if postgres else sqlite_insert)(table)


async def _restarts(
    session: AsyncSession, gateways: dict[str, Gateway], messages: list[Inbound[Any]]
) -> tuple[list[Inbound[Any]], int]:
    """Forget the seqs of each gateway whose seq started again; the messages still to apply.

    `seq` survives restarts because the outbox keeps it, so a gateway that comes back with
    a new outbox (a spare put in its place, a new SD card) numbers from 0 again. Left
    alone, every message it sends would be a "duplicate" (and every state history) until
    its seq passed the old one, and its shelter would stay offline. Its statuses name the
    outbox's run of seqs (`seq_run`): on a status naming a new run, the gateway's seen seqs
    and seq marks are forgotten and it is followed afresh from there; its messages that
    arrived before that status in this batch belong to the old run and are dropped. The
    old run is retired: a status from it (its Last Will, published when the spare takes
    over the MQTT session, or a late copy of its birth) is dropped too, whatever its seq.
    """
    statuses = [i for i, m in enumerate(messages) if isinstance(m.payload, GatewayStatus)]
    if not statuses:
        return messages, 0
    restarted: dict[str, int] = {}
    for i in statuses:
        status = messages[i]
        gateway = gateways[status.gw_id]
        run = status.payload.seq_run
        if not _new_run(gateway, run):
            continue
        log.warning("gateway %s started its seq again (run %s after %s, seq %d after %d): a "
                    "new or replaced outbox; forgetting its earlier seqs", gateway.gw_id, run,
                    gateway.seq_run, status.seq, gateway.max_seq)  # fmt: skip
        restarted[gateway.gw_id] = i
        await session.execute(delete(SeenMessage).where(SeenMessage.gw_id == gateway.gw_id))
        await session.execute(update(Unit).where(Unit.gw_id == gateway.gw_id).values(state_seq=-1))
        old, gateway.seq_run = gateway.seq_run, run
        assert old is not None  # `_new_run`
        gateway.max_seq = gateway.status_seq = -1
        gateway.retired_seq_runs = [*gateway.retired_seq_runs, old][-RETIRED_RUNS:]

    def current(i: int, m: Inbound[Any]) -> bool:
        if i < restarted.get(m.gw_id, -1):
            return False
        return not (
            isinstance(m.payload, GatewayStatus)
            and m.payload.seq_run in gateways[m.gw_id].retired_seq_runs
        )

    return [m for i, m in enumerate(messages) if current(i, m)], len(restarted)


def _new_run(gateway: Gateway, run: str | None) -> bool:
    """A status names a run of seqs other than the one followed, and not a retired one."""
    return (
        run is not None
        and gateway.seq_run is not None
        and run != gateway.seq_run
        and run not in gateway.retired_seq_runs
    )


async def _claim(session: AsyncSession, messages: list[Inbound[Any]]) -> list[Inbound[Any]]:
    """The messages whose (gw, seq) was not seen before, now marked seen.

    A range read per gateway and a plain bulk insert: far cheaper than insert-if-absent with
    RETURNING. Another process inserting the same (gw, seq) meanwhile makes the insert fail;
    the batch is then retried and sees it as seen.
    """
    by_gateway: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        by_gateway[m.gw_id].append(m.seq)
    seen: set[tuple[str, int]] = set()
    for gw_id, seqs in by_gateway.items():
        query = select(SeenMessage.seq).where(
            SeenMessage.gw_id == gw_id, SeenMessage.seq.between(min(seqs), max(seqs))
        )
        seen.update((gw_id, seq) for seq in await session.scalars(query))
    fresh = [m for m in messages if (m.gw_id, m.seq) not in seen]
    if fresh:
        rows = [{"gw_id": m.gw_id, "seq": m.seq, "received_at": m.received_at} for m in fresh]
        await session.execute(insert(_SEEN), rows)
    return fresh


async def _load(
    session: AsyncSession, gateways: dict[str, Gateway], fresh: list[Inbound[Any]], postgres: bool
) -> Batch:
    unit_keys: set[UnitKey] = set()
    whole: set[str] = set()  # gateways whose status may change: all their units matter
    cmd_ids: set[str] = set()
    for m in fresh:
        if isinstance(m.payload, UnitState | UnitEvent) and m.unit is not None:
            unit_keys.add((m.gw_id, str(m.unit)))
        elif isinstance(m.payload, GatewayStatus):
            whole.add(m.gw_id)
            unit_keys.update((m.gw_id, u) for u in _valid_units(m.payload.units))
        elif isinstance(m.payload, CommandResult):
            cmd_ids.add(m.payload.cmd_id)
    units = await _units(session, unit_keys, whole, postgres)
    ports: dict[int, dict[int, Port]] = defaultdict(dict)
    if units:
        query = select(Port).where(Port.unit_pk.in_([u.id for u in units.values()]))
        for port in await session.scalars(query):
            ports[port.unit_pk][port.port] = port
    commands: dict[str, CommandRow] = {}
    if cmd_ids:
        rows = await session.scalars(select(CommandRow).where(CommandRow.cmd_id.in_(cmd_ids)))
        commands = {row.cmd_id: row for row in rows}
    return Batch(gateways, units, dict(ports), commands)


async def _gateways(session: AsyncSession, gw_ids: list[str], postgres: bool) -> dict[str, Gateway]:
    """Every gateway of the batch, locked in gw_id order (created on first sight)."""
    query = select(Gateway).where(Gateway.gw_id.in_(gw_ids)).order_by(Gateway.gw_id)
    found = {g.gw_id: g for g in await session.scalars(_locked(query, postgres))}
    for gw_id in gw_ids:
        if gw_id not in found:
            found[gw_id] = Gateway(gw_id=gw_id, state="offline", status_seq=-1, max_seq=-1,
                                   silent=False, retired_seq_runs=[])  # fmt: skip
            session.add(found[gw_id])
    return found


async def _units(
    session: AsyncSession, keys: set[UnitKey], whole: set[str], postgres: bool
) -> dict[UnitKey, Unit]:
    conditions = []
    if keys:
        conditions.append(tuple_(Unit.gw_id, Unit.unit).in_(sorted(keys)))
    if whole:
        conditions.append(Unit.gw_id.in_(sorted(whole)))
    if not conditions:
        return {}
    query = select(Unit).where(or_(*conditions)).order_by(Unit.id)
    found = {(u.gw_id, u.unit): u for u in await session.scalars(_locked(query, postgres))}
    missing = [
        Unit(gw_id=gw_id, unit=unit, online=False, state_seq=-1, alarms=[], stale=False)
        for gw_id, unit in sorted(keys - found.keys())
    ]
    if missing:
        session.add_all(missing)
        await session.flush()  # their ids, for the ports about to be created
        found.update(((u.gw_id, u.unit), u) for u in missing)
    return found


def _locked(query: Select[Any], postgres: bool) -> Select[Any]:
    """Row locks on PostgreSQL (SQLite already holds its write lock from BEGIN)."""
    return query.with_for_update() if postgres else query


def _valid_units(names: Iterable[str]) -> list[str]:
    valid = []
    for name in names:
        try:
            valid.append(str(UnitAddress.parse(name)))
        except ValueError:
            log.warning("ignoring malformed unit %r in a gateway inventory", name[:80])
    return valid


async def _track_gateways(session: AsyncSession, batch: Batch, fresh: list[Inbound[Any]]) -> None:
    """Receipt time, silence cleared, max_seq, clock skew, and a seq-gap record that stays
    true.

    A gap is a jump above max_seq less what another server process sharing the stream
    already stored (the gateway's row lock orders our batches, so its commits are visible
    here) and less the Last Will seqs reserved after births (never in the outbox: nothing
    could send them again); seqs arriving late (replays, resends, another process's share,
    a birth and so its will) fill the gaps recorded before them.
    """
    by_gateway: dict[str, list[Inbound[Any]]] = defaultdict(list)
    for m in fresh:
        by_gateway[m.gw_id].append(m)
    for gw_id, messages in by_gateway.items():
        gateway = batch.gateway(gw_id)
        gateway.last_seen_at = max(m.received_at for m in messages)
        gateway.silent = False
        wills = {m.seq + 1 for m in messages if _is_birth(m.payload)}
        reserved = wills | ({gateway.status_seq + 1} if gateway.state == "online" else set())
        seqs = [m.seq for m in messages]
        before = gateway.max_seq
        newest = max(messages, key=lambda m: m.seq)
        measured = getattr(newest.payload, "ts", None)
        if newest.seq > before and measured is not None:  # the gateway's present, no replay
            gateway.clock_skew_s = (measured - newest.received_at).total_seconds()
        max_seq, gaps = new_gaps(before, seqs, reserved)
        gateway.max_seq = max_seq
        if gaps:
            gaps = without(gaps, [*reserved, *await _seen_within(session, gw_id, gaps)])
        if late := [seq for seq in [*seqs, *wills] if seq <= before]:
            await _fill_gaps(session, gw_id, late)
        for first, last in gaps:
            log.info("gateway %s skipped seqs %d..%d", gw_id, first, last)
            session.add(SeqGap(gw_id=gw_id, first_missing=first, last_missing=last,
                               detected_at=gateway.last_seen_at))  # fmt: skip


async def _seen_within(session: AsyncSession, gw_id: str, gaps: list[tuple[int, int]]) -> list[int]:
    ranges = or_(*(SeenMessage.seq.between(first, last) for first, last in gaps))
    query = select(SeenMessage.seq).where(SeenMessage.gw_id == gw_id, ranges)
    return list(await session.scalars(query))


async def _fill_gaps(session: AsyncSession, gw_id: str, late: list[int]) -> None:
    """Strike `late` seqs off the gateway's recorded gaps (splitting a gap they fall inside)."""
    query = select(SeqGap).where(
        SeqGap.gw_id == gw_id, SeqGap.first_missing <= max(late), SeqGap.last_missing >= min(late)
    )
    for row in await session.scalars(query):
        left = without([(row.first_missing, row.last_missing)], late)
        if left == [(row.first_missing, row.last_missing)]:
            continue
        await session.delete(row)
        session.add_all(
            SeqGap(gw_id=gw_id, first_missing=first, last_missing=last,
                   detected_at=row.detected_at)
            for first, last in left
        )  # fmt: skip


def _is_birth(payload: object) -> bool:
    return isinstance(payload, GatewayStatus) and payload.state == "online"


async def _store_events(session: AsyncSession, batch: Batch, postgres: bool) -> list[EventRecord]:
    """Insert events whose event_id is new; the records of those, in arrival order."""
    if not batch.events:
        return []
    unique = list({e["event_id"]: e for e in reversed(batch.events)}.values())[::-1]
    statement = (
        _insert(postgres, UnitEventRow).on_conflict_do_nothing().returning(UnitEventRow.event_id)
    )
    stored = set((await session.execute(statement, unique)).scalars())
    records = []
    for event in unique:
        if event["event_id"] not in stored:
            continue
        unit = batch.units.get((event["gw_id"], event["unit"]))
        records.append(
            EventRecord(
                event_id=event["event_id"],
                gw_id=event["gw_id"],
                unit=event["unit"],
                unit_pk=unit.id if unit else None,
                station_id=unit.station_id if unit else None,
                kind=event["kind"],
                port=event["port"],
                alarm=event["alarm"],
                error=event["error"],
                detail=event["detail"],
                ts=event["ts"],
                historical=event["historical"],
            )
        )
    return records


def receipt_time() -> datetime:
    """Server receipt time, stamped as a message comes off the socket."""
    return datetime.now(UTC)
