"""Gateway -> Mosquitto -> MqttLink -> database, with real processes and a real broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from protocol.payloads import CommandAction
from server.db.migrate import upgrade
from server.db.models import CommandRow, Gateway, Port, SeenMessage, Unit
from server.db.session import Database
from server.ingest.changeset import ChangeSet
from server.ingest.commands import send_command
from server.ingest.link import MqttLink
from server.settings import Settings
from tests.conditions import async_read_until, async_wait_until
from tests.mosquitto import Mosquitto
from tests.postgres import PostgresCluster, create_database
from tests.server.ingest.messages import state, status
from tests.system.harness import Simulator, quiet_simulator, start_gateway

GW = "gw-test"
UNIT = "line-1.1"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    simulator = quiet_simulator(tmp_path, baudrate=115200)
    yield simulator
    simulator.stop()


class Running:
    """An MqttLink serving in the test's event loop, and what its listener heard."""

    def __init__(self, link: MqttLink, db: Database) -> None:
        self.link = link
        self.db = db
        self.heard: list[ChangeSet] = []

    async def listen(self, changes: ChangeSet) -> None:
        self.heard.append(changes)

    def ports_heard(self, status: str) -> list[Any]:
        return [c for cs in self.heard for c in cs.ports if c.after_status == status]

    async def scalar(self, query: Any) -> Any:
        async with self.db.transaction() as session:
            return await session.scalar(query)


@contextlib.asynccontextmanager
async def running_link(
    broker: Mosquitto, tmp_path: Path, database_url: str | None = None, **settings: Any
) -> AsyncIterator[Running]:
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'server.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    db = Database(url)
    config = Settings(database_url=url, mqtt_url=broker.url, mqtt_client_id="server-test",
                      **settings)  # fmt: skip
    link = MqttLink(config, db, sweep_staleness=True)
    running = Running(link, db)
    link.add_listener(running.listen)
    task = asyncio.create_task(link.run())
    try:
        async with asyncio.timeout(10):
            await link.connected.wait()
        yield running
    finally:
        await link.stop()
        async with asyncio.timeout(20):
            await task
        await db.dispose()


def port_status(number: int) -> Any:
    return (
        select(Port.status)
        .join(Unit, Unit.id == Port.unit_pk)
        .where(Unit.gw_id == GW, Unit.unit == UNIT, Port.port == number)
    )


pytestmark = pytest.mark.slow


def test_a_port_fault_shows_as_faulted(sim: Simulator, broker: Mosquitto, tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=1.0)

    async def scenario() -> None:
        async with running_link(broker, tmp_path, report_period_s=1.0) as server:
            await async_wait_until(lambda: len(server.ports_heard("available")) >= 4, 30,
                                   "four ports available")  # fmt: skip
            await asyncio.to_thread(sim.inject, "line-1", 1, "port_fault", port=2,
                                    error="over_current")  # fmt: skip
            await async_wait_until(lambda: server.ports_heard("faulted"), 10, "a faulted port")
            [change] = server.ports_heard("faulted")
            assert (change.gw_id, change.unit, change.port, change.error) == (
                GW, UNIT, 2, "over_current")  # fmt: skip
            assert await server.scalar(port_status(2)) == "faulted"
            await async_wait_until(
                lambda: any(e.kind == "port_faulted" for cs in server.heard for e in cs.events),
                10, "the port_faulted event",
            )  # fmt: skip
            # A command goes out through the outbox and comes back answered.
            cmd_id = await send_command(server.db, GW, UNIT, CommandAction.RESET_ALARMS,
                                        wake=server.link.notify_commands)  # fmt: skip
            await async_wait_until(
                lambda: any(a.cmd_id == cmd_id for cs in server.heard for a in cs.commands),
                15, "the command's result",
            )  # fmt: skip
            row = await server.scalar(select(CommandRow).where(CommandRow.cmd_id == cmd_id))
            assert row.ok and row.sent_at is not None and row.answered_at is not None
            assert server.link.counters.malformed == 0

    try:
        asyncio.run(scenario())
    finally:
        gateway.stop()


def test_a_killed_gateway_takes_its_ports_offline(
    sim: Simulator, broker: Mosquitto, tmp_path: Path
) -> None:
    gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=1.0)

    async def scenario() -> None:
        async with running_link(broker, tmp_path, report_period_s=1.0) as server:
            await async_wait_until(lambda: len(server.ports_heard("available")) >= 4, 30,
                                   "four ports available")  # fmt: skip
            await asyncio.to_thread(gateway.kill)  # SIGKILL: the broker sends the Last Will
            await async_wait_until(
                lambda: any(g.state == "offline" for cs in server.heard for g in cs.gateways),
                20, "the gateway offline",
            )  # fmt: skip
            offline = server.ports_heard("offline")
            assert {(c.unit, c.port) for c in offline} == {(UNIT, p) for p in (1, 2, 3, 4)}
            state_ = await server.scalar(select(Gateway.state).where(Gateway.gw_id == GW))
            assert state_ == "offline"

    try:
        asyncio.run(scenario())
    finally:
        if gateway.alive:
            gateway.stop()


BURST = 20_000
MALFORMED = 5


CONNECT_TRIES = 3
CONNACK_S = 5.0
PUBACKS_S = 60.0


