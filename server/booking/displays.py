"""Ticket codes on the ports' displays, written in the booking's own transaction.

`CommandRow` is the outbox of gateway commands: the MQTT link publishes the unsent rows it
finds (polling, or at once when woken). Writing the row in the same transaction as the
booking makes the pair atomic: a committed booking always has its display command, a
rolled-back one never does, and a crash between the two cannot lose the code. (Calling the
ingest's `send_command` instead would open a second transaction: on SQLite it would wait
for our own write lock, and after our commit a crash could lose the code.) The rows are
exactly what `send_command` stores; `wake` (the link's `notify_commands`) is called after
the commit so the display changes at once rather than at the link's next poll.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

from server.booking.views import PortAddress
from server.db.models import CommandRow

Wake = Callable[[], None]

SET_DISPLAY = "set_display"
CLEAR = ""
"""An empty display code clears the port's display."""


async def show_many(
    session: AsyncSession, items: list[tuple[PortAddress, int, str]], now: datetime
) -> list[str]:
    """Queue `set_display` for these ports in this session's transaction; their cmd_ids."""
    rows = [
        {"cmd_id": uuid.uuid4().hex, "gw_id": address.gw_id, "unit": address.unit,
         "action": SET_DISPLAY, "port": port, "value": code, "created_at": now}
        for address, port, code in items
    ]  # fmt: skip
    if rows:
        await session.execute(insert(cast(Table, CommandRow.__table__)), rows)
    return [str(r["cmd_id"]) for r in rows]


async def show(
    session: AsyncSession, address: PortAddress, port: int, code: str, now: datetime
) -> str:
    """`show_many` for one port."""
    [cmd_id] = await show_many(session, [(address, port, code)], now)
    return cmd_id
