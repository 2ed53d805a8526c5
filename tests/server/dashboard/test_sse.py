"""The event hub: compact change events, bounded queues, streams that end on shutdown."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from server.dashboard.sse import EventHub
from server.ingest.changeset import ChangeSet, PortChange


def change() -> ChangeSet:
    port = PortChange(1, "st-1", "gw", "line-1.1", 2, "available", "faulted", False, False,
                      "over_current", datetime.now(UTC))  # fmt: skip
    return ChangeSet(ports=(port,), station_ids=frozenset({"st-1"}))


def test_stream_says_hello_then_changes_and_ends_on_close() -> None:
    async def scenario() -> list[bytes]:
        hub = EventHub()
        stream = hub.stream(heartbeat_s=0.05)
        frames = [await anext(stream)]
        await hub.on_changes(change())
        await hub.on_changes(ChangeSet())  # empty: nothing sent
        frames.append(await anext(stream))
        frames.append(await anext(stream))  # a heartbeat while idle
        hub.close()
        frames += [frame async for frame in stream]
        assert hub.subscribers == 0
        return frames

    hello, changed, heartbeat = asyncio.run(scenario())
    assert hello.startswith(b"retry: ") and b"event: hello" in hello
    data = json.loads(changed.split(b"data: ", 1)[1])
    assert data["stations"] == ["st-1"] and data["ports"][0]["status"] == "faulted"
    assert heartbeat == b": heartbeat\n\n"


def test_a_slow_subscriber_loses_its_oldest_events_only() -> None:
    async def scenario() -> tuple[int, int]:
        hub = EventHub(queue_size=2)
        stream = hub.stream()
        await anext(stream)
        for n in range(5):
            hub.publish({"type": "booking", "n": n})
        first = json.loads((await anext(stream)).split(b"data: ", 1)[1])["n"]
        await stream.aclose()
        return first, hub.dropped

    first, dropped = asyncio.run(scenario())
    assert (first, dropped) == (3, 3)
