"""Outbox benchmark: a 72-hour outage on disk and the cost of an append, old and new encoding.

The outage of the outbox's 72-hour test: 24 batteries of 8 ports, a state per battery per
minute and 4 events per battery per hour. States are the simulator's batteries (physics on,
seeded) read through their registers and decoded by the gateway's own decoder; the first
`--distinct-hours` are simulated, then repeated under later seqs and times (each payload is
compressed alone against the dictionary, so a repeat costs what the first one did).

In one run, one after the other, each encoding fills a fresh outbox with the whole outage,
one append per reading (a state and its events in one transaction, as the gateway's
reporter does, `synchronous=FULL`), under a budget that prunes nothing, then reads it all
back in pages of 500. "plain" is the previous version: the outbox with `encode` replaced by
the identity, which is exactly what it stored. "deflate" is `gateway.outbox_codec`.

Figures: bytes on disk per message (the file checkpointed after the run) and the file's
peak size during it (WAL included) against the default budget; stored payload bytes per
message; appends in messages/s and CPU-ms per 1,000 messages (the process's user and system
CPU, so time waiting on the disk does not count); reads in messages/s; and deflate's
figures over plain's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final
from unittest import mock

import gateway.outbox
from bench.processes import BenchFailed, fail_loudly
from firmware_sim.battery import SimBattery
from firmware_sim.physics import PhysicsConfig, advance
from gateway import outbox_codec
from gateway.config import GatewayConfig
from gateway.discovery import RegisterImage, discover
from gateway.outbox import Entry, Outbox
from gateway.snapshot import decode_unit
from protocol import topics
from protocol.payloads import EventKind, PortError, UnitEvent, UnitState
from protocol.topics import UnitAddress

BATTERIES: Final = 24
PORTS: Final = 8
EVENTS_PER_HOUR: Final = 4
GW: Final = "shelter-gw-1"
BUS: Final = "rs485-1"
T0: Final = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
MB: Final = 1024 * 1024
PAGE: Final = 500


@dataclass
class Result:
    encoding: str
    messages: int
    json_bytes_per_message: float
    stored_payload_bytes_per_message: float
    disk_bytes_per_message: float
    """The file after the run, checkpointed (the WAL is a few MB more at any time)."""
    peak_mb: float
    fits_default_budget: bool
    append_msgs_per_s: float
    append_cpu_ms_per_1000: float
    read_msgs_per_s: float


class _Registers:
    """A simulated battery as the discovery's `RegisterReader`."""

    def __init__(self, battery: SimBattery) -> None:
        self.battery = battery

    async def read(self, unit_id: int, address: int, count: int) -> list[int]:
        return self.battery.read(address, count)


def simulate(minutes: int, seed: int) -> list[list[UnitState]]:
    """Per minute, every battery's state as the gateway decodes it."""
    rng = random.Random(seed)
    physics = PhysicsConfig()
    batteries = [SimBattery.create(unit_id, PORTS) for unit_id in range(1, BATTERIES + 1)]
    layouts = [asyncio.run(discover(_Registers(b), BUS, b.unit_id)) for b in batteries]
    states: list[list[UnitState]] = []
    for minute in range(minutes):
        states.append([])
        for battery, layout in zip(batteries, layouts, strict=True):
            advance(battery, 60.0, rng, physics)
            image = RegisterImage([(a, battery.read(a, n)) for a, n in layout.reads])
            reading = decode_unit(layout, image)
            ts = T0 + timedelta(minutes=minute)
            states[-1].append(
                UnitState(seq=0, ts=ts, online=True, battery=reading.battery, ports=reading.ports)
            )
    return states


def outage(hours: int, distinct_hours: int, seed: int) -> list[list[Entry]]:
    """The outage's readings in order: each battery's state a minute, with its events."""
    simulated = simulate(min(hours, distinct_hours) * 60, seed)
    rng = random.Random(seed + 1)
    every = 60 // EVENTS_PER_HOUR
    readings: list[list[Entry]] = []
    for minute in range(hours * 60):
        ts = T0 + timedelta(minutes=minute)
        for n, state in enumerate(simulated[minute % len(simulated)], start=1):
            address = UnitAddress(BUS, n)
            entries: list[Entry] = []
            if minute % every == 0:
                faulted = minute // every % 2 == 0
                event = UnitEvent(
                    seq=0,
                    ts=ts,
                    event_id=rng.randbytes(16).hex(),  # as random as the reporter's
                    kind=EventKind.PORT_FAULTED if faulted else EventKind.PORT_RECOVERED,
                    port=rng.randint(1, PORTS),
                    error=PortError.OVER_CURRENT if faulted else None,
                )
                topic = topics.UNIT_EVENT.format(topics.DEFAULT_PREFIX, GW, address)
                entries.append(Entry(topic, event, retain=False, supersedes=None))
            topic = topics.UNIT_STATE.format(topics.DEFAULT_PREFIX, GW, address)
            message = state.model_copy(update={"ts": ts})
            entries.append(Entry(topic, message, retain=True, supersedes=topic))
            readings.append(entries)
    return readings


