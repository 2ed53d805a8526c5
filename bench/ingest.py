"""Ingest benchmark: unit states/s a `chargenet server` process persists, over bare paho's.

One Mosquitto (queues sized so that nothing is dropped) and N publisher processes, each a
gateway sending `--count` distinct unit states (8 ports, QoS 1) as fast as a window of
100 unacknowledged messages lets it. For each store, two phases with fresh publishers,
each timed from the publishers' start to the last message:

1. the baseline: a bare paho subscriber (its own process) counting what arrives;
2. a real `chargenet server` process (`python -m chargenet server`, configured by its
   environment as a deployment is) persisting the stream into the store: SQLite, or a
   throwaway PostgreSQL cluster of its own with PostgreSQL's default durability (fsync,
   synchronous_commit and full_page_writes on; not the tests' cluster, which turns them
   off). The durability settings are read back from the store and printed.

The figure is the ratio of 2 over the baseline run just before it, the median over
`--rounds` such pairs, each on a fresh database (goal >= 0.8). Each receiver's CPU per
1,000 messages is printed too: on a shared machine it varies far less than rates. The
server's time ends when every gateway's newest seq is committed (polled every 50 ms from
the gateways table); then the stored (gateway, seq) rows are counted. A run fails, with a
message and exit status 1, when any part of it does: a publisher or subscriber exiting
with an error, the server dying or not exiting 0 on SIGTERM, or any count short of what
was generated (nothing is assumed delivered). Each phase's broker session is ended
afterwards, so no phase pays for queueing messages to an earlier one.

`--servers 1 2 3` runs phase 2 with that many server processes sharing the ingest through
one shared subscription (`CHARGENET_MQTT_SHARED_GROUP`): their CPU per 1,000 messages,
summed, shows whether each message is handled once (a process handling every message
would multiply it by the count).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bench.processes import (
    SPAWN,
    BenchFailed,
    acquire_all,
    check_alive,
    cpu_s,
    end_all,
    fail_loudly,
    join_all,
    receive,
    spawn,
)
from bench.stores import describe, durable_cluster, store_settings
from protocol import topics
from protocol.payloads import BatteryState, GatewayStatus, PortState, PortStatus, UnitState
from protocol.topics import DEFAULT_PREFIX, UnitAddress
from server.db.models import Gateway, SeenMessage
from server.db.session import Database
from tests.mosquitto import Mosquitto
from tests.postgres import PostgresCluster, create_database
from tests.server.running import ServerProcess

UNITS_PER_GATEWAY: Final = 50
PORTS: Final = 8
WINDOW: Final = 100
"""QoS 1 messages a publisher leaves unacknowledged at once: it waits for the oldest
beyond that. Unbounded, paho ran out of its 65,535 message ids and the publisher died;
a window of 10,000 published a quarter as fast as one of 50-500 (paho's per-ack work
grows with what it holds)."""
IDLE_S: Final = 20.0
"""A phase fails when nothing new arrives for this long."""
POLL_S: Final = 0.05
"""How often the gateways' newest seqs are read: the end is known to within this (0.5 % of
a 10 s phase), and the reads cost the server's machine little."""
READY_S: Final = 120.0
"""How long publishers may take to build their messages and connect."""
REPORT_PERIOD_S: Final = 3600.0
"""The server's: nothing goes stale during a run."""


