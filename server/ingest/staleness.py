"""Silence as a signal: a unit with no state, or a gateway with no message, for 3 report
periods is offline. The app runs `mark_stale` periodically (MqttLink does, between batches).

The decision is a pure function of receipt times; the shell claims the rows with a
conditional UPDATE, so two server processes sweeping at once report each change once.

Silence is only news when we were listening and have written down what we heard: while
the server's own broker connection is down, or until it has been up for those 3 periods
again, every gateway looks silent; while the ingest holds messages it could not apply yet
(the database was down, and it is still catching up), the receipt times in the database
are behind what we heard. `may_judge_silence` says no in both cases. A sweep then would
page crews about every shelter and move bookings away from healthy ports; it waits
instead. Readers still see an overdue unit as stale (`live.is_stale`), so no new booking
goes to a port we have not heard from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from server.db.models import Gateway, Port, Unit
from server.db.session import Database
from server.ingest import journal, snapshot
from server.ingest.changeset import ChangeSet
from server.ingest.live import stale_cutoff


@dataclass(frozen=True, slots=True)
class Heard:
    """When we last heard from something (None: never) and whether it is already stale."""

    key: int | str
    last_at: datetime | None
    stale: bool


def overdue(items: Iterable[Heard], now: datetime, report_period_s: float) -> list[int | str]:
    """Keys silent for STALE_PERIODS report periods and not yet marked.

    Never heard from means never online: nothing to mark.
    """
    cutoff = stale_cutoff(now, report_period_s)
    return [i.key for i in items if not i.stale and i.last_at is not None and i.last_at < cutoff]


def may_judge_silence(
    hearing_since: datetime | None,
    now: datetime,
    report_period_s: float,
    unapplied_since: datetime | None = None,
) -> bool:
    """Whether silence up to `now` means anything: we have been listening long enough, and
    the database holds what we heard.

    `unapplied_since` is when the oldest message received and not yet applied arrived
    (None: nothing held). Everything heard before it is in the database, so a gateway
    reporting every period has a receipt time after `unapplied_since` minus one period;
    with the ingest at most one period behind, that is never 3 periods old.
    """
    listening = hearing_since is not None and hearing_since <= stale_cutoff(now, report_period_s)
    behind = unapplied_since is not None and unapplied_since < now - timedelta(
        seconds=report_period_s
    )
    return listening and not behind


async def mark_stale(
    db: Database, now: datetime, report_period_s: float, *, owner: str
) -> ChangeSet:
    """Mark overdue units stale and overdue online gateways silent; what that changed.

    The ChangeSet is journalled for `owner` to hand out (`journal`).
    """
    cutoff = stale_cutoff(now, report_period_s)
    async with db.transaction() as session:
        unit_candidates = await session.execute(
            select(Unit.id, Unit.received_at, Unit.stale).where(
                Unit.stale.is_(False), Unit.received_at < cutoff
            )
        )
        gateway_candidates = await session.execute(
            select(Gateway.gw_id, Gateway.last_seen_at, Gateway.silent).where(
                Gateway.silent.is_(False), Gateway.state == "online", Gateway.last_seen_at < cutoff
            )
        )
        unit_ids = [int(k) for k in overdue((Heard(*r) for r in unit_candidates), now,
                                            report_period_s)]  # fmt: skip
        gw_ids = [str(k) for k in overdue((Heard(*r) for r in gateway_candidates), now,
                                          report_period_s)]  # fmt: skip
        if not unit_ids and not gw_ids:
            return ChangeSet()
        query = select(Unit).where((Unit.id.in_(unit_ids)) | (Unit.gw_id.in_(gw_ids)))
        units = list(await session.scalars(query.order_by(Unit.id)))
        all_gw_ids = sorted({u.gw_id for u in units} | set(gw_ids))
        gateways = {
            g.gw_id: g
            for g in await session.scalars(select(Gateway).where(Gateway.gw_id.in_(all_gw_ids)))
        }
        ports: dict[int, dict[int, Port]] = defaultdict(dict)
        unit_pks = [u.id for u in units]
        for port in await session.scalars(select(Port).where(Port.unit_pk.in_(unit_pks))):
            ports[port.unit_pk][port.port] = port
        before = snapshot.take(gateways, units, ports)
        claimed_units = set(
            await session.scalars(
                update(Unit)
                .where(Unit.id.in_(unit_ids), Unit.stale.is_(False), Unit.received_at < cutoff)
                .values(stale=True)
                .returning(Unit.id)
                .execution_options(synchronize_session=False)
            )
        )
        claimed_gateways = set(
            await session.scalars(
                update(Gateway)
                .where(
                    Gateway.gw_id.in_(gw_ids),
                    Gateway.silent.is_(False),
                    Gateway.last_seen_at < cutoff,
                )
                .values(silent=True)
                .returning(Gateway.gw_id)
                .execution_options(synchronize_session=False)
            )
        )
        for unit in units:
            unit.stale = unit.stale or unit.id in claimed_units
        for gw_id in claimed_gateways:
            gateways[gw_id].silent = True
        after = snapshot.take(gateways, units, ports)
        return await journal.record(session, snapshot.changes(before, after, now), owner, now)
