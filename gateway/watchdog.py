"""systemd's service notifications: READY=1 once the gateway runs, WATCHDOG=1 while its
event loop turns, STOPPING=1 as it stops (`deploy/gateway/chargenet-gateway.service`).

With `Type=notify` and `WatchdogSec=`, systemd restarts a gateway whose loop is stuck (a
driver blocking the thread), which `Restart=always` alone would never notice. Without
`NOTIFY_SOCKET` (not under systemd) every call does nothing. The protocol is one datagram
to a Unix socket (an abstract one when its name starts with `@`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Final

WATCHDOG_SHARE: Final = 0.4
"""Ping at this share of `WatchdogSec`, so one late ping does not cost a restart."""


def notify(state: str) -> bool:
    """Send `state` (e.g. `READY=1`) to systemd; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(state.encode())
    return True


def watchdog_period_s() -> float | None:
    """How often to ping, from systemd's `WATCHDOG_USEC`; None when no watchdog is set (or
    it is set for another process, `WATCHDOG_PID`)."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 1e6 * WATCHDOG_SHARE


async def keep_alive(period_s: float) -> None:
    """Ping the watchdog every `period_s` until cancelled: only a turning loop pings."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(period_s)
