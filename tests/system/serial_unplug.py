"""A serial line that can be pulled out and plugged back in, as a USB-RS485 adapter can.

The gateway is given a path like `/dev/serial/by-id/...`: here a symlink to the slave of a
pty pair of our own, whose master is relayed byte for byte to the simulator's line (the
simulator keeps its timing; the relay adds none worth counting). `unplug` closes our pty
(the gateway's open port hangs up) and removes the symlink (it cannot reopen the path);
`plug` makes a fresh pty, points the symlink at it and relays again.
"""

from __future__ import annotations

import os
import select
import termios
import threading
import tty
from pathlib import Path


class UnpluggableLine:
    """Relay between `path` (for the gateway) and the simulator's `device`, in a thread."""

    def __init__(self, path: Path, device: str) -> None:
        self.path = path
        self._sim = os.open(device, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self._sim, termios.TCSANOW)
        self._lock = threading.Lock()
        self._master = -1
        self._slave = -1
        self._stop = threading.Event()
        self.plug()
        self._thread = threading.Thread(target=self._relay, name="serial relay", daemon=True)
        self._thread.start()

    def plug(self) -> None:
        master, slave = os.openpty()
        for fd in (master, slave):
            tty.setraw(fd, termios.TCSANOW)
        with self._lock:
            self._master, self._slave = master, slave
        os.symlink(os.ttyname(slave), self.path)

    def unplug(self) -> None:
        self.path.unlink()
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = -1
        for fd in (master, slave):
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._master >= 0:
            self.unplug()
        os.close(self._sim)

    def _relay(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                master = self._master
            fds = [self._sim] + ([master] if master >= 0 else [])
            waiting = select.poll()  # not select(): a long test run's fds pass 1024
            for fd in fds:
                waiting.register(fd, select.POLLIN)
            for fd, _ in waiting.poll(50):
                try:
                    data = os.read(fd, 4096)
                    with self._lock:
                        if self._master != master or master < 0:
                            continue  # unplugged meanwhile: the bytes are lost on the floor
                        os.write(master if fd == self._sim else self._sim, data)
                except OSError:
                    continue  # our pty hung up (unplugged) or the gateway closed its side
