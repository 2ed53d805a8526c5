"""Writing to the outbox: in the caller's transaction, so a message exists iff its cause does.

Whoever decides that a person must be told (the LINE conversation, booking notices, crew
alerts) calls `enqueue` inside the transaction of that decision; `server.delivery.sender`
sends what is due, with retries and the platforms' rate limits, and a message is never lost
to a crash between the change and the send.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import OutboxMessage

LINE_MESSAGES_PER_REQUEST: Final = 5
MULTICAST_RECIPIENTS: Final = 500
"""LINE's multicast takes at most 500 user ids a request."""


class Platform(StrEnum):
    LINE = "line"
    LINEWORKS = "lineworks"


def channel_target(channel_id: str) -> str:
    """A LINE WORKS channel as an outbox target."""
    return f"channel:{channel_id}"


def user_target(user_id: str) -> str:
    """A LINE WORKS user as an outbox target (a reply to whoever pressed a button)."""
    return f"user:{user_id}"


async def enqueue(
    session: AsyncSession,
    platform: Platform,
    target: str,
    messages: Sequence[dict[str, Any]],
    *,
    now: datetime,
    source: str = "",
    reply_token: str | None = None,
    reply_until: datetime | None = None,
    flush: bool = True,
) -> list[OutboxMessage]:
    """Add the messages to the session's transaction; the rows, in sending order.

    LINE takes at most 5 messages a request: more become several rows, and only the first
    may use the reply token. LINE WORKS takes one content a request: one row each.
    `flush=False` leaves the rows to the commit's one bulk INSERT (they have no id until
    then): a caller enqueueing for hundreds of people in one transaction.
    """
    per_row = LINE_MESSAGES_PER_REQUEST if platform is Platform.LINE else 1
    rows = []
    for first in range(0, len(messages), per_row):
        token = reply_token if first == 0 else None
        row = OutboxMessage(
            platform=platform.value, target=target, body=list(messages[first : first + per_row]),
            reply_token=token, reply_until=reply_until if token else None, reply_tried=False,
            retry_key=str(uuid.uuid4()), source=source, state="pending", attempts=0,
            next_at=now, created_at=now,
        )  # fmt: skip
        session.add(row)
        rows.append(row)
    if flush:
        await session.flush()
    return rows


async def enqueue_multicast(
    session: AsyncSession,
    recipients: Sequence[str],
    messages: Sequence[dict[str, Any]],
    *,
    now: datetime,
    source: str,
) -> list[OutboxMessage]:
    """LINE multicast rows for `recipients` (one row per batch of at most 500, each with its
    own retry key, so a retry after a lost answer is a 409, not a second delivery), in the
    caller's transaction. Each batch is its own target (`multicast:{source}:{n}`): batches
    go out side by side, not one after another. Up to 5 messages, as a push. The sender
    empties a batch's `recipients` once it is sent or failed for good (`recipient_count`
    stays for the delivery counts)."""
    if not 1 <= len(messages) <= LINE_MESSAGES_PER_REQUEST:
        raise ValueError(f"{len(messages)} messages; a multicast takes 1 to 5")
    rows = []
    for number, first in enumerate(range(0, len(recipients), MULTICAST_RECIPIENTS)):
        batch = recipients[first : first + MULTICAST_RECIPIENTS]
        row = OutboxMessage(
            platform=Platform.LINE.value, target=f"multicast:{source}:{number}"[:200],
            body=list(messages), recipients=list(batch), recipient_count=len(batch),
            reply_token=None, reply_until=None, reply_tried=False, retry_key=str(uuid.uuid4()),
            source=source, state="pending", attempts=0, next_at=now, created_at=now,
        )  # fmt: skip
        session.add(row)
        rows.append(row)
    await session.flush()
    return rows
