"""Commands to gateways through an outbox: stored (durable) first, published after.

`send_command` stores a CommandRow; the MqttLink publishes rows not yet sent (QoS 1) and
stamps `sent_at`. A row is claimed with a conditional UPDATE before it is published, so two
server processes never both send it; a failed publish releases the claim for a retry.

QoS 1 gets a command to the gateway, not done: the gateway acknowledges on receipt, so a
gateway that dies before the Modbus write loses it, and no result ever comes. So a command
still unanswered `command_answer_s` after its send, to a gateway that is online, is sent
again with the same cmd_id (`resend_unanswered`; a gateway that did run it ignores the
copy, and its result is on the way through its outbox), up to `command_sends` sends in all.
A command is never resent once a newer one for the same port and action exists: a late
copy must not put an old ticket code back on a display.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from protocol.payloads import Command, CommandAction
from server.db.models import CommandRow, Gateway
from server.db.session import Database
from server.errors import Invalid

log = logging.getLogger(__name__)

PENDING_PAGE = 100
RESEND_PAGE = 500
_COMMANDS = cast(Table, CommandRow.__table__)
"""The table itself, for the executemany of `resend_unanswered`."""


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
                .values(sent_at=now, sends=CommandRow.sends + 1)
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
            .values(sent_at=None, sends=CommandRow.sends - 1)
            .execution_options(synchronize_session=False)
        )


CommandKey = tuple[str, str, int | None, str]
"""(gateway, unit, port, action): what a newer command supersedes."""


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A command sent and not answered, as `plan_resends` sees it."""

    cmd_id: str
    key: CommandKey
    created_at: datetime
    sends: int
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ResendPlan:
    resend: list[str]
    superseded: list[str]
    give_up: list[str]


def plan_resends(
    unanswered: Iterable[Unanswered],
    newest: dict[CommandKey, datetime],
    max_sends: int,
) -> ResendPlan:
    """Which overdue commands to send again, which a newer one replaced, which to give up.

    `newest`: the creation time of the newest command per key (any state).
    """
    plan = ResendPlan([], [], [])
    for row in unanswered:
        if row.created_at < newest.get(row.key, row.created_at):
            plan.superseded.append(row.cmd_id)
        elif row.sends >= max_sends:
            plan.give_up.append(row.cmd_id)
        else:
            plan.resend.append(row.cmd_id)
    return plan


async def resend_unanswered(
    db: Database, now: datetime, answer_s: float, max_sends: int
) -> ResendPlan:
    """Make overdue commands to online gateways pending again; close the others for good.

    Conditional UPDATEs (still unanswered, same `sent_at`) let server processes run this
    at once without sending a command twice.
    """
    async with db.transaction() as session:
        rows = await _overdue(session, now - timedelta(seconds=answer_s))
        if not rows:
            return ResendPlan([], [], [])
        newest = await _newest(session, rows)
        plan = plan_resends(rows, newest, max_sends)
        by_id = {row.cmd_id: row for row in rows}
        closing = {c: "superseded by a newer command" for c in plan.superseded}
        closing.update({c: f"no answer after {by_id[c].sends} sends" for c in plan.give_up})
        still_as_read = update(_COMMANDS).where(
            _COMMANDS.c.cmd_id == bindparam("b_id"),
            _COMMANDS.c.ok.is_(None),
            _COMMANDS.c.sent_at == bindparam("b_sent_at"),
        )
        if plan.resend:
            await session.execute(still_as_read.values(sent_at=None), [
                {"b_id": c, "b_sent_at": by_id[c].sent_at} for c in plan.resend
            ])  # fmt: skip
        if closing:
            await session.execute(still_as_read.values(ok=False, error=bindparam("b_error")), [
                {"b_id": c, "b_sent_at": by_id[c].sent_at, "b_error": e}
                for c, e in closing.items()
            ])  # fmt: skip
    for cmd_id in plan.give_up:
        log.warning("command %s: %s; given up", cmd_id, closing[cmd_id])
    if plan.resend:
        log.info("sending %d unanswered command(s) again", len(plan.resend))
    return plan


async def _overdue(session: AsyncSession, cutoff: datetime) -> list[Unanswered]:
    """Unanswered commands sent before `cutoff` to gateways online now, oldest first."""
    query = (
        select(CommandRow)
        .join(Gateway, Gateway.gw_id == CommandRow.gw_id)
        .where(
            CommandRow.ok.is_(None),
            CommandRow.sent_at < cutoff,
            Gateway.state == "online",
            Gateway.silent.is_(False),
        )
        .order_by(CommandRow.created_at)
        .limit(RESEND_PAGE)
    )
    return [
        Unanswered(r.cmd_id, (r.gw_id, r.unit, r.port, r.action), r.created_at, r.sends,
                   r.sent_at)
        for r in await session.scalars(query)
    ]  # fmt: skip


async def _newest(session: AsyncSession, rows: list[Unanswered]) -> dict[CommandKey, datetime]:
    """The creation time of the newest command per key of `rows`, in one read.

    Only commands of the same gateways created since the oldest row can supersede one.
    """
    keys = {row.key for row in rows}
    query = (
        select(CommandRow.gw_id, CommandRow.unit, CommandRow.port, CommandRow.action,
               func.max(CommandRow.created_at))
        .where(CommandRow.gw_id.in_(sorted({key[0] for key in keys})),
               CommandRow.created_at >= min(row.created_at for row in rows))
        .group_by(CommandRow.gw_id, CommandRow.unit, CommandRow.port, CommandRow.action)
    )  # fmt: skip
    found = {(g, u, p, a): newest for g, u, p, a, newest in await session.execute(query)}
    return {key: newest for key, newest in found.items() if key in keys}
