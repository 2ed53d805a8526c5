"""The publisher against a real Mosquitto, watched by an independent paho subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from chargenet.demo import free_port
from gateway.config import MqttConfig
from gateway.outbox import Outbox
from gateway.publisher import Publisher, tls_context
from protocol.payloads import Receipt
from tests.conditions import async_wait_until, wait_until
from tests.gateway.conftest import GW, PREFIX, event_entry, make_publisher
from tests.mosquitto import Mosquitto

MB = 1024 * 1024
REPO = Path(__file__).resolve().parents[2]
ALL = f"{PREFIX}/gw/{GW}/#"
STATUS = f"{PREFIX}/gw/{GW}/status"
CMD = f"{PREFIX}/gw/{GW}/cmd"
RECEIPT_TOPIC = f"{PREFIX}/gw/{GW}/receipt"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    topic: str
    data: dict[str, Any]
    retain: bool

    @property
    def kind(self) -> str:
        return self.topic.rsplit("/", 1)[1]


class Subscriber:
    """A plain paho client in its own thread, recording what the broker delivers."""

    def __init__(self, broker: Mosquitto, client_id: str = "", persistent: bool = False) -> None:
        self.received: list[Received] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=5)
        self.client.loop_start()
        wait_until(self._subscribed.is_set, what="the subscriber's SUBACK")

    def _on_connect(self, client: mqtt.Client, _: Any, flags: Any, *__: Any) -> None:
        if not flags.session_present:
            client.subscribe(ALL, qos=1)

    def _on_message(self, _: mqtt.Client, __: Any, message: mqtt.MQTTMessage) -> None:
        data = json.loads(message.payload) if message.payload.startswith(b"{") else {}
        self.received.append(Received(message.topic, data, bool(message.retain)))

    def of_kind(self, kind: str) -> list[Received]:
        return [r for r in list(self.received) if r.kind == kind]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


async def start(publisher: Publisher) -> asyncio.Task[None]:
    task = asyncio.create_task(publisher.run())
    await async_wait_until(lambda: publisher.connected or task.done(), what="connect")
    return task


async def shut(publisher: Publisher, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(10):
        await publisher.stop()
    await task


def test_birth_states_and_events_arrive_on_their_topics(broker: Mosquitto, tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", 16 * MB)

    async def scenario() -> None:
        publisher = make_publisher(broker.url, outbox)
        task = await start(publisher)
        await async_wait_until(lambda: outbox.backlog() == 0, what="birth and snapshots acked")
        watcher = Subscriber(broker)  # joins late: sees what the broker retained
        try:
            await async_wait_until(
                lambda: len(watcher.of_kind("state")) == 3 and watcher.of_kind("status"),
                what="retained birth and states",
            )
            [status] = watcher.of_kind("status")
            assert status.retain and status.topic == STATUS
            assert status.data["state"] == "online"
            assert status.data["units"] == ["rs485-1.1", "rs485-1.2", "rs485-1.3"]
            assert {s.topic for s in watcher.of_kind("state")} == {
                f"{PREFIX}/gw/{GW}/unit/rs485-1.{n}/state" for n in (1, 2, 3)
            }
            assert all(s.retain and not s.data["historical"] for s in watcher.of_kind("state"))

            messages = outbox.append([event_entry(2), event_entry(3)])
            publisher.notify()
            await async_wait_until(lambda: len(watcher.of_kind("event")) == 2, what="events")
            events = watcher.of_kind("event")
            assert [e.data["seq"] for e in events] == [m.seq for m in messages]
            assert [e.topic for e in events] == [m.topic for m in messages]
            assert not any(e.retain or e.data["historical"] for e in events)
            await async_wait_until(lambda: outbox.backlog() == 0, what="events acked")
            assert publisher.counters.acked == publisher.counters.published == 6
        finally:
            watcher.close()
        await shut(publisher, task)
        late = Subscriber(broker)  # the clean stop left a retained offline, not the birth
        try:
            await async_wait_until(lambda: late.of_kind("status"), what="retained status")
            [offline] = late.of_kind("status")
            assert offline.retain and offline.data["state"] == "offline"
            assert offline.data["seq"] > status.data["seq"]
        finally:
            late.close()

    run(scenario)
    outbox.close()


_KILLED_GATEWAY = """
import asyncio, sys
from pathlib import Path
from gateway.outbox import Outbox
from tests.gateway.conftest import make_publisher

