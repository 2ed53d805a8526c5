"""Two server processes with one MQTT client id on one PostgreSQL database: the second is
refused at start, naming the setting; once the first is gone the id is free again."""

from __future__ import annotations

import pytest

from server.api.app import create_app
from server.ingest.owner import ClientIdTaken
from tests.server.api.conftest import settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_second_process_with_the_same_client_id_is_refused(postgres_url: str) -> None:
    first = create_app(settings_for(postgres_url))
    async with first.router.lifespan_context(first):
        second = create_app(settings_for(postgres_url))
        with pytest.raises(ClientIdTaken, match="CHARGENET_MQTT_CLIENT_ID='chargenet-server'"):
            async with second.router.lifespan_context(second):
                raise AssertionError("the second process started")
        other = settings_for(postgres_url).model_copy(update={"mqtt_client_id": "server-2"})
        third = create_app(other)
        async with third.router.lifespan_context(third):  # an id of its own starts beside
            assert third.state.services.settings.mqtt_client_id == "server-2"
    again = create_app(settings_for(postgres_url))
    async with again.router.lifespan_context(again):  # the first stopped: its id is free
        assert again.state.services.settings.mqtt_client_id == "chargenet-server"
