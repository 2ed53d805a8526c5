"""Commands to gateways through an outbox: stored (durable) first, published after.

`send_command` stores a CommandRow; the MqttLink publishes rows not yet sent (QoS 1) and
stamps `sent_at`. A row is claimed with a conditional UPDATE before it is published, so two
server processes never both send it; a failed publish releases the claim for a retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from pydantic import ValidationError
from sqlalchemy import select, update

from protocol.payloads import Command, CommandAction
from server.db.models import CommandRow
from server.db.session import Database
from server.errors import Invalid

PENDING_PAGE = 100


async def send_command(
    db: Database,
    gw_id: str,
    unit: str,
    action: CommandAction | str,
    port: int | None = None,
    value: str | None = None,
    *,
    wake: Callable[[], None] | None = None,
) -> str:
    """Store a command for `gw_id` and return its cmd_id; `wake` is `MqttLink.notify_commands`.

    Raises Invalid when the command would not pass the wire contract.
    """
    cmd_id = uuid.uuid4().hex
    try:
        command = Command(cmd_id=cmd_id, unit=unit, action=CommandAction(action), port=port,
                          value=value)  # fmt: skip
    except (ValidationError, ValueError) as exc:
        raise Invalid(f"invalid command for {gw_id}/{unit}: {exc}", "invalid_command") from exc
    async with db.transaction() as session:
        session.add(
            CommandRow(cmd_id=cmd_id, gw_id=gw_id, unit=command.unit, action=command.action.value,
                       port=command.port, value=command.value, created_at=datetime.now(UTC))
        )  # fmt: skip
    if wake is not None:
        wake()
    return cmd_id


def as_payload(row: CommandRow) -> Command:
    return Command(cmd_id=row.cmd_id, unit=row.unit, action=CommandAction(row.action),
                   port=row.port, value=row.value)  # fmt: skip


async def claim_pending(db: Database, now: datetime) -> list[CommandRow]:
    """Unsent commands, oldest first, marked sent (by this process) in one transaction."""
    async with db.transaction() as session:
        rows = list(
            await session.scalars(
                select(CommandRow)
                .where(CommandRow.sent_at.is_(None))
                .order_by(CommandRow.created_at)
                .limit(PENDING_PAGE)
            )
        )
        if not rows:
            return []
        claimed = set(
            await session.scalars(
                update(CommandRow)
                .where(
                    CommandRow.cmd_id.in_([r.cmd_id for r in rows]), CommandRow.sent_at.is_(None)
                )
                .values(sent_at=now)
                .returning(CommandRow.cmd_id)
                .execution_options(synchronize_session=False)
            )
        )
    return [r for r in rows if r.cmd_id in claimed]


async def release(db: Database, cmd_ids: list[str]) -> None:
    """Publishing failed: make these commands pending again."""
    if not cmd_ids:
        return
    async with db.transaction() as session:
        await session.execute(
            update(CommandRow)
            .where(CommandRow.cmd_id.in_(cmd_ids))
            .values(sent_at=None)
            .execution_options(synchronize_session=False)
        )
