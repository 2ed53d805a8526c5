"""One server process per MQTT client id (`CHARGENET_MQTT_CLIENT_ID`).

The id names the process's broker session and the change sets it journals
(`ingest.journal`): two processes sharing it would take each other's session at every
connect and each other's change sets at every start. On PostgreSQL a session advisory lock
on (database, id), held on a connection of its own for the process's life, refuses the
second at start. A killed holder's lock goes with its connection, so its restart (or its
successor) takes the id at once. SQLite is one host's: nothing to coordinate.
"""

from __future__ import annotations

import contextlib

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from server.db.session import Database

KEY = "hashtext(current_database() || ' chargenet-mqtt-client ' || :client_id)"


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
            text(f"SELECT pg_try_advisory_lock({KEY})"), {"client_id": self._client_id}
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
                text(f"SELECT pg_advisory_unlock({KEY})"), {"client_id": self._client_id}
            )
            await self._connection.commit()
        with contextlib.suppress(Exception):
            await self._connection.close()
        self._connection = None
