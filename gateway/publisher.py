"""The MQTT shell: one broker connection at a time, fed by the outbox.

Each connection attempt gets a fresh `aiomqtt.Client` (MQTT 3.1.1, fixed client id,
`clean_session=False`, a retained `offline` Last Will whose seq comes from the outbox), so
paho never re-sends stale in-flight messages by itself: whatever was not acknowledged is
still in the outbox and goes out again from there. On every connect, in this order:

1. the retained `online` birth with the unit inventory,
2. the current snapshot of every unit,
3. the backlog stored before this connection, in seq order, `historical: true`,
4. live messages as producers append them.

2 is appended to the outbox at connect time, so the snapshots carry the newest seqs; the
birth and the will carry the seqs the outbox reserved for them (`Outbox.status_seqs`), kept
across failed attempts. Replays are never retained: an old snapshot must not replace the
present one the broker keeps for new subscribers. Up to `inflight` publishes await their
PUBACK at once; acknowledged seqs are marked in the outbox in batches.

With receipts (`Outbox.receipts`), the server's receipts on the gateway's `receipt` topic
delete what it stored, and a resender sends again, as history, what the broker took and no
receipt covered within `resend_after_s`: a page at a time, soon again while receipts come
back, backing off to `RESEND_MAX_S` while none do (no server is listening).

A write the outbox's disk refuses (full) while connecting or marking PUBACKs ends the
connection like a broker failure: the next attempt comes after the backoff.

Commands arriving on the gateway's `cmd` topic are queued and handed to `on_command` one at
a time by a worker that outlives connections; its exceptions are logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import aiomqtt
from pydantic import ValidationError

from gateway.config import Endpoint, MqttConfig
from gateway.outbox import Entry, Message, Outbox, as_historical
from protocol.mqtt_socket import ended_with_socket
from protocol.payloads import GatewayStatus, Receipt
from protocol.topics import COMMAND, GATEWAY_STATUS, RECEIPT

log = logging.getLogger(__name__)

ACK_BATCH: Final = 200
"""PUBACKed seqs deleted from the outbox per transaction while draining."""
PAGE: Final = 500
"""Messages read from the outbox at a time."""
STOP_TIMEOUT_S: Final = 5.0
RESEND_SOON_S: Final = 0.5
"""Between pages of resends while the server is confirming them."""
RESEND_MAX_S: Final = 600.0


@dataclass
class Counters:
    published: int = 0
    """PUBLISH packets handed to the client."""
    acked: int = 0
    """PUBACKs received (and the rows deleted from the outbox)."""
    connects: int = 0
    reconnects: int = 0
    """Connections made after the first."""
    commands: int = 0
    command_errors: int = 0
    """`on_command` raised."""
    receipts: int = 0
    confirmed: int = 0
    """Outbox rows a receipt deleted."""
    bad_receipts: int = 0
    """Receipts that did not parse or named another run of seqs (ignored)."""
    resent: int = 0
    """Messages sent again because no receipt covered them in time."""
    foreign: int = 0
    """Messages on topics we did not subscribe to (ignored): amqtt, the demo's broker, hands
    a connecting client the retained messages of every client's subscriptions."""


