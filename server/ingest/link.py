"""The server's MQTT shell: receive gateway messages in batches, publish commands.

One broker connection at a time (aiomqtt, MQTT 3.1.1, fixed client id, clean session off:
the broker keeps our QoS 1 subscriptions and queues messages while we restart), reconnected
with backoff. The receiver only stamps and queues; a batcher takes what has arrived (up to
`batch_max`) and applies it in one transaction (journalling its ChangeSet), then hands the
ChangeSet to the fan-out. A message is acknowledged (PUBACK) only once its batch is
committed, or dropped for good: until then the broker keeps it, so a crash of the server
loses nothing (the broker sends it again; applying is idempotent). The broker's inflight
window is what bounds the messages held here: it must hold at least two batches
(`INFLIGHT_WINDOW`) or the ingest waits on its own acknowledgements. With `sweep_staleness`
it also runs `mark_stale` every half report period (the app may run it itself instead).
Commands stored by `send_command` are published from the outbox table.

Nothing a gateway sends can stop the loop: bad topics and payloads are counted by the
router, a batch that fails for a reason other than a database outage is retried message by
message so that only the poison message is dropped (and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from sqlalchemy.exc import DBAPIError

from protocol.mqtt_socket import ended_with_socket
from protocol.topics import COMMAND
from server.db.session import Database, is_outage
from server.ingest.apply import apply_batch
from server.ingest.changeset import ChangeSet
from server.ingest.commands import as_payload, claim_pending, release
from server.ingest.fanout import FanOut, Listener
from server.ingest.plausibility import Bounds
from server.ingest.receipts import Settled, receipts
from server.ingest.router import Inbound, IngestCounters, TopicCache, TopicRouter
from server.ingest.routes import MQTT_ROUTES
from server.ingest.staleness import mark_stale, may_judge_silence
from server.settings import Settings

log = logging.getLogger(__name__)

Raw = tuple[str, bytes, datetime, int, int]
"""Topic, payload, when received, the connection it came on and its packet id (0: QoS 0)."""

BATCH_MAX: Final = 5000
INFLIGHT_WINDOW: Final = 2 * BATCH_MAX
"""Unacknowledged messages the broker should send us at once (Mosquitto's
`max_inflight_messages`): one batch being applied while the next arrives."""
STOP_DRAIN_S: Final = 5.0
"""On stop, how long to go on applying (and acknowledging) what arrived before leaving."""
LINGER_S: Final = 0.003
"""After the first message of a batch, how long to wait for more when few have queued."""
COMMAND_POLL_S: Final = 2.0
"""Pending commands are looked for at least this often (other processes may store them)."""
RECONNECT_MIN_S: Final = 0.2
RECONNECT_MAX_S: Final = 10.0
KEEPALIVE_S: Final = 30
READS_PER_WAKEUP: Final = 256
"""Packets read each time the broker socket is readable (see `read_what_arrived`)."""
GC_GEN0_THRESHOLD: Final = 50_000
"""Allocations between young-generation collections while ingesting (CPython's default: 700).

Under a backlog the default makes the collector walk the queued messages over and over,
which made validating a payload 1.5-3x dearer; the ingest makes little cyclic garbage.
"""


def tune_gc_for_ingest() -> None:
    """Freeze what startup allocated and collect the young generation less often.

    Process-wide, and idempotent: called when an ingest starts (`MqttLink.run`), since the
    ingest is what allocates most in a server process.
    """
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(GC_GEN0_THRESHOLD, gen0), gen1, gen2)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # never the password
        return f"BrokerAddress({self.host}:{self.port}, tls={self.tls})"


def broker_addresses(settings: Settings) -> list[BrokerAddress]:
    """`mqtt_url`, then each of `mqtt_failover_urls`, in the order they are tried."""
    if not settings.mqtt_url:
        raise ValueError("no MQTT URL configured")
    return [broker_address(settings, url) for url in [settings.mqtt_url,
                                                      *settings.mqtt_failover_urls]]  # fmt: skip


def broker_address(settings: Settings, url: str) -> BrokerAddress:
    """Host, port and TLS from `url`; credentials from settings (or the URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError("MQTT URL must be mqtt://host[:port] or mqtts://host[:port]")
    tls = parts.scheme == "mqtts"
    password = settings.mqtt_password.get_secret_value() if settings.mqtt_password else None
    return BrokerAddress(
        host=parts.hostname,
        port=parts.port or (8883 if tls else 1883),
        tls=tls,
        username=settings.mqtt_username or parts.username,
        password=password if password is not None else parts.password,
    )


class _ReadWhatArrived:
    """paho's `loop_read` for one client, reading every packet already received (bounded).

    aiomqtt calls `loop_read()` once per readable event, and paho then reads one packet:
    under a burst that is an event-loop turn (and a poll) per message, the biggest cost of
    receiving. This reads on until the socket would block, at most READS_PER_WAKEUP
    packets so other tasks still get their turn. It uses paho 2's `_packet_read`, the call
    `loop_read` itself makes.
    """

    def __init__(self, client: paho.Client) -> None:
        self._client = client

    def __call__(self, max_packets: int = 1) -> MQTTErrorCode:
        client = self._client
        for _ in range(READS_PER_WAKEUP):
            if client._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = client._packet_read()
            if rc > 0:
                return client._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                break
        return MQTTErrorCode.MQTT_ERR_SUCCESS


def take_messages(client: aiomqtt.Client, take: Callable[[paho.MQTTMessage], None]) -> None:
    """Have paho hand each message straight to `take`, and log packets only when debugging.

    aiomqtt would wrap each message in its own `Message` and queue it for `client.messages`,
    whose iteration costs a task and an `asyncio.wait` per message; paho would log two
    debug lines per message. Under a burst those were a fifth of the receiving cost.
    """
    inner = client._client
    inner.on_message = lambda _client, _userdata, message: take(message)
    if not logging.getLogger("mqtt").isEnabledFor(logging.DEBUG):
        inner.disable_logger()


def read_what_arrived(client: aiomqtt.Client) -> aiomqtt.Client:
    """Make `client` read all packets that have arrived per wakeup, not one."""
    inner = client._client
    inner.loop_read = _ReadWhatArrived(inner)  # type: ignore[method-assign]
    return client


class MqttLink:
    """Ingest gateway messages and publish commands until `stop()`."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        fan_out: FanOut | None = None,
        router: TopicRouter = MQTT_ROUTES,
        batch_max: int = BATCH_MAX,
        sweep_staleness: bool = False,
    ) -> None:
        self._settings = settings
        self._db = db
        self.fan_out = fan_out or FanOut(db)
        self._router = router
        self._batch_max = batch_max
        self._sweep = sweep_staleness
        self._addresses = broker_addresses(settings)
        self._at = 0
        """The broker of `_addresses` tried now."""
        self._prefix = settings.mqtt_prefix
        self._owner = settings.mqtt_client_id
        self._bounds = Bounds(
            ts_ahead_s=settings.plausible_ts_ahead_s,
            ts_behind_s=settings.plausible_ts_behind_h * 3600,
            seq_lead=settings.plausible_seq_lead,
            seq_rate=settings.plausible_seq_rate,
        )
        self._queue: asyncio.Queue[Raw | None] = asyncio.Queue()
        self._commands_wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._failures = 0
        self._topics: TopicCache = {}
        self._connection_no = 0
        self._acker: paho.Client | None = None
        """The connection messages of `_connection_no` are acknowledged on, while it lasts."""
        self._idle = asyncio.Event()
        """Set while every message taken has been applied and acknowledged."""
        self._idle.set()
        self.connected = asyncio.Event()
        self.hearing_since: datetime | None = None
        """When the current broker connection began (None while there is none)."""
        self.unapplied_since: datetime | None = None
        """When the oldest message received and not yet applied arrived (or earlier)."""
        self.counters = IngestCounters()

    def add_listener(self, listener: Listener) -> None:
        self.fan_out.add(listener)

    def notify_commands(self) -> None:
        """A command was stored: publish it now rather than at the next poll."""
        self._commands_wake.set()

    @property
    def backlog(self) -> int:
        """Messages received and not yet applied."""
        return self._queue.qsize()

    async def run(self) -> None:
        """Serve until `stop()`; then apply what was received and return."""
        tune_gc_for_ingest()
        async with asyncio.TaskGroup() as tasks:
            batcher = tasks.create_task(self._batches())
            sweeper = tasks.create_task(self._sweeps()) if self._sweep else None
            await self._connections()
            self._queue.put_nowait(None)  # the batcher drains up to here, then ends
            await batcher
            if sweeper is not None:
                sweeper.cancel()

    async def stop(self) -> None:
        self._stopping.set()

    # -- receiving ---------------------------------------------------------------------------

    async def _connections(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._connection()
            except* aiomqtt.MqttError as group:
                self._log_failure(group.exceptions[0])
            if self._stopping.is_set():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._backoff()):
                    await self._stopping.wait()

    async def _connection(self) -> None:
        try:
            async with self._client() as client:
                await client.subscribe(
                    [(f, 1) for f in self._router.subscriptions(
                        self._prefix, self._settings.mqtt_shared_group)]
                )  # fmt: skip
                self._failures = 0
                self.counters.connects += 1
                self.hearing_since = datetime.now(UTC)
                self.connected.set()
                log.info("MQTT ingest connected to %s:%d as %s", self._address().host,
                         self._address().port, self._settings.mqtt_client_id)  # fmt: skip
                async with asyncio.TaskGroup() as tasks:
                    receiver = tasks.create_task(self._receive(client))
                    sender = tasks.create_task(self._send_commands(client))
                    await self._stopping.wait()
                    sender.cancel()
                    with contextlib.suppress(TimeoutError):  # acknowledge what was applied
                        async with asyncio.timeout(STOP_DRAIN_S):
                            await self._idle.wait()
                    receiver.cancel()
        finally:
            self._acker = None
            self.hearing_since = None
            self.connected.clear()

    def _address(self) -> BrokerAddress:
        return self._addresses[self._at]

    def _client(self) -> aiomqtt.Client:
        address = self._address()
        client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=self._settings.mqtt_client_id,
            protocol=aiomqtt.ProtocolVersion.V311,
            clean_session=False,
            keepalive=KEEPALIVE_S,
            timeout=float(KEEPALIVE_S),
            tls_context=ssl.create_default_context() if address.tls else None,
        )
        self._connection_no += 1
        self._acker = client._client
        self._acker.manual_ack_set(True)
        take_messages(client, self._take)
        return read_what_arrived(ended_with_socket(client))

    async def _receive(self, client: aiomqtt.Client) -> None:
        """Wait out the connection: messages reach the batcher through `take_messages`.

        Nothing is ever queued for `client.messages`, so this loop only ends by raising
        MqttError when the connection is lost.
        """
        async for _ in client.messages:
            continue  # never reached: `take_messages` takes every message first

    def _take(self, message: paho.MQTTMessage) -> None:
        """Stamp a message as paho hands it over and queue it for the batcher."""
        self._idle.clear()
        mid, at = (message.mid if message.qos else 0), datetime.now(UTC)
        self.unapplied_since = self.unapplied_since or at
        self._queue.put_nowait((message.topic, bytes(message.payload), at, self._connection_no,
                                mid))  # fmt: skip

    def _acknowledge(self, raw: list[Raw]) -> None:
        """PUBACK messages now committed (or dropped for good), in the order they came.

        One that came on an earlier connection is not acknowledged: its packet id may name
        another message now, and the broker sends it again (a duplicate, changing nothing).
        """
        acker, current = self._acker, self._connection_no
        if acker is None:
            return
        for _, _, _, connection_no, mid in raw:
            if mid and connection_no == current:
                acker.ack(mid, 1)

    # -- applying ----------------------------------------------------------------------------

    async def _batches(self) -> None:
        done = False
        while not done:
            raw = [await self._queue.get()]
            if raw[0] is not None and self._queue.qsize() < self._batch_max:
                await asyncio.sleep(LINGER_S)
            while len(raw) < self._batch_max and not self._queue.empty():
                raw.append(self._queue.get_nowait())
            done = None in raw
            taken = [r for r in raw if r is not None]
            messages = self._route(taken)
            settled: list[Settled] = []
            changesets = await self._apply(messages, settled) if messages else []
            self._acknowledge(taken)
            self._send_receipts(settled)
            if self._queue.empty():
                self._idle.set()
                self.unapplied_since = None
            elif taken:  # what is left arrived after the last message taken
                self.unapplied_since = taken[-1][2]
            for changeset in changesets:
                await self.fan_out(changeset)

    def _route(self, raw: list[Raw]) -> list[Inbound[Any]]:
        route, prefix, counters, cache = (self._router.route, self._prefix, self.counters,
                                          self._topics)  # fmt: skip
        routed = (route(prefix, topic, payload, at, counters, cache, defer=True)
                  for topic, payload, at, _, _ in raw)  # fmt: skip
        return [m for m in routed if m is not None]

    async def _apply(self, messages: list[Inbound[Any]], settled: list[Settled]) -> list[ChangeSet]:
        """Apply one batch; wait out a database outage; isolate a poison message."""
        delay = RECONNECT_MIN_S
        while True:
            try:
                changeset = await apply_batch(self._db, messages, self.counters,
                                              owner=self._owner, bounds=self._bounds,
                                              settled=settled)  # fmt: skip
                return [changeset]
            except Exception as exc:
                if not is_outage(exc):
                    return await self._isolate(messages, settled, exc)
                log.warning("database unavailable (%s); retrying in %.1fs", type(exc).__name__,
                            delay)  # fmt: skip
            await asyncio.sleep(delay)
            delay = min(RECONNECT_MAX_S, delay * 2)

    async def _isolate(
        self, messages: list[Inbound[Any]], settled: list[Settled], exc: Exception
    ) -> list[ChangeSet]:
        self.counters.batch_errors += 1
        if len(messages) == 1:
            message = messages[0]
            self.counters.failed += 1
            log.error("dropping %s from %s seq %d: %r", message.route.kind, message.gw_id,
                      message.seq, exc)  # fmt: skip
            return []
        log.warning("batch of %d failed (%r); applying one by one", len(messages), exc)
        results = []
        for message in messages:
            results.extend(await self._apply([message], settled))
        return results

    def _send_receipts(self, settled: list[Settled]) -> None:
        """Tell the gateways what is committed (QoS 1, queued by paho: never waits here).

        Without a connection they are not sent: the gateways send those messages again,
        and the receipts for the duplicates say it then.
        """
        client = self._acker
        if client is None:
            return
        for topic, payload in receipts(self._prefix, settled):
            client.publish(topic, payload, qos=1)
            self.counters.receipts_sent += 1

    def may_judge_silence(self, now: datetime) -> bool:
        """`staleness.may_judge_silence` for this link; counts the sweeps it holds back."""
        if may_judge_silence(
            self.hearing_since, now, self._settings.report_period_s, self.unapplied_since
        ):
            return True
        self.counters.sweeps_held += 1
        return False

    async def _sweeps(self) -> None:
        period = self._settings.report_period_s
        while True:
            await asyncio.sleep(max(0.2, period / 2))
            now = datetime.now(UTC)
            if not self.may_judge_silence(now):
                continue
            try:
                changeset = await mark_stale(self._db, now, period, owner=self._owner)
            except Exception:
                log.exception("staleness sweep failed")
                continue
            await self.fan_out(changeset)

    # -- commands ----------------------------------------------------------------------------

    async def _send_commands(self, client: aiomqtt.Client) -> None:
        delay = RECONNECT_MIN_S
        while True:
            self._commands_wake.clear()
            try:
                rows = await claim_pending(self._db, datetime.now(UTC))
            except (OSError, DBAPIError) as exc:  # the outbox waits, intact
                log.warning("commands: database unavailable (%s); retrying in %.1fs",
                            type(exc).__name__, delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(RECONNECT_MAX_S, delay * 2)
                continue
            delay = RECONNECT_MIN_S
            for index, row in enumerate(rows):
                topic = COMMAND.format(self._prefix, row.gw_id)
                payload = as_payload(row).model_dump_json(exclude_none=True).encode()
                try:
                    await client.publish(topic, payload, qos=1)
                except BaseException:
                    await asyncio.shield(release(self._db, [r.cmd_id for r in rows[index:]]))
                    raise
                self.counters.commands_sent += 1
            if rows:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(COMMAND_POLL_S):
                    await self._commands_wake.wait()

    # -- around connections ------------------------------------------------------------------

    def _log_failure(self, exc: BaseException) -> None:
        """Log it (once per outage), and turn to the next broker for the next attempt."""
        if self._failures == 0:
            log.warning("MQTT ingest connection to %s:%d failed or lost: %s",
                        self._address().host, self._address().port, exc)  # fmt: skip
        else:
            log.debug("MQTT reconnect attempt %d failed: %s", self._failures, exc)
        self._failures += 1
        self._at = (self._at + 1) % len(self._addresses)

    def _backoff(self) -> float:
        high = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2 ** min(self._failures, 32))
        return random.uniform(RECONNECT_MIN_S, max(RECONNECT_MIN_S, high))
