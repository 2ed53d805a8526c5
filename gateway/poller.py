"""Polling one bus: units in turn, commands first, and a silent unit never stalls the rest.

RS-485 is half duplex, so each bus has one task that does one request at a time. The
schedule (a pure class) decides which unit is due; a unit that stops answering is
retried at the normal rate twice, then declared lost and probed with growing backoff,
so its neighbours keep nearly the whole line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

from gateway.discovery import RegisterImage, RegisterReader, UnitLayout, discover
from gateway.errors import NotSunSpec, UnitUnreachable
from gateway.snapshot import UnitReading, decode_unit
from protocol.topics import UnitAddress

log = logging.getLogger(__name__)

LOST_AFTER: Final = 3
"""Consecutive failed polls before a unit is declared lost (one garbled frame is not)."""
BACKOFF_MAX_S: Final = 30.0


class RegisterLink(RegisterReader, Protocol):
    """What a bus poller needs from the Modbus shell (a ModbusLink, or a fake)."""

    async def write(self, unit_id: int, address: int, values: Sequence[int]) -> None: ...


class ReadingSink(Protocol):
    """Where poll results go (the reporter)."""

    def on_reading(self, unit: UnitAddress, reading: UnitReading, ts: datetime) -> None: ...

    def on_unit_lost(self, unit: UnitAddress, why: str, ts: datetime) -> None: ...

    def on_unit_found(self, unit: UnitAddress, ts: datetime) -> None: ...


@dataclass
class UnitSchedule:
    """Which unit is due next. Pure: every method takes `now`."""

    unit_ids: Sequence[int]
    poll_period_s: float
    next_due: dict[int, float] = field(default_factory=dict)
    failures: dict[int, int] = field(default_factory=dict)
    last_polled: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for unit_id in self.unit_ids:
            self.next_due.setdefault(unit_id, 0.0)
            self.failures.setdefault(unit_id, 0)
            self.last_polled.setdefault(unit_id, float("-inf"))

    def due(self, now: float) -> int | None:
        """The unit due earliest (on a tie, the one polled longest ago), if any is due."""
        unit_id = min(self.unit_ids, key=lambda u: (self.next_due[u], self.last_polled[u]))
        return unit_id if self.next_due[unit_id] <= now else None

    def wait_s(self, now: float) -> float:
        return max(0.0, min(self.next_due.values()) - now)

    def succeeded(self, unit_id: int, started: float) -> None:
        self.failures[unit_id] = 0
        self.last_polled[unit_id] = started
        self.next_due[unit_id] = started + self.poll_period_s

    def failed(self, unit_id: int, now: float) -> int:
        """Record a failure; returns the count of consecutive failures."""
        self.last_polled[unit_id] = now
        count = self.failures[unit_id] = self.failures[unit_id] + 1
        self.next_due[unit_id] = now + self.backoff_s(count)
        return count

    def backoff_s(self, failures: int) -> float:
        """Normal period until the unit is lost, then doubling from one period (min 1 s)."""
        if failures < LOST_AFTER:
            return self.poll_period_s
        base = max(self.poll_period_s, 1.0)
        return float(min(BACKOFF_MAX_S, base * 2 ** (failures - LOST_AFTER)))


@dataclass
class UnitStats:
    """Counters per unit, for logs, tests and the benchmark."""

    polls_ok: int = 0
    polls_failed: int = 0
    registers_read: int = 0


@dataclass
class _Command:
    unit_id: int
    writes: Callable[[UnitLayout], list[tuple[int, list[int]]]]
    done: asyncio.Future[None]


class BusPoller:
    """One bus: one request at a time; queued commands go ahead of polls."""

    def __init__(
        self,
        bus: str,
        unit_ids: Sequence[int],
        link: RegisterLink,
        sink: ReadingSink,
        poll_period_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus
        self.schedule = UnitSchedule(unit_ids, poll_period_s)
        self.stats = {unit_id: UnitStats() for unit_id in unit_ids}
        self.busy_s = 0.0
        """Time the line spent on this bus's requests (replies and timeouts): its use."""
        self.last_ok: float | None = None
        """When (on `clock`) a unit last answered a poll; None before the first."""
        self._link = link
        self._sink = sink
        self._clock = clock
        self._layouts: dict[int, UnitLayout] = {}
        self._lost: set[int] = set()
        self._commands: asyncio.Queue[_Command] = asyncio.Queue()
        self._wakeup = asyncio.Event()

    def layout(self, unit_id: int) -> UnitLayout | None:
        return self._layouts.get(unit_id)

    async def execute(
        self, unit_id: int, writes: Callable[[UnitLayout], list[tuple[int, list[int]]]]
    ) -> None:
        """Run writes on a unit ahead of the polls, then poll it; raises what went wrong."""
        if unit_id not in self.stats:
            raise UnitUnreachable(self.bus, unit_id, "unit is not configured on this bus")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._commands.put(_Command(unit_id, writes, done))
        self._wakeup.set()
        await done

    async def run(self) -> None:
        """Poll forever (cancel to stop)."""
        while True:
            if not self._commands.empty():
                await self._run_command(self._commands.get_nowait())
                continue
            now = self._clock()
            unit_id = self.schedule.due(now)
            if unit_id is None:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.schedule.wait_s(now)):
                        await self._wakeup.wait()
                continue
            await self.poll(unit_id)
            await asyncio.sleep(0)  # let commands and MQTT in even if the link never blocks

    async def poll(self, unit_id: int) -> bool:
        """Read one unit and hand the reading on; False when it did not answer."""
        started = self._clock()
        unit = UnitAddress(self.bus, unit_id)
        stats = self.stats[unit_id]
        try:
            layout = await self._layout_of(unit_id)
            reads = [(a, await self._link.read(unit_id, a, n)) for a, n in layout.reads]
            reading = decode_unit(layout, RegisterImage(reads))
        except (UnitUnreachable, NotSunSpec, LookupError) as exc:
            self.busy_s += self._clock() - started
            stats.polls_failed += 1
            self._failed(unit, exc)
            return False
        self.last_ok = self._clock()
        self.busy_s += self.last_ok - started
        stats.polls_ok += 1
        stats.registers_read += layout.registers_per_poll
        self.schedule.succeeded(unit_id, started)
        ts = datetime.now(UTC)
        if unit_id in self._lost:
            self._lost.discard(unit_id)
            log.info("unit %s found", unit)
            self._sink.on_unit_found(unit, ts)
        self._sink.on_reading(unit, reading, ts)
        return True

    async def _layout_of(self, unit_id: int) -> UnitLayout:
        layout = self._layouts.get(unit_id)
        if layout is None:
            layout = self._layouts[unit_id] = await discover(self._link, self.bus, unit_id)
        return layout

    def _failed(self, unit: UnitAddress, exc: Exception) -> None:
        if isinstance(exc, (NotSunSpec, LookupError)):
            self._layouts.pop(unit.unit_id, None)  # discover again next time
        count = self.schedule.failed(unit.unit_id, self._clock())
        if count == LOST_AFTER:
            self._layouts.pop(unit.unit_id, None)  # a returning unit may be another battery
            self._lost.add(unit.unit_id)
            log.warning("unit %s lost: %s", unit, exc)
            self._sink.on_unit_lost(unit, str(exc), datetime.now(UTC))

    async def _run_command(self, command: _Command) -> None:
        started = self._clock()
        try:
            layout = await self._layout_of(command.unit_id)
            for address, values in command.writes(layout):
                await self._link.write(command.unit_id, address, values)
        except Exception as exc:  # handed to the caller, who reports it on cmd/result
            if not command.done.done():
                command.done.set_exception(exc)
            return
        finally:
            self.busy_s += self._clock() - started
        if not command.done.done():
            command.done.set_result(None)
        await self.poll(command.unit_id)