class Publisher:
    """Connect, publish the outbox, receive commands, reconnect with backoff; forever."""

    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        gw_id: str,
        outbox: Outbox,
        birth: Callable[[], GatewayStatus],
        snapshots: Callable[[], list[Entry]],
        on_command: Callable[[bytes], Awaitable[None]],
        version: str,
        boot_id: str,
    ) -> None:
        self._config = config
        self._client_id = client_id
        self._outbox = outbox
        self._birth = birth
        self._snapshots = snapshots
        self._on_command = on_command
        self._version = version
        self._boot_id = boot_id
        self._status_topic = GATEWAY_STATUS.format(config.prefix, gw_id)
        self._command_topic = COMMAND.format(config.prefix, gw_id)
        self._receipt_topic = RECEIPT.format(config.prefix, gw_id)
        self._receipted = asyncio.Event()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._finished = asyncio.Event()
        self._running = False
        self._commands: asyncio.Queue[bytes] = asyncio.Queue()
        self._failures = 0
        self._at = 0
        """The broker of `endpoints` tried now."""
        self.connected = False
        self.counters = Counters()

    def notify(self) -> None:
        """Producers call this after `outbox.append`: the sender wakes and publishes."""
        self._wake.set()

    async def run(self) -> None:
        """Serve until `stop()`: connect, publish, and reconnect after every failure."""
        self._running = True
        worker = asyncio.create_task(self._work_commands())
        try:
            while not self._stopping.is_set():
                try:
                    await self._connection()
                except* aiomqtt.MqttError as group:
                    self._log_failure(group.exceptions[0])
                except* sqlite3.OperationalError as group:  # the outbox's disk refuses
                    self._log_failure(group.exceptions[0], "the outbox cannot write")
                if self._stopping.is_set():
                    break
                delay = self._backoff()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
        finally:
            self.connected = False
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            self._running = False
            self._finished.set()

    async def stop(self) -> None:
        """End `run`: when connected, publish the retained `offline` status (with the will's
        seq) and disconnect cleanly, so the broker drops the will. In-flight messages stay
        in the outbox for the next start."""
        self._stopping.set()
        if self._running:
            await self._finished.wait()

    # -- one connection ----------------------------------------------------------------------

    async def _connection(self) -> None:
        # The will's seq is the birth's plus one, so that the offline status always carries
        # a higher seq than the online status it replaces.
        _, will_seq = self._outbox.status_seqs()
        birth = self._birth().model_copy(update={"seq_run": self._outbox.seq_run})
        will = GatewayStatus(
            seq=will_seq,
            ts=datetime.now(UTC),
            state="offline",
            boot_id=self._boot_id,
            version=self._version,
            units=birth.units,
            seq_run=self._outbox.seq_run,
        )
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(self._client(will))
            self.connected = True
            self._failures = 0
            self.counters.connects += 1
            if self.counters.connects > 1:
                self.counters.reconnects += 1
            log.info("connected to %s:%d as %s", *self._where(), self._client_id)
            try:
                status = Entry(self._status_topic, birth, retain=True,
                               supersedes=self._status_topic)  # fmt: skip
                boundary = self._outbox.next_seq
                fresh = [
                    self._outbox.append_status(status),
                    *self._outbox.append(self._snapshots()),
                ]
                async with asyncio.TaskGroup() as tasks:
                    receiver = tasks.create_task(self._receive(client))
                    sender = tasks.create_task(self._send(client, fresh, boundary))
                    await self._stopping.wait()
                    sender.cancel()
                    receiver.cancel()
                    await self._publish_offline(client, will)
            finally:
                self.connected = False

    def _where(self) -> tuple[str, int]:
        """The broker tried now, for logs: never the URL, which might carry credentials."""
        endpoint = self._config.endpoints[self._at]
        return endpoint.host, endpoint.port

    def _client(self, will: GatewayStatus) -> aiomqtt.Client:
        config = self._config
        endpoint = config.endpoints[self._at]
        client = aiomqtt.Client(
            endpoint.host,
            endpoint.port,
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,
            keepalive=config.keepalive_s,
            timeout=float(config.keepalive_s),
            will=aiomqtt.Will(
                self._status_topic, will.model_dump_json().encode(), qos=1, retain=True
            ),
            max_inflight_messages=config.inflight,
            tls_context=tls_context(config, endpoint),
        )
        client.pending_calls_threshold = config.inflight + 10
        return ended_with_socket(client)

    async def _receive(self, client: aiomqtt.Client) -> None:
        topics = [self._command_topic] + ([self._receipt_topic] if self._outbox.receipts else [])
        await client.subscribe([(topic, 1) for topic in topics])
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                payload = b"" if payload is None else str(payload).encode()
            if message.topic.value == self._receipt_topic:
                self._on_receipt(bytes(payload))
            elif message.topic.value == self._command_topic:
                self._commands.put_nowait(bytes(payload))
            else:
                self.counters.foreign += 1
                log.debug("ignoring a message on %s (not subscribed)", message.topic.value)

    def _on_receipt(self, payload: bytes) -> None:
        try:
            receipt = Receipt.model_validate_json(payload)
        except ValidationError as exc:
            self.counters.bad_receipts += 1
            log.warning("ignoring a malformed receipt (%d errors)", exc.error_count())
            return
        if receipt.seq_run != self._outbox.seq_run:
            self.counters.bad_receipts += 1
            log.info("ignoring a receipt for run %s (ours is %s)", receipt.seq_run,
                     self._outbox.seq_run)  # fmt: skip
            return
        self.counters.receipts += 1
        self.counters.confirmed += self._outbox.confirm(receipt.seqs)
        self._receipted.set()

    async def _send(self, client: aiomqtt.Client, fresh: list[Message], boundary: int) -> None:
        """Birth and snapshots, then the backlog as history, then live messages.

        The backlog is what was stored before `boundary` (the outbox's next seq when the
        snapshots were taken); anything stored from there on that is not one of the
        snapshots (appended since) is live.
        """
        async with asyncio.TaskGroup() as tasks:
            flight = _Flight(client, self._outbox, self.counters, self._config.inflight, tasks)
            if self._outbox.receipts:
                tasks.create_task(self._resend(flight))
            try:
                for message in fresh:
                    await flight.send(message)
                sent = {m.seq for m in fresh}
                after = -1
                while batch := self._outbox.pending(after, PAGE):
                    backlog = [m for m in batch if m.seq < boundary and m.seq not in sent]
                    for message in backlog:
                        await flight.send(replay(message))
                    if batch[-1].seq >= boundary:
                        break
                    after = batch[-1].seq
                after = boundary - 1
                while True:
                    batch = self._outbox.pending(after, PAGE)
                    if not batch:
                        self._wake.clear()
                        await self._wake.wait()
                        continue
                    for message in batch:
                        if message.seq not in sent:
                            await flight.send(message)
                    after = batch[-1].seq
            finally:
                flight.flush()

    async def _resend(self, flight: _Flight) -> None:
        """Send again, as history, what the broker took and no receipt covered in time."""
        after_s = self._config.resend_after_s
        wait = after_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._receipted.wait()
            heard = self._receipted.is_set()
            self._receipted.clear()
            overdue = self._outbox.overdue(time.time() - after_s, PAGE)
            if not overdue:
                wait = after_s / 2
                continue
            log.info("%d messages taken by the broker have no receipt after %.0f s: sending "
                     "them again", len(overdue), after_s)  # fmt: skip
            for message in overdue:
                await flight.send(replay(message))
            self.counters.resent += len(overdue)
            wait = RESEND_SOON_S if heard else min(RESEND_MAX_S, max(wait, after_s) * 2)

    async def _publish_offline(self, client: aiomqtt.Client, will: GatewayStatus) -> None:
        offline = will.model_copy(update={"ts": datetime.now(UTC)})
        try:
            await client.publish(
                self._status_topic,
                offline.model_dump_json().encode(),
                qos=1,
                retain=True,
                timeout=STOP_TIMEOUT_S,
            )
        except aiomqtt.MqttError as exc:
            log.warning("could not publish the offline status: %s", exc)

    # -- around connections ------------------------------------------------------------------

    async def _work_commands(self) -> None:
        while True:
            payload = await self._commands.get()
            self.counters.commands += 1
            try:
                await self._on_command(payload)
            except Exception:
                self.counters.command_errors += 1
                log.exception("command handler failed on %d bytes", len(payload))

    def _log_failure(self, exc: BaseException, why: str = "failed or lost") -> None:
        """Log it (once per outage), and turn to the next broker for the next attempt."""
        if self._failures == 0:
            log.warning("MQTT connection to %s:%d %s: %s", *self._where(), why, exc)
        else:
            log.debug("MQTT reconnect attempt %d failed: %s", self._failures, exc)
        self._failures += 1
        self._at = (self._at + 1) % len(self._config.endpoints)

    def _backoff(self) -> float:
        """Seconds before the next attempt: exponential from the minimum, full jitter."""
        low = self._config.reconnect_min_s
        high = min(self._config.reconnect_max_s, low * 2 ** min(self._failures, 32))
        return random.uniform(low, max(low, high))


