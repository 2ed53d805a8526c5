"""A server killed at the worst moments loses nothing (SIGKILL, no clean stop).

- Messages received but not yet committed: the server acknowledges a message to the broker
  only once its batch is committed, so the next server process on the same session gets
  them again and applies them.
- A change committed before every listener reacted: the journal hands it out again at the
  next start, so the incident of a port fault still opens.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from server.db.migrate import upgrade
from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.server.ingest.messages import state, status
from tests.server.ingest.test_link import publish_burst
from tests.server.running import ServerProcess

pytestmark = pytest.mark.slow
STATES = 300
SESSION = {"CHARGENET_MQTT_CLIENT_ID": "server-crash-test"}
"""Both server processes resume one broker session, as a restarted server does."""


@contextlib.contextmanager
def killed_after(server: ServerProcess) -> Iterator[None]:
    """SIGKILL `server` as the block ends, or if it fails (before the lock opened with it goes)."""
    try:
        yield
    finally:
        server.kill()


def ingest_counter(server: ServerProcess, name: str) -> float:
    line = f'chargenet_ingest_total{{counter="{name}"}} '
    found = (x for x in server.metrics().splitlines() if x.startswith(line))
    return next((float(x[len(line) :]) for x in found), 0.0)


def backlog(server: ServerProcess) -> float:
    line = "chargenet_ingest_backlog "
    return next(float(x[len(line) :]) for x in server.metrics().splitlines() if x.startswith(line))


def count(database: str, query: str) -> int:
    with psycopg.connect(database) as db:
        row = db.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def seen_messages(database: str) -> int:
    return count(database, "SELECT count(*) FROM seen_messages")


@pytest.mark.reliability
def test_messages_received_but_not_committed_survive_a_killed_server(
    broker: Mosquitto, postgres_url: str, tmp_path: Path
) -> None:
    upgrade(postgres_url)
    plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    wires = [state("crash", f"rs485-1.{1 + i % 20}", seq=i + 1) for i in range(STATES)]
    first = ServerProcess(tmp_path, broker.url, 5.0, postgres_url, env=SESSION)
    with psycopg.connect(plain) as lock, killed_after(first):  # the ingest's writes wait
        lock.execute("LOCK TABLE seen_messages IN EXCLUSIVE MODE")
        publish_burst(broker.port, wires)
        wait_until(
            lambda: ingest_counter(first, "received") + backlog(first) == STATES,
            20, "the server holding every state, none committed",
        )  # fmt: skip
    assert seen_messages(plain) == 0
    back = time.monotonic()
    second = ServerProcess(tmp_path, broker.url, 5.0, postgres_url, env=SESSION)
    try:
        wait_until(lambda: seen_messages(plain) == STATES, 30, "every state applied after all")
        recovery_s = time.monotonic() - back
        assert ingest_counter(second, "failed") == 0
        applied = int(ingest_counter(second, "applied"))
        record(Outcome("server SIGKILLed holding uncommitted messages, restarted", STATES,
                       seen_messages(plain), applied - STATES, recovery_s,
                       "gateway messages"))  # fmt: skip
    finally:
        second.stop()


def test_a_change_committed_before_its_incident_opened_opens_it_after_a_crash(
    broker: Mosquitto, postgres_url: str, tmp_path: Path
) -> None:
    upgrade(postgres_url)
    plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    fault_pending = (
        'SELECT count(*) FROM pending_changes WHERE body LIKE \'%"after_status":"faulted"%\''
    )
    incident = "SELECT count(*) FROM incidents WHERE kind = 'port_fault' AND port = 1"
    first = ServerProcess(tmp_path, broker.url, 5.0, postgres_url, env=SESSION)
    first.admin("POST", "/api/v1/stations", {"id": "st-1", "name_ja": "避難所",
                "name_en": "Shelter", "latitude": 33.5, "longitude": 132.5})  # fmt: skip
    first.admin("PUT", "/api/v1/batteries/crash/rs485-1.1", {"station_id": "st-1"})
    with psycopg.connect(plain) as lock, killed_after(first):  # the fan-out waits on incidents
        lock.execute("LOCK TABLE incidents IN EXCLUSIVE MODE")
        fault = state("crash", "rs485-1.1", 2, ("faulted", "available"))
        publish_burst(broker.port, [status("crash", 1, units=("rs485-1.1",)), fault])
        wait_until(lambda: count(plain, fault_pending) == 1, 20,
                   "the fault committed, its incident not yet opened")  # fmt: skip
    assert count(plain, incident) == 0
    second = ServerProcess(tmp_path, broker.url, 5.0, postgres_url, env=SESSION)
    try:
        wait_until(lambda: count(plain, incident) == 1, 30, "the port_fault incident opened")
        wait_until(lambda: count(plain, "SELECT count(*) FROM pending_changes") == 0, 10,
                   "the journal emptied")  # fmt: skip
    finally:
        second.stop()