def payloads(gw_id: str, count: int) -> list[tuple[str, bytes]]:
    """A birth (seq 0) and `count` - 1 state snapshots of a gateway's units, as a gateway
    sends them: the birth names the gateway's run of seqs, so the server sends receipts."""
    ts = datetime.now(UTC)
    units = [UnitAddress("rs485-1", 1 + n) for n in range(UNITS_PER_GATEWAY)]
    birth = GatewayStatus(seq=0, ts=ts, state="online", boot_id=f"bench-{gw_id}",
                          version="bench", units=[str(u) for u in units],
                          seq_run=f"bench-{gw_id}")  # fmt: skip
    out = [(topics.GATEWAY_STATUS.format(DEFAULT_PREFIX, gw_id), birth.model_dump_json().encode())]
    for seq in range(1, count):
        ports = [PortState(port=p, status=PortStatus.CHARGING if (seq + p) % 3 else
                           PortStatus.AVAILABLE, occupied=(seq + p) % 3 != 0, enabled=True,
                           power_w=10.0 + p, energy_wh=seq % 97 / 10, temp_c=30.0)
                 for p in range(1, PORTS + 1)]  # fmt: skip
        battery = BatteryState(soc_pct=80 - seq % 50, soh_pct=97.0, voltage_v=51.2,
                               current_a=-3.1, power_w=-158.7, temp_c=31.4, rated_wh=1000.0,
                               state="connected", alarms=[])  # fmt: skip
        state = UnitState(seq=seq, ts=ts, online=True, battery=battery, ports=ports)
        unit = UnitAddress("rs485-1", 1 + seq % UNITS_PER_GATEWAY)
        out.append((topics.UNIT_STATE.format(DEFAULT_PREFIX, gw_id, unit),
                    state.model_dump_json().encode()))  # fmt: skip
    return out


def settle(info: mqtt.MQTTMessageInfo) -> None:
    """Wait for one message's PUBACK; a publish that failed or timed out raises."""
    info.wait_for_publish(IDLE_S)
    if not info.is_published():
        raise TimeoutError(f"message {info.mid} not acknowledged within {IDLE_S:.0f} s")


def publisher(port: int, gw_id: str, count: int, ready: Any, go: Any) -> None:
    """One publisher process: prepare everything, then publish at full speed on `go`."""
    messages = payloads(gw_id, count)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{gw_id}")
    client.max_inflight_messages_set(WINDOW)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.release()
    if not go.wait(READY_S * 2):
        raise TimeoutError("never told to start")
    pending: deque[mqtt.MQTTMessageInfo] = deque()
    for topic, payload in messages:
        if len(pending) >= WINDOW:
            settle(pending.popleft())
        info = client.publish(topic, payload, qos=1)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
        pending.append(info)
    for info in pending:
        settle(info)
    client.disconnect()
    client.loop_stop()


def bare_subscriber(
    port: int, expected: int, ready: Any, out: Queue[tuple[int, float, float]]
) -> None:
    """Count what arrives; report (count, time of the last message, CPU seconds used)."""
    received = 0
    last = 0.0

    def on_message(*_: Any) -> None:
        nonlocal received, last
        received += 1
        last = time.time()

    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe([(topics.UNIT_STATE.subscription(DEFAULT_PREFIX), 1),
                      (topics.GATEWAY_STATUS.subscription(DEFAULT_PREFIX), 1)])  # fmt: skip
    client.loop_start()
    if not subscribed.wait(10):
        raise TimeoutError("no SUBACK within 10 s")
    ready.release()
    cpu_before = time.process_time()
    seen, since = 0, time.time()
    while received < expected and time.time() - since < IDLE_S:
        time.sleep(0.05)  # sampling a counter, not synchronising
        if received != seen:
            seen, since = received, time.time()
    client.loop_stop()
    out.put((received, last, time.process_time() - cpu_before))


