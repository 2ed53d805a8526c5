"""How long the ingest remembers the (gateway, seq) pairs it has seen: one row per message.

Those rows only answer "is this a duplicate?" for QoS 1 redeliveries and replays, which come
within minutes or, after an outage, within the gateway outbox's reach (days). What keeps a
late copy harmless beyond that is elsewhere: the newest state per unit and status per
gateway win by seq, and events are kept once per `event_id`. So rows older than the
retention (a week by default) are deleted, in bounded chunks so no sweep holds the table
for long; without this, a gateway fleet adds millions of rows a day.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import delete, select

from server.db.models import SeenMessage
from server.db.session import Database

CHUNK: Final = 10_000


async def forget_seen(db: Database, before: datetime) -> int:
    """Delete the seen-message rows received before `before`; how many went."""
    total = 0
    while True:
        async with db.transaction() as session:
            oldest = (
                select(SeenMessage.gw_id, SeenMessage.seq)
                .where(SeenMessage.received_at < before)
                .limit(CHUNK)
            )
            keys = (await session.execute(oldest)).all()
            if not keys:
                return total
            # In one order in every process, so two sweeps at once never deadlock.
            for gw_id in sorted({k.gw_id for k in keys}):
                seqs = [k.seq for k in keys if k.gw_id == gw_id]
                await session.execute(
                    delete(SeenMessage).where(SeenMessage.gw_id == gw_id, SeenMessage.seq.in_(seqs))
                )
            total += len(keys)
