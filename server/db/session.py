"""The one database session pattern: `async with db.transaction() as session: ...`.

SQLite and PostgreSQL behave alike for our purposes:
- PostgreSQL: READ COMMITTED, row locks taken by the statements themselves (a conditional
  UPDATE re-checks its WHERE on the newest row version);
- SQLite: SQLAlchemy's `FOR UPDATE` is a no-op there, so every transaction takes the write
  lock at BEGIN (`BEGIN IMMEDIATE`) and concurrent writers queue on `busy_timeout`
  instead of failing or deciding on stale reads. WAL keeps readers off writers' backs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000

OUTAGES: Final = (
    OSError,  # refused or reset before a connection existed
    OperationalError,  # SQLAlchemy's word for it (SQLite: still locked after busy_timeout)
    asyncpg.PostgresConnectionError,  # class 08, on the bookings' own asyncpg pool
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
)


def is_outage(exc: BaseException) -> bool:
    """The database cannot serve right now (down, restarting, connection lost).

    Worth a retry a little later, not a bug: the API answers 503 `database_unavailable`
    and the ingest waits it out.
    """
    return isinstance(exc, OUTAGES) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


class Database:
    """One engine and session factory per process, made in main() or the app lifespan."""

    def __init__(self, url: str, **engine_options: Any) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if not self.is_sqlite:
            engine_options.setdefault("pool_size", 10)
            engine_options.setdefault("max_overflow", 10)
        self.engine: AsyncEngine = create_async_engine(url, **engine_options)
        if self.is_sqlite:
            _sqlite_write_lock_at_begin(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.available = True
        """False from a transaction failing for an outage until one commits again."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error.

        An outage is logged as it starts and as it ends, one line each whoever noticed it
        (the API, the ingest, a job), rather than once per failed attempt.
        """
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except Exception as exc:
            if self.available and is_outage(exc):
                self.available = False
                log.warning("database unavailable (%s)", type(exc).__name__)
            raise
        if not self.available:
            self.available = True
            log.warning("database available again")

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_write_lock_at_begin(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone() != ("wal",):  # WAL stays with the file: `migrate` sets it once
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