def forget_session(port: int, client_id: str) -> None:
    """End a phase's persistent session, so the broker stops queueing the next phases for it.

    Every phase subscribes with clean session off; left alone, the broker would keep
    storing every later phase's messages for the departed subscriber, a load the first
    phase (the bare subscriber) never has to share the machine with.
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


class Publishers:
    """One publisher process per gateway, started together: `start()` returns the time."""

    def __init__(self, port: int, gateways: list[str], count: int) -> None:
        self.ready = SPAWN.Semaphore(0)
        self.go = SPAWN.Event()
        self.processes = [spawn(publisher, f"publisher {gw}", port, gw, count, self.ready,
                                self.go) for gw in gateways]  # fmt: skip
        try:
            acquire_all(self.ready, self.processes, READY_S, "connected to the broker")
        except BaseException:
            self.end()
            raise

    def start(self) -> float:
        started = time.time()
        self.go.set()
        return started

    def check(self) -> None:
        check_alive(self.processes)

    def join(self) -> None:
        join_all(self.processes, 300)

    def end(self) -> None:
        end_all(self.processes)


@dataclass
class Phase:
    """One receiver's run: what it got of what was generated, and how fast."""

    receiver: str
    generated: int
    stored: int
    seconds: float
    rate: float = field(init=False)
    lost: int = field(init=False)
    counters: dict[str, int] = field(default_factory=dict)
    """The server's own ingest counters (from /metrics) after the run."""
    cpu_s: float = 0.0
    """The receiving process's CPU over the run."""
    cpu_ms_per_1000: float = field(init=False)
    """CPU per 1,000 messages: far steadier than rates on a shared machine."""

    def __post_init__(self) -> None:
        self.rate = round(self.stored / self.seconds, 1)
        self.seconds = round(self.seconds, 3)
        self.cpu_ms_per_1000 = round(self.cpu_s * 1e6 / self.generated, 1)
        self.cpu_s = round(self.cpu_s, 2)
        self.lost = self.generated - self.stored
        if self.stored != self.generated:
            raise BenchFailed(f"{self.receiver}: {self.stored} of {self.generated} messages "
                              f"{'stored' if self.receiver != 'bare' else 'received'}")  # fmt: skip


def run_bare(broker: Mosquitto, gateways: list[str], count: int, publish_port: int) -> Phase:
    ready = SPAWN.Semaphore(0)
    out: Queue[tuple[int, float, float]] = SPAWN.Queue()
    expected = len(gateways) * count
    subscriber = spawn(bare_subscriber, "bare subscriber", broker.port, expected, ready, out)
    publishers: Publishers | None = None
    try:
        acquire_all(ready, [subscriber], 30, "subscribed")
        publishers = Publishers(publish_port, gateways, count)
        started = publishers.start()
        received, last, cpu = receive(out, [subscriber, *publishers.processes], 300)
        publishers.join()
        join_all([subscriber], 10)
    finally:
        end_all([subscriber, *(publishers.processes if publishers else [])])
    forget_session(broker.port, "bench-bare")
    return Phase("bare", expected, received, last - started, cpu_s=cpu)


async def newest_seqs(db: Database, gateways: list[str]) -> dict[str, int]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(Gateway.gw_id, Gateway.max_seq).where(Gateway.gw_id.in_(gateways))
        )
        return {gw_id: int(seq) for gw_id, seq in rows.all()}


async def stored_rows(db: Database, gateways: list[str]) -> int:
    async with db.transaction() as session:
        found = await session.scalar(
            select(func.count()).select_from(SeenMessage).where(SeenMessage.gw_id.in_(gateways))
        )
        return int(found or 0)


def ingest_counters(server: ServerProcess) -> dict[str, int]:
    """`chargenet_ingest_total{counter=...}` from the server's /metrics."""
    for family in text_string_to_metric_families(server.metrics()):
        if family.name == "chargenet_ingest":
            return {s.labels["counter"]: int(s.value) for s in family.samples
                    if s.name == "chargenet_ingest_total"}  # fmt: skip
    return {}


def watch(server: ServerProcess) -> Callable[[], None]:
    """A check that fails the run as soon as the server process has exited."""

    def check() -> None:
        if not server.alive:
            tail = server.log_text()[-2000:]
            raise BenchFailed(f"the server exited with {server.process.returncode}:\n{tail}")

    return check


