"""The audit log: who did what to which thing, and when, kept beside the change itself.

`record` adds the row to the caller's session, so the entry commits (or rolls back) with
the change it describes: there is never a change without its entry, nor an entry for a
change that did not happen. `at` comes from the caller, whose clock also stamped the change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.models import AuditEntry

SYSTEM_ACTOR = "system"
"""The actor of automatic transitions (rules, timers), as opposed to a person or a token."""


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


async def record(
    session: AsyncSession,
    actor: str,
    action: str,
    subject: str,
    detail: dict[str, Any],
    *,
    at: datetime,
) -> None:
    """Add one entry to the session's transaction.

    `action` is dotted (`incident.acknowledged`, `station.created`); `subject` names the
    thing (`incident:42`, `station:ozu-01`). Values in `detail` that JSON cannot hold
    (datetimes) are stored as strings, so any detail a caller builds can be recorded.
    """
    session.add(
        AuditEntry(
            at=at,
            actor=actor,
            action=action,
            subject=subject,
            detail=json.loads(json.dumps(detail, default=str)),
        )
    )


async def entries(
    session: AsyncSession, subject: str | None = None, limit: int = 100
) -> list[AuditView]:
    """The newest entries first, optionally of one subject."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if subject is not None:
        query = query.where(AuditEntry.subject == subject)
    return [
        AuditView(row.id, row.at, row.actor, row.action, row.subject, dict(row.detail))
        for row in await session.scalars(query)
    ]
