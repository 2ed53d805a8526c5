"""The gateway's core keeps no more state after 2N polls than after N, at 10 batteries x 8 ports.

A gateway runs for months on a small box: anything kept per poll, per message or per event
(a reading, a timestamp, a queue entry, an outbox row already acknowledged) is a leak that
only shows after days. This drives the real pollers, reporter and outbox, two buses of five
8-port batteries, through simulated seconds with readings that wobble, change, fault and
fall silent, acknowledging what the publisher would send; then compares the memory blocks
held and the sizes of every internal table after N and after 2N simulated seconds. Structure,
not timing: `bench/gateway_soak.py` measures the real process's RSS over hours.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gateway.outbox import Outbox
from gateway.poller import BusPoller
from gateway.reports import Reporter
from protocol.topics import UnitAddress
from tests.gateway.registers import FakeLink, FakeUnit, dc_port, vendor_port

BUSES: Final = ("line-1", "line-2")
UNITS: Final = (1, 2, 3, 4, 5)
PORTS: Final = 8
STEP_S: Final = 0.1
SECONDS: Final = 600
"""N: simulated seconds per stage (each unit is polled once a second)."""
BLOCK_SLACK: Final = 1500
"""Memory blocks that may come and go between two counts (caches, free lists); one object
kept per poll, even a datetime that the garbage collector does not track, would be 6,000
more over a stage (measured: -8 to +142 without a leak, +5,400 to +6,400 with one)."""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def unit_at(second: int, unit_index: int) -> FakeUnit:
    """A battery's registers at a simulated second: phones wobbling (under the deadband),
    moving past it every 10 s, plugged and unplugged, one port faulting for 20 s in 120."""
    faulted = (second // 120) % len(UNITS) == unit_index and second % 120 < 20
    ports = []
    for port in range(PORTS):
        power = 10.0 + (second % 7) * 0.2 + (5.0 if (second // 10) % 2 else 0.0) + port
        status = 3 if faulted and port == 2 else 1  # DCSta ERROR or ON
        ports.append(dc_port(power_w=power, status=status, energy_wh=second / 360))
    occupied = [(second // 30 + unit_index) % PORTS != p for p in range(PORTS)]
    return FakeUnit(ports, [vendor_port(occupied=o) for o in occupied])


@dataclass
class Core:
    pollers: list[BusPoller]
    links: list[FakeLink]
    reporter: Reporter
    outbox: Outbox
    clock: Clock
    second: int = 0
    acked_after: int = -1

    async def run(self, seconds: int) -> None:
        """`seconds` simulated seconds; every 300th, unit 4 of line-2 is silent for 15 s.
        Each second gets fresh fake units: a kept one would log every read (a leak of the
        fake's, not the gateway's)."""
        for _ in range(seconds):
            for link in self.links:
                for index, unit_id in enumerate(UNITS):
                    link.units[unit_id] = unit_at(self.second, index)
            self.links[1].units[4].silent = self.second % 300 < 15
            for _ in range(round(1 / STEP_S)):
                for poller in self.pollers:
                    due = poller.schedule.due(self.clock.now)
                    if due is not None:
                        await poller.poll(due)
                if self.reporter.wait_s() == 0:
                    self.reporter.tick()
                self.clock.now += STEP_S
            self.publish()
            self.second += 1

    def publish(self) -> None:
        """What the publisher does with a connected broker: send and acknowledge it all."""
        while batch := self.outbox.pending(self.acked_after, 500):
            self.outbox.ack([m.seq for m in batch])
            self.acked_after = batch[-1].seq

    def sizes(self) -> dict[str, int]:
        """Every table the core keeps, by name."""
        found: dict[str, int] = {"reporter units": len(self.reporter._units)}
        for poller in self.pollers:
            schedule = poller.schedule
            found |= {
                f"{poller.bus} next_due": len(schedule.next_due),
                f"{poller.bus} failures": len(schedule.failures),
                f"{poller.bus} last_polled": len(schedule.last_polled),
                f"{poller.bus} stats": len(poller.stats),
                f"{poller.bus} layouts": len(poller._layouts),
                f"{poller.bus} lost": len(poller._lost),
                f"{poller.bus} commands": poller._commands.qsize(),
            }
        found["outbox rows"] = self.outbox.backlog() + self.outbox.unconfirmed()
        found["outbox pages in use"] = self.outbox._used_bytes() // 4096
        return found


def allocated_blocks() -> int:
    """Blocks the interpreter's allocator holds after a full collection: every object,
    tracked by the collector or not (a leak of strings or datetimes counts too)."""
    gc.collect()
    return sys.getallocatedblocks()


def core(tmp_path: Path) -> Core:
    clock = Clock()
    outbox = Outbox(tmp_path / "outbox.db", 100 * 1024 * 1024)
    addresses = [UnitAddress(bus, unit_id) for bus in BUSES for unit_id in UNITS]
    reporter = Reporter("gw-soak", "chargenet/v1", addresses, outbox, notify=lambda: None,
                        report_period_s=60.0, version="0.1", boot_id="boot-1",
                        clock=clock)  # fmt: skip
    links = [FakeLink({u: unit_at(0, i) for i, u in enumerate(UNITS)}) for _ in BUSES]
    pollers = [BusPoller(bus, UNITS, link, reporter, 1.0, clock=clock)
               for bus, link in zip(BUSES, links, strict=True)]  # fmt: skip
    return Core(pollers, links, reporter, outbox, clock)


def test_nothing_grows_from_n_to_2n_seconds_of_polling(tmp_path: Path) -> None:
    made = core(tmp_path)

    async def stages() -> tuple[dict[str, int], int, dict[str, int], int]:
        await made.run(SECONDS)  # warm: discovery, caches, the outbox's first pages
        after_n, blocks_n = made.sizes(), allocated_blocks()
        await made.run(SECONDS)
        return after_n, blocks_n, made.sizes(), allocated_blocks()

    after_n, blocks_n, after_2n, blocks_2n = asyncio.run(stages())
    polls = sum(s.polls_ok for p in made.pollers for s in p.stats.values())
    lost = sum(s.polls_failed for p in made.pollers for s in p.stats.values())
    assert polls >= 2 * SECONDS * len(BUSES) * len(UNITS) * 0.9
    assert lost > 0, "the silent unit never went silent: the run did not exercise loss"
    assert made.outbox.next_seq > 1000, "too few messages to say anything about the outbox"
    pages_n = after_n.pop("outbox pages in use")
    pages_2n = after_2n.pop("outbox pages in use")
    assert after_2n == after_n
    assert after_n["outbox rows"] == 0
    assert pages_2n <= pages_n + 2, (pages_n, pages_2n)
    assert blocks_2n - blocks_n < BLOCK_SLACK, (blocks_n, blocks_2n)
    made.outbox.close()
