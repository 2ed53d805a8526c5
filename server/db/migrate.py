"""Schema migrations (Alembic), run by `chargenet server` at start or `chargenet db upgrade`.

Alembic runs on a synchronous driver: the async URL is mapped to its sync twin
(aiosqlite -> pysqlite, asyncpg -> psycopg).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def sync_url(url: str) -> str:
    return url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(database_url))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision` (idempotent); a SQLite file is left in WAL mode.

    Switching a file to WAL needs it to itself: when the server's first connections did
    it, two opening at once could fail with "database is locked" (busy_timeout does not
    cover that switch). Done here, once, before anything else connects.
    """
    command.upgrade(alembic_config(database_url), revision)
    if database_url.startswith("sqlite"):
        engine = create_engine(sync_url(database_url))
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA journal_mode = WAL")
        finally:
            engine.dispose()


def regenerate_initial(database_url: str) -> None:
    """Before the first release only: rebuild migration 0001 from the models."""
    for old in (MIGRATIONS / "versions").glob("0001_*.py"):
        old.unlink()
    command.revision(
        alembic_config(database_url), message="initial schema", autogenerate=True, rev_id="0001"
    )


if __name__ == "__main__":
    import sys
    import tempfile

    if sys.argv[1:] != ["regenerate-initial"]:
        sys.exit("usage: python -m server.db.migrate regenerate-initial")
    with tempfile.TemporaryDirectory() as scratch:
        regenerate_initial(f"sqlite+aiosqlite:///{scratch}/empty.sqlite3")
