"""One server process per MQTT client id (`CHARGENET_MQTT_CLIENT_ID`).

The id names the process's broker session and the change sets it journals
(`ingest.journal`): two processes sharing it would take each other's session at every
connect and each other's change sets at every start. On PostgreSQL a session advisory lock
on (database, id), held on a connection of its own for the process's life, refuses the
second at start. A killed holder's lock goes with its connection, so its restart (or its
successor) takes the id at once, and the other processes see at once that it is gone
(`unheld`). SQLite is one host's: nothing to coordinate.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import ColumnElement, SQLColumnExpression, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.session import Database


def _key(client_id: SQLColumnExpression[str]) -> ColumnElement[int]:
    """The advisory lock's key: the id within this database."""
    name = func.current_database().op("||")(" chargenet-mqtt-client ").op("||")(client_id)
    return func.hashtext(name)


def unheld(client_id: SQLColumnExpression[str]) -> ColumnElement[bool]:
    """True where no live process holds `client_id` (PostgreSQL only).

    It takes the id's lock for the rest of the transaction where it can: a process gone
    stays gone until then, and this process's own id is always its own to take.
    """
    return func.pg_try_advisory_xact_lock(_key(client_id))


class ClientIdTaken(RuntimeError):
    """A live process holds the client id: this one must not start."""


class ClientIdLock:
    """`take` at start, `release` at the end."""

    def __init__(self, db: Database, client_id: str) -> None:
        self._db = db
        self._client_id = client_id
        self._connection: AsyncConnection | None = None

    async def take(self) -> None:
        """ClientIdTaken, naming the setting, if a live process holds the id."""
        if self._db.is_sqlite:
            return
        connection = await self._db.engine.connect()
        taken = await connection.scalar(
            select(func.pg_try_advisory_lock(_key(literal(self._client_id))))
        )
        await connection.commit()  # the lock is the session's; no transaction stays open
        if not taken:
            await connection.close()
            raise ClientIdTaken(
                f"another server process runs with CHARGENET_MQTT_CLIENT_ID={self._client_id!r}"
                " on this database: give each process an id of its own"
            )
        self._connection = connection

    async def release(self) -> None:
        if self._connection is None:
            return
        with contextlib.suppress(Exception):  # the database gone: the lock went with it
            await self._connection.execute(
                select(func.pg_advisory_unlock(_key(literal(self._client_id))))
            )
            await self._connection.commit()
        with contextlib.suppress(Exception):
            await self._connection.close()
        self._connection = None
