"""`chargenet posters [--station ID ...] --out DIR`: one A4 PDF per station, to print.

Reads the stations from the configured database (`CHARGENET_DATABASE_URL`, as the server
does) and the official account from `CHARGENET_LINE_OFFICIAL_ACCOUNT_ID`; writes
`DIR/poster-{station}.pdf` for the stations named, or for every station.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from server.db.session import Database
from server.errors import ServerError
from server.line.posters import poster_pdf, station_url
from server.main import environment_settings
from server.registry.models import StationInfo
from server.registry.service import Registry


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="chargenet posters", description=__doc__)
    parser.add_argument("--station", action="append", default=[], metavar="ID",
                        help="a station's id (repeat it for several; default: all)")  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="the folder to write the PDFs to (made if missing)")  # fmt: skip
    args = parser.parse_args(argv)
    settings = environment_settings()
    if settings is None:
        return 2
    account_id = settings.line_official_account_id
    try:
        station_url(account_id, "check")  # refuse before touching the database
        stations = asyncio.run(_stations(settings.database_url, args.station))
    except ServerError as exc:
        print(f"chargenet posters: {exc.message}", file=sys.stderr)
        return 2
    except DBAPIError as exc:
        print(f"chargenet posters: cannot read the stations from the database "
              f"({type(exc.orig).__name__}); is it migrated (`chargenet db upgrade`)?",
              file=sys.stderr)  # fmt: skip
        return 2
    if not stations:
        print("chargenet posters: the registry has no stations", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    for station in stations:
        path = args.out / f"poster-{station.id}.pdf"
        path.write_bytes(poster_pdf(station, account_id))
        print(path)
    return 0


async def _stations(database_url: str, wanted: list[str]) -> list[StationInfo]:
    """The stations named (in that order; an unknown id is NotFound), or all of them."""
    db = Database(database_url)
    try:
        registry = Registry(db)
        if not wanted:
            return await registry.list_stations()
        return [await registry.get_station(station_id) for station_id in dict.fromkeys(wanted)]
    finally:
        await db.dispose()