outbox = Outbox(Path(sys.argv[2]), 16 * 1024 * 1024)
asyncio.run(make_publisher(sys.argv[1], outbox).run())
"""


def test_last_will_is_a_retained_offline_when_the_gateway_dies(
    broker: Mosquitto, tmp_path: Path
) -> None:
    watcher = Subscriber(broker)
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_GATEWAY, broker.url, str(tmp_path / "o.db")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        online = wait_until(lambda: watcher.of_kind("status"), 20, "the birth")[0]
        assert online.data["state"] == "online"
        child.send_signal(signal.SIGKILL)
        child.wait()
        statuses = wait_until(lambda: watcher.of_kind("status")[1:], 20, "the last will")
        assert statuses[0].data["state"] == "offline"
        assert statuses[0].data["seq"] > online.data["seq"]
        assert statuses[0].data["boot_id"] == online.data["boot_id"]
        assert statuses[0].data["units"] == online.data["units"]
    finally:
        child.kill()
        child.wait()
        watcher.close()
    late = Subscriber(broker)
    try:
        [retained] = wait_until(lambda: late.of_kind("status"), what="the retained will")
        assert retained.retain and retained.data == statuses[0].data
    finally:
        late.close()


def test_outage_replays_the_backlog_once_in_order_after_the_present(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(tmp_path / "o.db", 16 * MB)
    watcher = Subscriber(broker, client_id="test-watcher", persistent=True)
    clock = [0.0]

    async def scenario() -> None:
        publisher = make_publisher(broker.url, outbox, minute=lambda: clock[0])
        task = await start(publisher)
        before = outbox.append([event_entry(1)])
        publisher.notify()
        await async_wait_until(
            lambda: len(watcher.of_kind("state")) == 3 and watcher.of_kind("event"),
            what="the first connection's messages",
        )
        await async_wait_until(lambda: outbox.backlog() == 0, what="acks before the outage")

        broker.stop()
        await async_wait_until(lambda: not publisher.connected, what="the outage noticed")
        clock[0] = 60.0
        outage = []
        for n in range(40):
            outage += outbox.append([event_entry(n % 3 + 1, n)])
            publisher.notify()
        assert outbox.backlog() >= 40
        seen = len(watcher.received)
        broker.start()

        def newer() -> list[Any]:
            # The broker may hand the watcher a message from before the outage again (its
            # own QoS 1 redelivery); what the publisher sent after the outage is all newer.
            return [r for r in watcher.received[seen:] if r.data["seq"] > before[0].seq]

        await async_wait_until(
            lambda: (
                outbox.backlog() == 0
                and len([r for r in newer() if r.kind == "event"]) >= len(outage)
            ),
            timeout_s=20,
            what="the backlog delivered",
        )
        after = newer()
        events = [r for r in after if r.kind == "event"]
        assert [e.data["seq"] for e in events] == [m.seq for m in outage]  # once, in order
        assert all(e.data["historical"] and not e.retain for e in events)
        assert publisher.counters.published == 5 + 4 + 40  # the publisher sent each once

        # the present first: a new birth and every unit's snapshot, then the history
        present = after[: after.index(events[0])]
        assert [r.kind for r in present] == ["status", "state", "state", "state"]
        assert present[0].data["state"] == "online"
        assert all(not r.data["historical"] for r in present)
        assert all(r.data["ts"] == "2026-11-24T10:00:00.000Z" for r in present[1:])
        assert min(r.data["seq"] for r in present) > max(m.seq for m in outage)
        warnings = [r for r in caplog.records if r.name == "gateway.publisher"]
        assert len([r for r in warnings if r.levelno == logging.WARNING]) == 1
        assert publisher.counters.reconnects == 1
        await shut(publisher, task)

    try:
        with caplog.at_level(logging.DEBUG, logger="gateway.publisher"):
            run(scenario)
    finally:
        watcher.close()
        outbox.close()


def test_commands_reach_the_handler_and_a_failing_handler_is_survived(
    broker: Mosquitto, tmp_path: Path
) -> None:
    outbox = Outbox(tmp_path / "o.db", 16 * MB)
    handled: list[bytes] = []

    async def on_command(payload: bytes) -> None:
        if payload == b"boom":
            raise ValueError("malformed command")
        handled.append(payload)

    async def scenario() -> None:
        publisher = make_publisher(broker.url, outbox, on_command)
        task = await start(publisher)
        await async_wait_until(lambda: outbox.backlog() == 0, what="the birth acked")
        sender = Subscriber(broker)
        try:
            for payload in (b'{"cmd_id": "c1"}', b"boom", b'{"cmd_id": "c2"}'):
                sender.client.publish(CMD, payload, qos=1).wait_for_publish(5)
            await async_wait_until(lambda: len(handled) == 2, what="two commands handled")
            assert handled == [b'{"cmd_id": "c1"}', b'{"cmd_id": "c2"}']
            assert publisher.counters.commands == 3
            assert publisher.counters.command_errors == 1
            assert publisher.connected and not task.done()

            # a command sent while the gateway is away waits in its persistent session
            await shut(publisher, task)
            sender.client.publish(CMD, b'{"cmd_id": "c3"}', qos=1).wait_for_publish(5)
            publisher = make_publisher(broker.url, outbox, on_command)
            task = await start(publisher)
            await async_wait_until(lambda: len(handled) == 3, what="the held command")
            assert handled[-1] == b'{"cmd_id": "c3"}'
            await shut(publisher, task)
        finally:
            sender.close()

    run(scenario)
    outbox.close()


def test_a_backlog_drains_concurrently_and_in_order(broker: Mosquitto, tmp_path: Path) -> None:
    backlog = 10_000
    outbox = Outbox(tmp_path / "o.db", 64 * MB)
    for start_at in range(0, backlog, 1000):
        outbox.append([event_entry(n % 24 + 1, n) for n in range(start_at, start_at + 1000)])
    watcher = Subscriber(broker)

    async def scenario() -> None:
        publisher = make_publisher(broker.url, outbox)
        began = time.monotonic()
        task = await start(publisher)
        await async_wait_until(lambda: outbox.backlog() == 0, timeout_s=60, what="the drain")
        elapsed = time.monotonic() - began
        rate = (backlog + 4) / elapsed
        log.warning("drained %d messages in %.2f s: %.0f messages/s", backlog, elapsed, rate)
        print(f"\ndrain: {backlog} messages in {elapsed:.2f} s = {rate:.0f} messages/s")
        await async_wait_until(
            lambda: len(watcher.of_kind("event")) == backlog, timeout_s=30, what="delivery"
        )
        seqs = [e.data["seq"] for e in watcher.of_kind("event")]
        assert seqs == sorted(seqs) and len(set(seqs)) == backlog
        assert publisher.counters.acked == backlog + 4
        await shut(publisher, task)

    try:
        run(scenario)
    finally:
        watcher.close()
        outbox.close()


def test_tls_follows_the_url_or_a_ca_file() -> None:
    plain = MqttConfig(url="mqtt://broker")
    assert tls_context(plain, plain.endpoints[0]) is None
    secure = MqttConfig(url="mqtts://broker", failover_urls=["mqtts://standby"])
    assert [(e.host, e.port, e.tls) for e in secure.endpoints] == [
        ("broker", 8883, True), ("standby", 8883, True)
    ]  # fmt: skip
    context = tls_context(secure, secure.endpoints[1])
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_what_no_receipt_covers_is_sent_again_and_a_receipt_deletes_it(
    broker: Mosquitto, tmp_path: Path
) -> None:
    """A broker may drop what it acknowledged: the outbox keeps it until the server says."""
    outbox = Outbox(tmp_path / "o.db", 16 * MB, receipts=True)
    watcher = Subscriber(broker)

    async def scenario() -> None:
        publisher = make_publisher(broker.url, outbox, resend_after_s=0.5)
        task = await start(publisher)
        outbox.append([event_entry(2), event_entry(3)])
        publisher.notify()

        def resent_events() -> list[Received]:
            return [e for e in watcher.of_kind("event") if e.data["historical"]]

        await async_wait_until(lambda: publisher.counters.resent >= 6 and resent_events(),
                               what="resends received")  # fmt: skip
        assert not any(e.retain for e in resent_events())
        assert outbox.unconfirmed() == 6  # the birth, 3 snapshots, 2 events: all kept
        foreign = Receipt(seq_run="another-run", seqs=[(0, 100)]).model_dump_json()
        watcher.client.publish(RECEIPT_TOPIC, foreign, qos=1).wait_for_publish(5)
        await async_wait_until(lambda: publisher.counters.bad_receipts == 1, what="ignored")
        assert outbox.unconfirmed() == 6
        receipt = Receipt(seq_run=outbox.seq_run, seqs=[(0, outbox.next_seq - 1)])
        watcher.client.publish(RECEIPT_TOPIC, receipt.model_dump_json(), qos=1).wait_for_publish(5)
        await async_wait_until(
            lambda: outbox.unconfirmed() + outbox.backlog() == 0, what="the receipt applied"
        )
        assert publisher.counters.confirmed == 6
        await shut(publisher, task)

    try:
        run(scenario)
    finally:
        watcher.close()
        outbox.close()


def test_failed_connection_attempts_burn_no_seqs(broker: Mosquitto, tmp_path: Path) -> None:
    """A seq the server never sees must be a message that was sent (no false gaps)."""
    outbox = Outbox(tmp_path / "o.db", 16 * MB)
    broker.stop()

    async def scenario() -> None:
        publisher = make_publisher(broker.url, outbox)
        task = asyncio.create_task(publisher.run())
        await async_wait_until(lambda: publisher._failures >= 5, what="five failed attempts")
        assert outbox.next_seq == 2  # the birth's and the will's, reserved once
        broker.start()
        await async_wait_until(lambda: publisher.connected, what="connect")
        watcher = Subscriber(broker)
        try:
            await async_wait_until(lambda: len(watcher.of_kind("state")) == 3, what="states")
            [birth] = watcher.of_kind("status")
            assert birth.data["seq"] == 0
            assert sorted(s.data["seq"] for s in watcher.of_kind("state")) == [2, 3, 4]
            await shut(publisher, task)
        finally:
            watcher.close()

    try:
        run(scenario)
    finally:
        outbox.close()


def test_the_resend_loop_ends_when_cancelled_in_the_turn_a_receipt_arrives(
    tmp_path: Path,
) -> None:
    """A lost connection's TaskGroup cancels the resend loop once. A receipt read from the
    socket's last bytes wakes it in that same turn; Python 3.11's `wait_for` then swallowed
    the cancellation, the loop ran on, and the gateway never reconnected (a CI failure
    after a broker restart). The loop must end."""
    outbox = Outbox(tmp_path / "o.db", 16 * MB, receipts=True)

    async def scenario() -> bool:
        publisher = make_publisher("mqtt://127.0.0.1:1", outbox, resend_after_s=30)
        loop = asyncio.create_task(publisher._resend(flight=None))  # type: ignore[arg-type]
        await async_wait_until(lambda: publisher._receipted._waiters,
                               what="the resend loop waiting for a receipt")  # fmt: skip
        publisher._on_receipt(Receipt(seq_run=outbox.seq_run, seqs=[(0, 0)]).model_dump_json()
                              .encode())  # fmt: skip
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            async with asyncio.timeout(5):
                await loop
        return loop.cancelled()

    try:
        assert asyncio.run(scenario())
    finally:
        outbox.close()


def test_retained_messages_of_other_topics_a_broker_hands_over_are_no_commands(
    tmp_path: Path,
) -> None:
    """amqtt (the demo's embedded broker) gives a connecting client the retained messages
    of every client's subscriptions: another gateway's states reached our command handler
    (logged as malformed commands in the demo). Only the command topic is commands."""
    port = free_port()
    embedded = subprocess.Popen([sys.executable, "-m", "chargenet", "broker", "--port", str(port)])
    outbox = Outbox(tmp_path / "o.db", 16 * MB)
    server_like = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="server-like")
    try:
        wait_until(lambda: _listening(port), 20, "the embedded broker listening")
        server_like.connect("127.0.0.1", port)
        server_like.loop_start()
        server_like.subscribe(f"{PREFIX}/gw/+/unit/+/state", qos=1)
        other = f"{PREFIX}/gw/another-gw/unit/rs485-1.1/state"
        server_like.publish(other, b'{"seq": 1}', qos=1, retain=True).wait_for_publish(5)
        commands: list[bytes] = []

        async def record(payload: bytes) -> None:
            commands.append(payload)

        async def scenario() -> None:
            publisher = make_publisher(f"mqtt://127.0.0.1:{port}", outbox, on_command=record)
            task = await start(publisher)
            await async_wait_until(lambda: publisher.counters.foreign >= 1,
                                   what="the other gateway's retained state ignored")  # fmt: skip
            assert commands == [] and publisher.counters.commands == 0
            await shut(publisher, task)

        run(scenario)
    finally:
        server_like.loop_stop()
        outbox.close()
        embedded.terminate()
        embedded.wait(timeout=10)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True