async def wait_for(check: Callable[[], None], condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + 30
    while not await asyncio.to_thread(condition):
        check()
        if time.monotonic() > deadline:
            raise BenchFailed(f"timed out after 30 s waiting for {what}")
        await asyncio.sleep(0.1)


async def server_phase(
    servers: list[ServerProcess], db: Database, gateways: list[str], count: int,
    publish_port: int,
) -> Phase:  # fmt: skip
    checks = [watch(server) for server in servers]

    def server_alive() -> None:
        for check in checks:
            check()

    def subscribed() -> bool:
        return all(ingest_counters(s).get("connects", 0) >= 1 for s in servers)

    await wait_for(server_alive, subscribed, "every server to subscribe")
    publishers = await asyncio.to_thread(Publishers, publish_port, gateways, count)
    try:
        cpu_before = sum(cpu_s(server.process.pid) for server in servers)
        started = publishers.start()
        done, since = 0, time.monotonic()
        while True:
            newest = await newest_seqs(db, gateways)
            now = time.time()
            # One process commits a gateway's messages in order; several may commit the
            # newest while another still holds older ones, so then every row is counted.
            if all(newest.get(gw, -1) == count - 1 for gw in gateways) and (
                len(servers) == 1 or await stored_rows(db, gateways) == len(gateways) * count
            ):
                break
            server_alive()
            publishers.check()
            progress = sum(seq + 1 for seq in newest.values())
            if progress != done:
                done, since = progress, time.monotonic()
            elif time.monotonic() - since > IDLE_S:
                raise BenchFailed(f"nothing committed for {IDLE_S:.0f} s; newest seqs {newest}")
            await asyncio.sleep(POLL_S)
        cpu = sum(cpu_s(server.process.pid) for server in servers) - cpu_before
        await asyncio.to_thread(publishers.join)
    finally:
        publishers.end()
    counters: dict[str, int] = {}
    for server in servers:
        for name, value in (await asyncio.to_thread(ingest_counters, server)).items():
            counters[name] = counters.get(name, 0) + value
    if not counters.get("receipts_sent"):
        raise BenchFailed("the server sent no receipts: the run would not measure a real one")
    return Phase("server", len(gateways) * count, await stored_rows(db, gateways), now - started,
                 counters=counters, cpu_s=cpu)  # fmt: skip


def run_server(
    broker: Mosquitto, url: str, workdir: Path, gateways: list[str], count: int,
    publish_port: int, processes: int,
) -> Phase:  # fmt: skip
    """`processes` `chargenet server` processes on `url`, sharing the ingest through one
    shared subscription (one process too, so every count takes the same path)."""
    client_ids = [f"bench-server-{gateways[0]}-{n}" for n in range(processes)]
    servers: list[ServerProcess] = []
    try:
        for client_id in client_ids:
            env = {"CHARGENET_MQTT_CLIENT_ID": client_id, "CHARGENET_MQTT_SHARED_GROUP": "bench"}
            servers.append(ServerProcess(workdir, broker.url, REPORT_PERIOD_S, url, env=env))

        async def measure() -> Phase:
            db = Database(url)
            try:
                return await server_phase(servers, db, gateways, count, publish_port)
            finally:
                await db.dispose()

        phase = asyncio.run(measure())
    finally:
        codes = [server.stop() for server in servers]
    for server, code in zip(servers, codes, strict=True):
        if code != 0:
            tail = server.log_text()[-2000:]
            raise BenchFailed(f"a server exited with {code} on SIGTERM:\n{tail}")
    for client_id in client_ids:
        forget_session(broker.port, client_id)
    return phase


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    broker = Mosquitto(root)
    broker.config.write_text(  # nothing dropped, whatever the subscriber's pace
        broker.config.read_text().replace("max_queued_messages 100000",
                                          "max_queued_messages 0\nmax_queued_bytes 0")
    )  # fmt: skip
    broker.start()
    publish_port = args.publisher_port or broker.port
    cluster: PostgresCluster | None = None
    results: dict[str, Any] = {}
    try:
        for store in args.stores:
            by_processes: dict[str, Any] = {}
            for processes in args.servers:
                rounds: list[dict[str, Any]] = []
                ratios: list[float] = []
                for n in range(args.rounds):  # a fresh database per round: none grows
                    if store == "sqlite":
                        url = f"sqlite+aiosqlite:///{root / f'bench-{processes}-{n}.sqlite3'}"
                    else:
                        cluster = cluster or durable_cluster()
                        url = create_database(cluster.url)
                    gateways = [f"{store}{processes}-{n}-{i}" for i in range(args.publishers)]
                    bare = run_bare(broker, [f"bare-{gw}" for gw in gateways], args.count,
                                    publish_port)  # fmt: skip
                    server = run_server(broker, url, root, gateways, args.count, publish_port,
                                        processes)  # fmt: skip
                    if not broker.running:
                        raise BenchFailed(f"mosquitto died; log:\n{broker.log.read_text()[-2000:]}")
                    ratio = round(server.rate / bare.rate, 3)
                    rounds.append({"bare": asdict(bare), "server": asdict(server),
                                   "ratio": ratio})  # fmt: skip
                    ratios.append(ratio)
                    settings = store_settings(url)
                    print(f"{store} | {processes} | {describe(settings)} | {bare.rate:.0f} | "
                          f"{server.rate:.0f} | {ratio:.2f} | {server.generated} | "
                          f"{server.stored} | {server.lost} | {server.seconds:.2f} | "
                          f"{bare.cpu_ms_per_1000:.0f} | {server.cpu_ms_per_1000:.0f}",
                          flush=True)  # fmt: skip
                by_processes[str(processes)] = {"ratio_median": statistics.median(ratios),
                                                "ratios": ratios, "rounds": rounds}  # fmt: skip
                print(
                    f"{store} x{processes}: median ratio {statistics.median(ratios):.2f} of "
                    f"{len(ratios)} (range {min(ratios):.2f}-{max(ratios):.2f})",
                    flush=True,
                )
            results[store] = {"settings": settings, "processes": by_processes}
    finally:
        broker.stop()
        if cluster is not None:
            cluster.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--publishers", type=int, default=2, help="gateways (processes)")
    parser.add_argument("--count", type=int, default=30_000, help="messages per publisher")
    parser.add_argument("--rounds", type=int, default=3,
                        help="baseline and server pairs per store; the median ratio counts, "
                             "as the machine's load varies between pairs")  # fmt: skip
    parser.add_argument("--stores", nargs="+", choices=["sqlite", "postgresql"],
                        default=["sqlite", "postgresql"])  # fmt: skip
    parser.add_argument("--servers", nargs="+", type=int, default=[1], metavar="N",
                        help="server processes sharing the ingest, a run each: 1 2 3")  # fmt: skip
    parser.add_argument("--publisher-port", type=int,
                        help="send the publishers to this port instead of the broker's (to "
                             "see a broken run fail)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.count < 1 or args.publishers < 1 or min(args.servers) < 1:
        parser.error("--rounds, --count, --publishers and --servers must be at least 1")

    def body() -> int:
        print(f"{args.publishers} publishers x {args.count} unit states (QoS 1, {PORTS} ports)")
        print(
            "store | servers | durability | bare paho msg/s | servers' msg/s | ratio | "
            "generated | stored | lost | seconds | CPU-ms per 1,000: bare | servers (sum)",
            flush=True,
        )
        with tempfile.TemporaryDirectory(prefix="chargenet-bench-ingest-") as scratch:
            results = run(args, Path(scratch))
        machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
                   "load_average": os.getloadavg()}  # fmt: skip
        report = {"machine": machine, "publishers": args.publishers,
                  "per_publisher": args.count, "receiver": "python -m chargenet server",
                  "results": results}  # fmt: skip
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
        return 0

    return fail_loudly("ingest", body)


if __name__ == "__main__":
    raise SystemExit(main())
