"""The stores benchmarks run against, and the durability they actually ran with.

The tests' PostgreSQL (`tests.postgres`) turns fsync, synchronous_commit and
full_page_writes off to run fast; a benchmark of the server's writes must not, so it starts
its own cluster with PostgreSQL's defaults. What a run measured is read back from the
store through the server's own connection setup (`server.db.session.Database`, which sets
SQLite's pragmas) and printed, never assumed.
"""

from __future__ import annotations

import asyncio
from typing import Final

from sqlalchemy import text

from server.db.session import Database
from tests.postgres import PostgresCluster, _bin

POSTGRES_SETTINGS: Final = ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method")
SQLITE_PRAGMAS: Final = ("journal_mode", "synchronous")
SQLITE_SYNCHRONOUS: Final = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}


def durable_cluster() -> PostgresCluster:
    """A throwaway cluster with PostgreSQL's default durability (no `-c` touches it).

    initdb's `--no-sync` only skips flushing the new cluster's files once at creation;
    the running server fsyncs every commit as a default one does.
    """
    cluster = PostgresCluster()
    cluster._run(_bin("initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust",
                 "--no-sync", "-E", "UTF8")  # fmt: skip
    options = (
        f"-p {cluster.port} -k {cluster.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
    )
    cluster._run(_bin("pg_ctl"), "-D", str(cluster.data), "-o", options, "-w", "-t", "60",
                 "-l", str(cluster.root / "log"), "start")  # fmt: skip
    return cluster


async def _read_settings(url: str) -> dict[str, str]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            if url.startswith("sqlite"):
                found = {p: str((await session.execute(text(f"PRAGMA {p}"))).scalar_one())
                         for p in SQLITE_PRAGMAS}  # fmt: skip
                found["synchronous"] = SQLITE_SYNCHRONOUS[found["synchronous"]]
                return found
            return {s: str((await session.execute(text(f"SHOW {s}"))).scalar_one())
                    for s in POSTGRES_SETTINGS}  # fmt: skip
    finally:
        await db.dispose()


def store_settings(url: str) -> dict[str, str]:
    """The durability settings a server connection to `url` gets (PostgreSQL's server
    settings; SQLite's pragmas as the server sets them per connection)."""
    return asyncio.run(_read_settings(url))


def describe(settings: dict[str, str]) -> str:
    """`fsync=on, synchronous_commit=on, ...` for a table cell."""
    return ", ".join(f"{k}={v}" for k, v in settings.items())
