"""`chargenet operators create|rotate|revoke|list`: operator accounts, at the database.

The way to the first HQ account without a bootstrap token in the server's environment,
and to lock out a leaked token when no HQ operator is at hand. Reads the database as the
server does (`CHARGENET_DATABASE_URL`) and brings it to the newest schema first. A token
is printed once, on stdout, alone on its line, for the operator to keep; the audit log
names the change's actor as `cli:{login}`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable

from server.access.operators import ROLES, Operator
from server.access.tokens import Account, Operators
from server.db.migrate import upgrade
from server.db.session import Database
from server.errors import ServerError
from server.main import environment_settings
from server.registry.service import utc_now


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="chargenet operators", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new account; prints its token")
    create.add_argument("name")
    create.add_argument("--role", choices=ROLES, required=True)
    create.add_argument("--municipality", help="a municipality operator's own (or a viewer's)")
    for action, what in (("rotate", "a new token; the old one stops"),
                         ("revoke", "the account's token stops for good")):  # fmt: skip
        actions.add_parser(action, help=what).add_argument("name")
    actions.add_parser("list", help="every account, revoked ones too")
    args = parser.parse_args(argv)
    settings = environment_settings()
    if settings is None:
        return 2
    upgrade(settings.database_url)
    by = Operator(f"cli:{getpass.getuser()}"[:100], "hq")

    async def act(operators: Operators) -> None:
        if args.action == "create":
            new = Operator(args.name, args.role, args.municipality)
            _, token = await operators.create(new, by)
            print(token.get_secret_value())
        elif args.action == "rotate":
            _, token = await operators.rotate(args.name, by)
            print(token.get_secret_value())
        elif args.action == "revoke":
            await operators.revoke(args.name, by)
        else:
            for account in await operators.list():
                print(_line(account))

    try:
        asyncio.run(_with_operators(settings.database_url, act))
    except ServerError as exc:
        print(f"chargenet operators: {exc.message}", file=sys.stderr)
        return 2
    return 0


async def _with_operators(url: str, act: Callable[[Operators], Awaitable[None]]) -> None:
    db = Database(url)
    try:
        await act(Operators(db, utc_now))
    finally:
        await db.dispose()


def _line(account: Account) -> str:
    op = account.operator
    state = f"revoked {account.revoked_at:%Y-%m-%d}" if account.revoked_at else "active"
    return f"{op.name}\t{op.role}\t{op.municipality or '-'}\t{state}"