def replay(message: Message) -> Message:
    """A backlog message as it goes out after an outage: historical and not retained."""
    historical = as_historical(message)
    return Message(historical.seq, historical.topic, historical.payload, retain=False)


def tls_context(config: MqttConfig, endpoint: Endpoint) -> ssl.SSLContext | None:
    """TLS for mqtts:// or when a CA file is given; a client certificate when configured."""
    if not endpoint.tls:
        return None
    context = ssl.create_default_context(cafile=config.ca_file)
    if config.cert_file is not None:
        context.load_cert_chain(config.cert_file, config.key_file)
    return context


class _Flight:
    """The publishes of one connection: at most `inflight` await PUBACK, acked in batches."""

    def __init__(
        self,
        client: aiomqtt.Client,
        outbox: Outbox,
        counters: Counters,
        inflight: int,
        tasks: asyncio.TaskGroup,
    ) -> None:
        self._client = client
        self._outbox = outbox
        self._counters = counters
        self._window = asyncio.Semaphore(inflight)
        self._tasks = tasks
        self._busy = 0
        self._done: list[int] = []

    async def send(self, message: Message) -> None:
        """Start publishing; waits only while the window is full. Starts keep seq order."""
        await self._window.acquire()
        self._busy += 1
        self._counters.published += 1
        self._tasks.create_task(self._publish(message))

    async def _publish(self, message: Message) -> None:
        try:
            await self._client.publish(message.topic, message.payload, qos=1, retain=message.retain)
        finally:
            self._busy -= 1
            self._window.release()
        self._counters.acked += 1
        self._done.append(message.seq)
        if len(self._done) >= ACK_BATCH or self._busy == 0:
            self.flush()

    def flush(self) -> None:
        if self._done:
            self._outbox.ack(self._done)
            self._done = []