def _plain(payload: bytes) -> bytes:
    """The previous version's encoding: none."""
    return payload


def run_one(name: str, encode: Callable[[bytes], bytes], readings: Sequence[list[Entry]],
            workdir: Path) -> Result:  # fmt: skip
    default_budget = int(GatewayConfig.model_fields["outbox_max_mb"].default * MB)
    path = workdir / f"{name}.db"
    json_bytes = messages = 0
    wall = cpu = 0.0
    peak = 0
    with mock.patch.object(gateway.outbox, "encode", encode):
        outbox = Outbox(path, 64 * default_budget)  # prunes nothing: the sizes compare
        for reading in readings:
            wall_0, cpu_0 = time.perf_counter(), time.process_time()
            sent = outbox.append(reading)
            wall += time.perf_counter() - wall_0
            cpu += time.process_time() - cpu_0
            messages += len(sent)
            json_bytes += sum(len(m.payload) for m in sent)
            peak = max(peak, outbox.size_bytes())
        read_0, read = time.perf_counter(), 0
        after = -1
        while page := outbox.pending(after_seq=after, limit=PAGE):
            read += len(page)
            after = page[-1].seq
        read_s = time.perf_counter() - read_0
        if outbox.pruned or read != messages:
            raise BenchFailed(f"{name}: pruned {outbox.pruned}, read {read} of {messages}")
        outbox.close()
    size = path.stat().st_size
    with sqlite3.connect(path) as db:
        (stored,) = db.execute("SELECT SUM(LENGTH(payload)) FROM outbox").fetchone()
    return Result(
        encoding=name,
        messages=messages,
        json_bytes_per_message=json_bytes / messages,
        stored_payload_bytes_per_message=stored / messages,
        disk_bytes_per_message=size / messages,
        peak_mb=peak / MB,
        fits_default_budget=peak <= default_budget,
        append_msgs_per_s=messages / wall,
        append_cpu_ms_per_1000=cpu * 1000 / (messages / 1000),
        read_msgs_per_s=read / read_s,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.outbox", description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--hours", type=int, default=72, help="length of the outage")
    parser.add_argument("--distinct-hours", type=int, default=6,
                        help="hours of readings simulated before they repeat")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/outbox.json"))
    args = parser.parse_args(argv)
    return fail_loudly("outbox", lambda: run_all(args))


def run_all(args: argparse.Namespace) -> int:
    readings = outage(args.hours, args.distinct_hours, args.seed)
    with tempfile.TemporaryDirectory(prefix="chargenet-bench-outbox-") as workdir:
        results = [
            run_one("plain", _plain, readings, Path(workdir)),
            run_one("deflate", outbox_codec.encode, readings, Path(workdir)),
        ]
    plain, deflate = results
    header = ("encoding", "messages", "JSON B/msg", "stored B/msg", "disk B/msg", "peak MB",
              "fits default", "append msg/s", "CPU-ms/1k msgs", "read msg/s")  # fmt: skip
    print(" | ".join(header))
    for r in results:
        print(
            f"{r.encoding} | {r.messages:,} | {r.json_bytes_per_message:.0f} | "
            f"{r.stored_payload_bytes_per_message:.0f} | {r.disk_bytes_per_message:.0f} | "
            f"{r.peak_mb:.1f} | {'yes' if r.fits_default_budget else 'no'} | "
            f"{r.append_msgs_per_s:,.0f} | {r.append_cpu_ms_per_1000:.1f} | "
            f"{r.read_msgs_per_s:,.0f}"
        )
    ratios = {
        "disk_bytes": deflate.disk_bytes_per_message / plain.disk_bytes_per_message,
        "append_msgs_per_s": deflate.append_msgs_per_s / plain.append_msgs_per_s,
        "append_cpu": deflate.append_cpu_ms_per_1000 / plain.append_cpu_ms_per_1000,
        "read_msgs_per_s": deflate.read_msgs_per_s / plain.read_msgs_per_s,
    }
    print("deflate / plain: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version()}
    args.out.write_text(json.dumps(
        {"machine": machine, "hours": args.hours, "distinct_hours": args.distinct_hours,
         "results": [asdict(r) for r in results], "deflate_over_plain": ratios}, indent=2,
    ))  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