def publish_burst(port: int, wires: list[tuple[str, bytes]]) -> None:
    """A plain paho publisher, QoS 1, as fast as the broker takes it, all acknowledged.

    Its network loop runs here, each wait bounded, not in paho's thread: in fresh-clone runs
    a threaded publisher was seen to open its connection and never send its CONNECT, then
    retry forever. A connection not acknowledged in `CONNACK_S` is dropped and another
    opened; a publish not acknowledged in `PUBACKS_S` fails the test by name."""
    client = _connected(port)
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in wires]
        deadline = time.monotonic() + PUBACKS_S
        while not all(info.is_published() for info in infos):
            if time.monotonic() > deadline:
                missing = sum(not info.is_published() for info in infos)
                raise TimeoutError(f"{missing} of {len(infos)} publishes unacknowledged")
            client.loop(0.05)
    finally:
        client.disconnect()


def _connected(port: int) -> mqtt.Client:
    for _ in range(CONNECT_TRIES):
        client = mqtt.Client(CallbackAPIVersion.VERSION2,
                             client_id=f"burst-{uuid.uuid4().hex[:12]}")  # fmt: skip
        client.max_inflight_messages_set(1000)
        client.connect("127.0.0.1", port)
        deadline = time.monotonic() + CONNACK_S
        while not client.is_connected() and time.monotonic() < deadline:
            client.loop(0.05)
        if client.is_connected():
            return client
        client.disconnect()
    raise TimeoutError(f"the broker on {port} acknowledged none of {CONNECT_TRIES} connections")


def test_a_burst_is_applied_without_loss(broker: Mosquitto, tmp_path: Path) -> None:
    wires = [state("burst", f"b.{1 + i % 200}", seq=i, statuses=("charging",) * 4)
             for i in range(BURST)]  # fmt: skip
    for n in range(MALFORMED):
        wires.insert(n * (BURST // MALFORMED) + 7, (wires[0][0], b'{"seq": "not a number"}'))

    async def scenario() -> None:
        async with running_link(broker, tmp_path) as server:
            count = select(func.count()).select_from(SeenMessage)
            await asyncio.to_thread(publish_burst, broker.port, wires)
            applied = await async_read_until(
                lambda: server.scalar(count), lambda n: n == BURST, 60, "all applied"
            )
            assert applied == BURST
            assert server.link.counters.malformed == MALFORMED
            assert server.link.counters.applied == BURST
            assert server.link.counters.failed == 0
            assert await server.scalar(select(func.max(Unit.state_seq))) == BURST - 1

    asyncio.run(scenario())


def test_a_database_outage_loses_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    """PostgreSQL goes away mid-stream: the link waits it out and applies everything after."""
    cluster = PostgresCluster()
    cluster.start()
    before = [status("outage", 1, units=("rs485-1.1",)), state("outage", "rs485-1.1", 2)]
    during = [state("outage", "rs485-1.1", seq, ("faulted" if seq % 2 else "charging",) * 2)
              for seq in range(3, 43)]  # fmt: skip
    applied = select(func.max(Unit.state_seq)).where(Unit.gw_id == "outage")
    seen = select(func.count()).select_from(SeenMessage)

    async def scenario() -> None:
        url = create_database(cluster.url)
        async with running_link(broker, tmp_path, database_url=url) as server:
            await asyncio.to_thread(publish_burst, broker.port, before)
            await async_read_until(lambda: server.scalar(applied), lambda s: s == 2, 15,
                                   "the first state applied")  # fmt: skip
            await asyncio.to_thread(cluster.pause)
            await asyncio.to_thread(publish_burst, broker.port, during)
            # held by the link: routed into the batch it keeps retrying, or queued behind it
            await async_wait_until(
                lambda: server.link.counters.received + server.link.backlog == 42, 15,
                "the link holding every message during the outage",
            )  # fmt: skip
            assert server.link.counters.applied == 2
            await asyncio.to_thread(cluster.resume)
            await async_read_until(lambda: server.scalar(applied), lambda s: s == 42, 30,
                                   "the newest state applied after the outage")  # fmt: skip
            assert await server.scalar(seen) == 42
            assert (server.link.counters.failed, server.link.counters.batch_errors) == (0, 0)
            assert (
                await server.scalar(
                    select(func.count()).select_from(Port).where(Port.status == "charging")
                )
                == 2
            )

    try:
        asyncio.run(scenario())
    finally:
        cluster.stop()


def test_silence_during_a_broker_outage_marks_nothing_until_heard_again(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """Without the broker the server hears nobody: that is no news about the gateways."""
    stale = select(Unit.stale).where(Unit.gw_id == "quiet")

    async def scenario() -> None:
        async with running_link(broker, tmp_path, report_period_s=1.0) as server:
            await asyncio.to_thread(publish_burst, broker.port, [state("quiet", "rs485-1.1", 1)])
            await async_read_until(lambda: server.scalar(stale), lambda s: s is False, 15,
                                   "the state applied")  # fmt: skip
            await asyncio.to_thread(broker.stop)
            held = server.link.counters.sweeps_held
            await async_wait_until(lambda: server.link.counters.sweeps_held >= held + 8, 20,
                                   "sweeps held for 4 s, over 3 report periods")  # fmt: skip
            assert await server.scalar(stale) is False
            await asyncio.to_thread(broker.start)
            await async_wait_until(lambda: server.link.hearing_since is not None, 20,
                                   "the link back")  # fmt: skip
            held = server.link.counters.sweeps_held
            await async_read_until(lambda: server.scalar(stale), lambda s: s is True, 20,
                                   "the still silent battery marked after 3 periods")  # fmt: skip
            # the sweeps of the first 3 periods back were held too (about one per half period)
            assert server.link.counters.sweeps_held >= held + 3

    asyncio.run(scenario())
