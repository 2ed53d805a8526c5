"""A server killed with messages received but not yet committed: the broker still has them.

The server acknowledges a message to the broker only once its batch is committed, so a
crash (SIGKILL, no clean stop) between the two loses nothing: the next server process on
the same session gets those messages again and applies them.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

import psycopg
import pytest

from server.db.migrate import upgrade
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.ingest.messages import state
from tests.server.ingest.test_link import publish_burst
from tests.server.running import ServerProcess

pytestmark = pytest.mark.slow
STATES = 300
SESSION = {"CHARGENET_MQTT_CLIENT_ID": "server-crash-test"}
"""Both server processes resume one broker session, as a restarted server does."""


def ingest_counter(server: ServerProcess, name: str) -> float:
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as reply:
        text = reply.read().decode()
    line = f'chargenet_ingest_total{{counter="{name}"}} '
    return next((float(x[len(line) :]) for x in text.splitlines() if x.startswith(line)), 0.0)


def seen_messages(database: str) -> int:
    with psycopg.connect(database) as db:
        row = db.execute("SELECT count(*) FROM seen_messages").fetchone()
        assert row is not None
        return int(row[0])


def test_messages_received_but_not_committed_survive_a_killed_server(
    broker: Mosquitto, postgres_url: str, tmp_path: Path
) -> None:
    upgrade(postgres_url)
    plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    wires = [state("crash", f"rs485-1.{1 + i % 20}", seq=i + 1) for i in range(STATES)]
    first = ServerProcess(tmp_path, broker.url, 5.0, postgres_url, env=SESSION)
    with psycopg.connect(plain) as lock:  # the ingest's writes wait behind this lock
        lock.execute("LOCK TABLE seen_messages IN EXCLUSIVE MODE")
        publish_burst(broker.port, wires)
        wait_until(
            lambda: ingest_counter(first, "received") + ingest_counter(first, "backlog") == STATES,
            20, "the server holding every state, none committed",
        )  # fmt: skip
        first.kill()
        lock.rollback()
    assert seen_messages(plain) == 0
    second = ServerProcess(tmp_path, broker.url, 5.0, postgres_url, env=SESSION)
    try:
        wait_until(lambda: seen_messages(plain) == STATES, 30, "every state applied after all")
        assert ingest_counter(second, "failed") == 0
    finally:
        second.stop()
