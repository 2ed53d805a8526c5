"""The one database session pattern: `async with db.transaction() as session: ...`.

SQLite and PostgreSQL behave alike for our purposes:
- PostgreSQL: READ COMMITTED, row locks taken by the statements themselves (a conditional
  UPDATE re-checks its WHERE on the newest row version);
- SQLite: SQLAlchemy's `FOR UPDATE` is a no-op there, so every transaction takes the write
  lock at BEGIN (`BEGIN IMMEDIATE`) instead of failing or deciding on stale reads. Within a
  process, transactions take turns (`WriterTurns`); other processes' writers queue on
  `busy_timeout`. WAL keeps readers off writers' backs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
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
URGENT_RUN: Final = 4
"""SQLite: urgent turns in a row at most while other transactions wait (`WriterTurns`)."""
URGENT_CONNECTIONS: Final = 2
"""PostgreSQL connections kept for urgent transactions (the LINE inbox has one writer)."""
SESSION_SETTINGS: Final = {
    "tcp_keepalives_idle": "20",
    "tcp_keepalives_interval": "5",
    "tcp_keepalives_count": "4",
    "idle_in_transaction_session_timeout": "600000",
}
"""PostgreSQL, per connection: a server host that vanishes (power, network) without closing
its connections keeps their locks (the ingest's client-id lock, an open transaction's rows)
until PostgreSQL notices. Keepalives notice within ~40 s, not the kernel's two hours; a
transaction a hung process leaves idle ends after 10 minutes (no transaction of ours waits
that long on anything)."""

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
            engine_options.setdefault("connect_args", {"server_settings": SESSION_SETTINGS})
        self.engine: AsyncEngine = create_async_engine(url, **engine_options)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._turns = WriterTurns() if self.is_sqlite else None
        self._urgent_engine: AsyncEngine | None = None
        if self.is_sqlite:
            _sqlite_write_lock_at_begin(self.engine)
            self._urgent_sessions = self._sessions
        else:  # connections of their own: a busy pool would keep them waiting
            lane = {**engine_options, "pool_size": URGENT_CONNECTIONS, "max_overflow": 0}
            self._urgent_engine = create_async_engine(url, **lane)
            self._urgent_sessions = async_sessionmaker(self._urgent_engine,
                                                       expire_on_commit=False)  # fmt: skip
        self.available = True
        """False from a transaction failing for an outage until one commits again."""

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in one transaction: committed on success, rolled back on error.

        `urgent`: someone waits on it to answer a platform: it has connections of its own
        (PostgreSQL) or the next turn (SQLite), not a place behind the others. An outage
        is logged as it starts and as it ends, one line each whoever noticed it (the API,
        the ingest, a job), rather than once per failed attempt.
        """
        try:
            sessions = self._urgent_sessions if urgent else self._sessions
            async with self._turn(urgent), sessions() as session, session.begin():
                yield session
        except Exception as exc:
            if self.available and is_outage(exc):
                self.available = False
                log.warning("database unavailable (%s)", type(exc).__name__)
            raise
        if not self.available:
            self.available = True
            log.warning("database available again")

    def _turn(self, urgent: bool) -> contextlib.AbstractAsyncContextManager[None]:
        return self._turns.turn(urgent) if self._turns is not None else contextlib.nullcontext()

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._urgent_engine is not None:
            await self._urgent_engine.dispose()


class WriterTurns:
    """SQLite's one writer, taken in turn by a process's transactions: FIFO, urgent first.

    Left to SQLite, a transaction waiting for the write lock polls it with sleeps growing to
    100 ms, and those arriving meanwhile may take it first: a webhook's answer could wait a
    second behind a burst of bookings. Here the lock passes on at once when a transaction
    ends. Urgent turns follow each other at most `URGENT_RUN` times while others wait, so a
    stream of webhooks cannot starve the bot that answers them. A turn not had within the
    busy timeout raises TimeoutError (an `OSError`: an outage, as SQLite's own "database is
    locked" was).
    """

    def __init__(self) -> None:
        self._held = False
        self._waiting: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque())
        """Urgent, then the others; a cancelled waiter stays until skipped."""
        self._urgent_run = 0
        """Urgent turns handed on in a row."""

    @asynccontextmanager
    async def turn(self, urgent: bool) -> AsyncIterator[None]:
        if self._held:
            future = asyncio.get_running_loop().create_future()
            self._waiting[0 if urgent else 1].append(future)
            try:
                async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
                    await future
            except BaseException:
                if future.done() and not future.cancelled():  # handed over as we gave up
                    self._pass_on()
                future.cancel()
                raise
        self._held = True
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        urgent, others = self._waiting
        order = (others, urgent) if self._urgent_run >= URGENT_RUN else (urgent, others)
        for queue in order:
            while queue:
                future = queue.popleft()
                if not future.done():
                    self._urgent_run = self._urgent_run + 1 if queue is urgent else 0
                    future.set_result(None)
                    return
        self._held = False
        self._urgent_run = 0


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
