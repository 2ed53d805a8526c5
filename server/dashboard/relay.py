"""The dashboards' events across server processes: PostgreSQL LISTEN/NOTIFY.

Each process's hub hears only what that process did (its share of the ingest, the API
calls it answered), so a browser connected to one of several processes would miss what
the others changed. Every event a hub publishes is also NOTIFYed on one channel, and every
process LISTENs and hands what the others sent to its own hub. An event past NOTIFY's size
limit goes as its type and stations only: the page re-reads those stations anyway. While
the database is away events are not relayed (the dashboards re-read on the next one);
the relay reconnects by itself. SQLite is one process's: nothing to relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from server.dashboard.sse import EventHub
from server.db.session import Database

log = logging.getLogger(__name__)

CHANNEL: Final = "chargenet_events"
PAYLOAD_MAX: Final = 7900
"""NOTIFY takes payloads below 8,000 bytes."""
RECONNECT_S: Final = 2.0
CHECK_S: Final = 5.0
"""How often an idle relay makes sure its connection still stands."""


def payload(event: dict[str, Any]) -> str:
    """The NOTIFY payload of an event; its type and stations when the whole is too big."""
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    if len(text.encode()) <= PAYLOAD_MAX:
        return text
    brief = {"type": event.get("type"), "stations": event.get("stations", [])}
    return json.dumps(brief, separators=(",", ":"), ensure_ascii=False)[:PAYLOAD_MAX]


class HubRelay:
    """`run` as a task for the app's life; the hub calls `send` for what it publishes."""

    def __init__(self, db: Database, hub: EventHub) -> None:
        self._db = db
        self._hub = hub
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)
        self.sent = 0
        self.received = 0
        self.listening = asyncio.Event()
        """Set while the other processes' events are heard."""

    def send(self, event: dict[str, Any]) -> None:
        """Queue an event for the other processes; dropped when 1,000 wait (their pages
        re-read what changed on the next event)."""
        with contextlib.suppress(asyncio.QueueFull):
            self._outgoing.put_nowait(payload(event))

    async def run(self) -> None:
        while True:
            try:
                async with self._db.engine.connect() as connection:
                    await self._relay(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("dashboard relay reconnects (%s)", type(exc).__name__)
            await asyncio.sleep(RECONNECT_S)

    async def _relay(self, connection: AsyncConnection) -> None:
        raw = (await connection.get_raw_connection()).driver_connection
        if raw is None:
            raise ConnectionError("no driver connection")
        own_pid = raw.get_server_pid()

        def heard(_conn: object, pid: int, _channel: str, text: str) -> None:
            if pid == own_pid:
                return
            try:
                event = json.loads(text)
            except ValueError:
                return
            if isinstance(event, dict):
                self.received += 1
                self._hub.deliver(event)

        await raw.add_listener(CHANNEL, heard)
        self.listening.set()
        try:
            while True:
                try:
                    async with asyncio.timeout(CHECK_S):
                        text = await self._outgoing.get()
                except TimeoutError:
                    await raw.execute("SELECT 1")  # a dead connection raises here
                    continue
                await raw.execute("SELECT pg_notify($1, $2)", CHANNEL, text)
                self.sent += 1
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                await raw.remove_listener(CHANNEL, heard)
