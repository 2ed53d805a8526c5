"""Ingest benchmark: state messages/s the server persists, over a bare subscriber's rate.

One Mosquitto (queues sized so that nothing is dropped), N publisher processes sending
distinct unit states (QoS 1, as fast as they can, a fixed count each). Three phases with
the same publishers, each timed from the publishers' start to the last message:

1. a bare paho subscriber (its own process) counting what it receives;
2. the server's MqttLink persisting them into SQLite;
3. the same into PostgreSQL (a throwaway cluster).

The ratio of 2 and 3 over 1 is the figure (goal >= 0.8): the server's rate counts messages
persisted (SeenMessage rows, committed), up to the last commit. Losses are counted from
the subscriber's count and from those rows, never assumed. Each phase's broker session is
ended afterwards, so no phase pays for queueing messages to an earlier one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from protocol import topics
from protocol.payloads import BatteryState, PortState, PortStatus, UnitState
from protocol.topics import DEFAULT_PREFIX, UnitAddress
from server.db.migrate import upgrade
from server.db.models import SeenMessage
from server.db.session import Database
from server.ingest.link import MqttLink
from server.settings import Settings
from tests.mosquitto import Mosquitto
from tests.postgres import PostgresCluster, create_database

UNITS_PER_GATEWAY = 50
PORTS = 8
IDLE_S = 20.0
"""A phase fails when nothing new arrives for this long."""


def payloads(gw_id: str, count: int) -> list[tuple[str, bytes]]:
    """`count` state snapshots of a gateway's units, seq 0.., as a gateway would send them."""
    ts = datetime.now(UTC)
    out = []
    for seq in range(count):
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


def publisher(port: int, gw_id: str, count: int, ready: Any, go: Any) -> None:
    """One publisher process: prepare everything, then publish at full speed on `go`."""
    messages = payloads(gw_id, count)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{gw_id}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.release()
    go.wait()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


def bare_subscriber(port: int, expected: int, ready: Any, out: Any) -> None:
    """Count what arrives; report (count, time of the last message)."""
    received = 0
    last = 0.0

    def on_message(*_: Any) -> None:
        nonlocal received, last
        received += 1
        last = time.time()

    subscribed = mp.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=False)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(topics.UNIT_STATE.subscription(DEFAULT_PREFIX), qos=1)
    client.loop_start()
    subscribed.wait(10)
    ready.release()
    seen, since = 0, time.time()
    while received < expected and time.time() - since < IDLE_S:
        time.sleep(0.05)  # sampling a counter, not synchronising
        if received != seen:
            seen, since = received, time.time()
    client.loop_stop()
    out.put((received, last))


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
    """N publisher processes that start together; `start()` returns the wall-clock start."""

    def __init__(self, port: int, phase: str, n: int, count: int) -> None:
        self.ready = mp.Semaphore(0)
        self.go = mp.Event()
        self.processes = [
            mp.Process(target=publisher, args=(port, f"{phase}-{i}", count, self.ready, self.go))
            for i in range(n)
        ]
        for process in self.processes:
            process.start()
        for _ in self.processes:
            self.ready.acquire()

    def start(self) -> float:
        started = time.time()
        self.go.set()
        return started

    def join(self) -> None:
        for process in self.processes:
            process.join(300)


def run_bare(broker: Mosquitto, n: int, count: int) -> dict[str, Any]:
    ready = mp.Semaphore(0)
    out: Queue[tuple[int, float]] = mp.Queue()
    subscriber = mp.Process(target=bare_subscriber, args=(broker.port, n * count, ready, out))
    subscriber.start()
    ready.acquire()
    publishers = Publishers(broker.port, "bare", n, count)
    started = publishers.start()
    publishers.join()
    received, last = out.get(timeout=300)
    subscriber.join(10)
    forget_session(broker.port, "bench-bare")
    return _result(n * count, received, last - started)


def run_server(broker: Mosquitto, database_url: str, phase: str, n: int, count: int) -> Any:
    upgrade(database_url)

    async def main() -> dict[str, Any]:
        db = Database(database_url)
        settings = Settings(database_url=database_url, mqtt_url=broker.url,
                            mqtt_client_id=f"bench-{phase}")  # fmt: skip
        link = MqttLink(settings, db)
        task = asyncio.create_task(link.run())
        await asyncio.wait_for(link.connected.wait(), 10)
        publishers = await asyncio.to_thread(Publishers, broker.port, phase, n, count)
        started = publishers.start()
        applied, since, last = 0, time.time(), started
        while link.counters.applied < n * count and time.time() - since < IDLE_S:
            await asyncio.sleep(0.01)  # sampling a counter, not synchronising
            if link.counters.applied != applied:
                applied, since, last = link.counters.applied, time.time(), time.time()
        await asyncio.to_thread(publishers.join)
        await link.stop()
        await task
        await asyncio.to_thread(forget_session, broker.port, settings.mqtt_client_id)
        async with db.transaction() as session:
            rows = await session.scalar(select(func.count()).select_from(SeenMessage))
        await db.dispose()
        result = _result(n * count, int(rows or 0), last - started)
        result["batches"] = link.counters.batches
        result["malformed"] = link.counters.malformed
        return result

    return asyncio.run(main())


def _result(expected: int, got: int, seconds: float) -> dict[str, Any]:
    return {"expected": expected, "received": got, "lost": expected - got,
            "seconds": round(seconds, 3), "rate": round(got / seconds, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--count", type=int, default=30_000, help="messages per publisher")
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    args = parser.parse_args(argv)
    mp.set_start_method("spawn", force=True)
    n, count = args.publishers, args.count
    with tempfile.TemporaryDirectory(prefix="chargenet-bench-ingest-") as scratch:
        root = Path(scratch)
        broker = Mosquitto(root)
        broker.config.write_text(  # nothing dropped, whatever the subscriber's pace
            broker.config.read_text().replace("max_queued_messages 100000",
                                              "max_queued_messages 0\nmax_queued_bytes 0")
        )  # fmt: skip
        broker.start()
        cluster: PostgresCluster | None = None
        try:
            results: dict[str, Any] = {"bare": run_bare(broker, n, count)}
            for store in args.stores:
                if store == "sqlite":
                    url = f"sqlite+aiosqlite:///{root / 'bench.sqlite3'}"
                else:
                    if cluster is None:
                        cluster = PostgresCluster()
                        cluster.start()
                    url = create_database(cluster.url)
                results[store] = run_server(broker, url, store, n, count)
        finally:
            broker.stop()
            if cluster is not None:
                cluster.stop()
    bare = results["bare"]["rate"]
    print(f"{n} publishers x {count} unit states (QoS 1, {PORTS} ports each)")
    print("receiver | msgs/s | ratio | lost | seconds")
    for name, r in results.items():
        r["ratio"] = round(r["rate"] / bare, 3)
        print(f"{name} | {r['rate']:.0f} | {r['ratio']:.2f} | {r['lost']} | {r['seconds']:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    report = {"machine": machine, "publishers": n, "per_publisher": count, "results": results}
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
