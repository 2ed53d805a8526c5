"""Gateway commands: unanswered ones are sent again, superseded and hopeless ones closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from protocol.payloads import CommandAction
from server.db.models import CommandRow, Gateway
from server.db.session import Database
from server.ingest.commands import (
    CommandKey,
    Unanswered,
    claim_pending,
    plan_resends,
    resend_unanswered,
    send_command,
)
from tests.server.database import with_database

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEY: CommandKey = ("gw-1", "rs485-1.1", 2, "set_display")


def test_the_plan_resends_the_newest_per_port_until_it_gives_up() -> None:
    rows = [
        Unanswered("old", KEY, T0, 1),
        Unanswered("new", KEY, T0 + timedelta(seconds=5), 1),
        Unanswered("tired", ("gw-1", "rs485-1.1", 3, "set_display"), T0, 3),
        Unanswered("other", ("gw-1", "rs485-1.1", 2, "reset_alarms"), T0, 2),
    ]
    newest = {KEY: T0 + timedelta(seconds=5)}
    plan = plan_resends(rows, newest, max_sends=3)
    assert (plan.resend, plan.superseded, plan.give_up) == (["new", "other"], ["old"], ["tired"])


def test_unanswered_commands_to_online_gateways_are_sent_again(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        async with db.transaction() as session:
            session.add(Gateway(gw_id="gw-1", state="online"))
            session.add(Gateway(gw_id="gw-2", state="offline"))

        async def send(gw_id: str, port: int, value: str) -> str:
            return await send_command(db, gw_id, "rs485-1.1", CommandAction.SET_DISPLAY, port,
                                      value)  # fmt: skip

        async def rows() -> dict[str, CommandRow]:
            async with db.transaction() as session:
                return {r.cmd_id: r for r in await session.scalars(select(CommandRow))}

        lost = await send("gw-1", 1, "K7Q2")
        answered = await send("gw-1", 2, "AB12")
        offline = await send("gw-2", 1, "ZZ99")
        sent = await claim_pending(db, datetime.now(UTC))
        assert {r.cmd_id for r in sent} == {lost, answered, offline}
        async with db.transaction() as session:
            row = await session.get(CommandRow, answered)
            assert row is not None
            row.ok = True
        now = datetime.now(UTC)

        early = await resend_unanswered(db, now + timedelta(seconds=10), 30, 3)
        assert (early.resend, early.superseded, early.give_up) == ([], [], [])
        plan = await resend_unanswered(db, now + timedelta(seconds=31), 30, 3)
        assert plan.resend == [lost]
        again = await claim_pending(db, now + timedelta(seconds=32))
        assert [(r.cmd_id, r.value) for r in again] == [(lost, "K7Q2")]  # the same id
        assert (await rows())[lost].sends == 2
        assert (await rows())[offline].sends == 1  # its gateway is away: nothing to gain

        newer = await send("gw-1", 1, "")  # the booking moved: the display is cleared
        await claim_pending(db, now + timedelta(seconds=33))
        plan = await resend_unanswered(db, now + timedelta(seconds=70), 30, 3)
        assert (plan.resend, plan.superseded) == ([newer], [lost])
        assert (await rows())[lost].ok is False
        await claim_pending(db, now + timedelta(seconds=71))
        await resend_unanswered(db, now + timedelta(seconds=110), 30, 3)
        await claim_pending(db, now + timedelta(seconds=111))
        plan = await resend_unanswered(db, now + timedelta(seconds=150), 30, 3)
        assert plan.give_up == [newer]
        final = (await rows())[newer]
        assert (final.ok, final.error, final.sends) == (False, "no answer after 3 sends", 3)
        assert await claim_pending(db, now + timedelta(seconds=151)) == []

    with_database(database_url, scenario)
