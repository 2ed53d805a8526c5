"""Two server processes on one PostgreSQL database: a dashboard connected to one hears what
the other changed (LISTEN/NOTIFY), and an event too big for NOTIFY goes as its stations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator

import pytest

from server.api.app import create_app
from server.dashboard.relay import PAYLOAD_MAX, payload
from tests.server.api.conftest import ADMIN, client_of, demo_app

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_an_event_too_big_for_notify_goes_as_its_type_and_stations() -> None:
    small = {"type": "registry", "stations": ["ozu-01"]}
    assert json.loads(payload(small)) == small
    big = {"type": "change", "stations": ["ozu-01"], "ports": [{"port": n} for n in range(2000)]}
    assert len(json.dumps(big)) > PAYLOAD_MAX
    assert json.loads(payload(big)) == {"type": "change", "stations": ["ozu-01"]}


async def next_registry_event(stream: AsyncGenerator[bytes]) -> dict[str, object]:
    """The first `registry` event a browser on this stream receives."""
    async for chunk in stream:
        text = chunk.decode()
        if "event: registry" in text:
            found: dict[str, object] = json.loads(text.split("data: ", 1)[1])
            return found
    raise AssertionError("the stream ended")


async def test_a_dashboard_on_one_process_hears_the_others_change(postgres_url: str) -> None:
    async with demo_app(postgres_url) as first, client_of(first) as client:
        second = create_app(first.state.settings.model_copy(update={"mqtt_client_id": "s-2"}))
        async with second.router.lifespan_context(second):
            for app in (first, second):
                async with asyncio.timeout(10):
                    await app.state.relay.listening.wait()
            stream = second.state.services.hub.stream()
            assert b"hello" in await anext(stream)  # the browser is subscribed
            changed = await client.put("/api/v1/stations/ozu-01", json={"name_en": "Ozu ES"},
                                       headers=ADMIN)  # fmt: skip
            assert changed.status_code == 200, changed.text
            async with asyncio.timeout(10):
                event = await next_registry_event(stream)
            assert event == {"type": "registry", "stations": ["ozu-01"]}
            assert second.state.relay.received >= 1  # the sender counts after NOTIFY returns
            await stream.aclose()
