"""`chargenet report`: an after-action report, at the database, to a file.

Reads the database as the server does (`CHARGENET_DATABASE_URL`), brought to the newest
schema first. Times are RFC 3339 with a zone (e.g. 2026-12-06T18:00:00+09:00). Without
`--out` the document is written to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from typing import get_args
from zoneinfo import ZoneInfo

from server.db.migrate import upgrade
from server.db.session import Database
from server.main import environment_settings
from server.reports.documents import DOCUMENTS, Format
from server.reports.figures import Period, Report
from server.reports.read import read_report


def _instant(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text}: give a time zone (+09:00 or Z)")
    return at


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="chargenet report", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--start", type=_instant, required=True)
    parser.add_argument("--end", type=_instant, required=True)
    parser.add_argument("--municipality", help="one municipality's stations (default: all)")
    parser.add_argument("--format", choices=get_args(Format), default="csv")
    parser.add_argument("--out", help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.end <= args.start:
        parser.error("--end must follow --start")
    settings = environment_settings()
    if settings is None:
        return 2
    upgrade(settings.database_url)
    found = asyncio.run(_read(settings.database_url, Period(args.start, args.end),
                              args.municipality))  # fmt: skip
    body = DOCUMENTS[args.format].render(found, ZoneInfo(settings.timezone))
    if args.out:
        with open(args.out, "wb") as f:
            f.write(body)
    else:
        sys.stdout.buffer.write(body)
    return 0


async def _read(url: str, period: Period, municipality: str | None) -> Report:
    db = Database(url)
    try:
        return await read_report(db, period, municipality)
    finally:
        await db.dispose()
