"""An RS-485 line: a pseudo-terminal pair, several units on it, and honest wire time.

A pty moves bytes instantly, so the line keeps the clock a real bus would: a request
takes len x char_time to arrive, the device answers after t3.5 of silence, the answer
takes its own len x char_time, and the bus stays quiet for t3.5 before the next frame.
Every time is computed from the request's arrival on the loop clock (never from when a
callback happened to run), so lateness never accumulates into drift.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import termios
import tty
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from firmware_sim.battery import SimBattery
from firmware_sim.modbus_frames import handle_pdu, next_request, with_crc

log = logging.getLogger(__name__)

STALE_S: Final = 0.05
"""A partial frame older than this when new bytes come is dropped (the t3.5 rule)."""
EARLY_S: Final = 0.0002
"""Tolerance for a timer that fires a hair early."""


@dataclass(frozen=True, slots=True)
class LineTiming:
    """Character and gap times of a serial line (always 8 data bits)."""

    baudrate: int
    parity: str = "N"
    stopbits: int = 2

    @property
    def bits_per_char(self) -> int:
        return 1 + 8 + (0 if self.parity == "N" else 1) + self.stopbits

    @property
    def char_s(self) -> float:
        return self.bits_per_char / self.baudrate

    @property
    def t35_s(self) -> float:
        """3.5 characters of silence; fixed at 1.75 ms above 19200 baud (Modbus spec)."""
        return 0.00175 if self.baudrate > 19200 else 3.5 * self.char_s

    def wire_s(self, nbytes: int) -> float:
        return nbytes * self.char_s


@dataclass(frozen=True, slots=True)
class Slot:
    """When one exchange happens on the line."""

    reply_at: float
    """When the last byte of the answer has arrived (we write it then)."""
    free_at: float
    """When the next request may start."""


def schedule(
    start: float, request_len: int, reply_len: int | None, timing: LineTiming, delay_s: float = 0.0
) -> Slot:
    """Times of an exchange whose request starts at `start`; no reply when reply_len is None."""
    request_end = start + timing.wire_s(request_len)
    if reply_len is None:
        return Slot(request_end, request_end + timing.t35_s)
    reply_at = request_end + timing.t35_s + delay_s + timing.wire_s(reply_len)
    return Slot(reply_at, reply_at + timing.t35_s)


class SerialLine:
    """One pty pair; the gateway opens `device`, we serve the master side."""

    def __init__(
        self,
        name: str,
        batteries: Mapping[int, SimBattery],
        timing: LineTiming,
        rng: random.Random,
    ) -> None:
        self.name = name
        self.batteries = batteries
        self.timing = timing
        self.rng = rng
        self.device = ""
        self.requests = 0
        self.dropped_bytes = 0
        self._master = -1
        self._slave = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._buf = bytearray()
        self._last_rx = 0.0
        self._pending: deque[tuple[bytes, float]] = deque()
        self._free_at = 0.0
        self._wake: asyncio.TimerHandle | None = None

    def open(self) -> str:
        """Create the pty pair and start serving; returns the device path to give the gateway."""
        self._loop = asyncio.get_running_loop()
        self._master, self._slave = os.openpty()
        for fd in (self._master, self._slave):
            tty.setraw(fd, termios.TCSANOW)
        os.set_blocking(self._master, False)
        self.device = os.ttyname(self._slave)
        self._loop.add_reader(self._master, self._on_readable)
        return self.device

    def close(self) -> None:
        if self._loop is not None and self._master >= 0:
            self._loop.remove_reader(self._master)
        if self._wake is not None:
            self._wake.cancel()
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def _on_readable(self) -> None:
        assert self._loop is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:  # EIO cannot happen while we hold the slave, but be safe
            log.warning("%s: read failed: %s", self.name, error)
            return
        now = self._loop.time()
        if self._buf and now - self._last_rx > STALE_S:
            self.dropped_bytes += len(self._buf)
            self._buf.clear()
        self._last_rx = now
        self._buf += data
        while True:
            frame, consumed = next_request(self._buf)
            if frame is not None:
                self.dropped_bytes += consumed - len(frame)
            elif consumed:
                self.dropped_bytes += consumed
            del self._buf[:consumed]
            if frame is None:
                break
            self._pending.append((frame, now))
        self._pump()

    def _pump(self) -> None:
        """Serve queued requests in order, each once the line is free."""
        assert self._loop is not None
        self._wake = None
        while self._pending:
            if self._free_at > self._loop.time() + EARLY_S:
                self._wake = self._loop.call_at(self._free_at, self._pump)
                return
            frame, arrived = self._pending.popleft()
            self._serve(frame, max(arrived, self._free_at))

    def _serve(self, frame: bytes, start: float) -> None:
        assert self._loop is not None
        self.requests += 1
        battery = self.batteries.get(frame[0])
        if battery is None or battery.link.silent:
            self._free_at = schedule(start, len(frame), None, self.timing).free_at
            return
        reply = with_crc(frame[:1] + handle_pdu(battery, frame[1:-2]))
        if battery.link.garbage:
            reply = self.rng.randbytes(self.rng.randint(6, 40))
        slot = schedule(start, len(frame), len(reply), self.timing, battery.link.delay_s)
        self._free_at = slot.free_at
        self._loop.call_at(slot.reply_at, self._write, reply)

    def _write(self, data: bytes) -> None:
        if self._master < 0:
            return
        try:
            written = os.write(self._master, data)
        except (BlockingIOError, OSError):
            written = 0
        if written < len(data):  # nobody reads the line: bytes fall off the bus
            self.dropped_bytes += len(data) - written
