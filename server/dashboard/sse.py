"""Server-sent events: one hub fans each change out to every connected browser.

The hub is an ingest listener (`on_changes`) and is told of booking changes by the API
(`publish`). Events are compact (which stations and ports changed, not their whole
state): the page re-reads what it shows, so a dropped event costs a refresh, never a
wrong picture. Each subscriber has a bounded queue; a slow one loses its oldest events
(counted) instead of holding the server's memory or the ingest loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

from server.ingest.changeset import ChangeSet

QUEUE_SIZE = 64
HEARTBEAT_S = 15.0
RETRY_MS = 2000


def compact(changes: ChangeSet) -> dict[str, Any]:
    """The small JSON a browser needs to know what to re-read."""
    return {
        "type": "change",
        "stations": sorted(changes.station_ids),
        "ports": [
            {
                "station_id": p.station_id,
                "gw_id": p.gw_id,
                "unit": p.unit,
                "port": p.port,
                "status": p.after_status,
            }
            for p in changes.ports
        ],
        "gateways": [{"gw_id": g.gw_id, "state": g.state} for g in changes.gateways],
        "events": len(changes.events),
    }


def frame(event: dict[str, Any]) -> bytes:
    """One SSE frame: `event:` names the type so pages can listen per kind."""
    data = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event.get('type', 'message')}\ndata: {data}\n\n".encode()


class EventHub:
    """Subscribers' queues; publishing never blocks and never raises."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self._queue_size = queue_size
        self._queues: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.published = 0
        self.dropped = 0
        self.relay: Callable[[dict[str, Any]], None] | None = None
        """Where this process's events also go: the other processes (`relay.HubRelay`)."""

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    async def on_changes(self, changes: ChangeSet) -> None:
        """Ingest listener."""
        if changes:
            self.publish(compact(changes))

    def publish(self, event: dict[str, Any]) -> None:
        """An event of this process: to its subscribers and the other processes'."""
        if self.relay is not None:
            self.relay(event)
        self.deliver(event)

    def deliver(self, event: dict[str, Any]) -> None:
        """To this process's subscribers only (an event another process relayed)."""
        self.published += 1
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(event)

    def close(self) -> None:
        """End every stream (server shutdown), so no browser holds the process open."""
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    async def stream(self, heartbeat_s: float = HEARTBEAT_S) -> AsyncGenerator[bytes]:
        """An SSE byte stream for one client, with a reconnect hint and heartbeats."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(self._queue_size)
        self._queues.add(queue)
        try:
            yield f"retry: {RETRY_MS}\n".encode() + frame({"type": "hello"})
            while True:
                try:
                    async with asyncio.timeout(heartbeat_s):
                        event = await queue.get()
                except TimeoutError:
                    yield b": heartbeat\n\n"
                    continue
                if event is None:
                    return
                yield frame(event)
        finally:
            self._queues.discard(queue)
