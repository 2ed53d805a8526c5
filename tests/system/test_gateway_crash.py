"""A gateway SIGKILLed in the middle of a burst of state changes, then restarted: nothing the
outbox acknowledged is lost and nothing is stored twice.

What the test asserts, of the two things a kill can cost:
- every seq the outbox had handed out when the process died (its `next_seq` on disk, read
  after the kill) is stored by the server exactly once, the Will's included;
- a change the gateway had polled but not yet appended dies with the process; it is not
  replayed but re-derived, since states are retained snapshots: the first poll after the
  restart reports the ports as they are, so the server's ports match the battery.
"""

from __future__ import annotations

import sqlite3
import time
from functools import partial
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Child, quiet_simulator, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
GW = "gw-crash"
TOGGLES = 40
KILL_AT = 20


def outbox_next_seq(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])


def grew(outbox: Path, before: int) -> bool:
    return outbox_next_seq(outbox) > before


def test_a_gateway_killed_mid_burst_loses_nothing_it_stored_and_doubles_nothing(
    tmp_path: Path, broker: Mosquitto
) -> None:
    started: list[Child] = []
    try:
        sim = quiet_simulator(tmp_path)
        started.append(sim)
        server = ServerProcess(tmp_path, broker.url, 2.0)
        started.append(server)
        gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=1.0,
                                poll_period_s=0.05)  # fmt: skip
        wait_until(lambda: server.count("SELECT count(*) FROM ports") == 4, 30, "the ports")
        plugged = [False] * 4
        outbox = tmp_path / "outbox.db"
        for toggle in range(TOGGLES):  # one change a poll or so, each seen before the next
            port = toggle % 4
            plugged[port] = not plugged[port]
            before = outbox_next_seq(outbox)
            sim.plug("line-1", 1, port + 1, plugged[port])
            if toggle != KILL_AT:
                wait_until(partial(grew, outbox, before), 10, "the change stored")
            else:  # at once: the change may be polled, appended, or neither
                gateway.kill()
                mark = outbox_next_seq(outbox) - 1
                gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=1.0,
                                        poll_period_s=0.05)  # fmt: skip
                restarted = time.monotonic()
        started.append(gateway)
        seen = f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}'"
        wait_until(lambda: server.count(f"{seen} AND seq <= {mark}") == mark + 1, 60,
                   "every seq the killed gateway's outbox had given out stored")  # fmt: skip
        recovery_s = time.monotonic() - restarted
        truth = [int(p) for p in plugged]
        wait_until(lambda: [server.count(f"SELECT occupied FROM ports WHERE port = {n}")
                            for n in range(1, 5)] == truth, 30,
                   "the server's ports as the battery's after the restart")  # fmt: skip
        distinct = server.count(f"SELECT count(DISTINCT seq) FROM seen_messages "
                                 f"WHERE gw_id = '{GW}'")  # fmt: skip
        assert server.count(seen) == distinct
        assert server.count(f"SELECT count(*) FROM seq_gaps WHERE first_missing <= {mark}") == 0
        assert mark > KILL_AT  # the burst did reach the outbox before the kill
        record(Outcome("gateway SIGKILLed mid-burst of state changes, restarted", mark + 1,
                       server.count(f"{seen} AND seq <= {mark}"), server.count(seen) - distinct,
                       recovery_s, "gateway messages up to the kill"))  # fmt: skip
    finally:
        for child in reversed(started):
            child.stop()
