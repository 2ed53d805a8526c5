"""A long uplink outage, time-accelerated: the broker is unreachable while four batteries
report, then it is back and the whole backlog is delivered, each seq stored once, the
present first and the newest state by seq kept.

72 hours of real gateway output (110,592 messages for 24 batteries, bench/outbox.py) cannot
be made in a minute through a pty, so this is the scaled equivalent on the time axis: a
report period of 10 ms stands for one minute, and the outage lasts until the outbox holds
`PERIODS` report periods of four batteries, 72 hours of one-minute states for each of them
(4 x 4,320 = 17,280 messages). The outbox's 72-hour size at the full 110,592 is measured by
bench/outbox.py and tests/gateway/test_outbox.py; the drain time here is for 17,280.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Child, quiet_simulator, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
GW = "gw-72h"
UNITS = 4
PERIODS = 4320
"""72 hours of one-minute report periods."""
BACKLOG = UNITS * PERIODS
REPORT_S = 0.004
"""Stands for one minute."""


def backlog(outbox: Path) -> int:
    with closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_a_72_hour_equivalent_outage_is_delivered_whole_and_in_seq_order(
    tmp_path: Path,
) -> None:
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker")
    started: list[Child] = []
    try:
        broker.start()
        sim = quiet_simulator(tmp_path, units_per_line=UNITS)
        started.append(sim)
        server = ServerProcess(tmp_path, broker.url, 60.0)
        started.append(server)
        gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=REPORT_S)
        started.append(gateway)
        wait_until(lambda: server.count("SELECT count(*) FROM ports") == 4 * UNITS, 30,
                   "every port")  # fmt: skip
        broker.stop()
        outbox = tmp_path / "outbox.db"
        wait_until(lambda: backlog(outbox) >= BACKLOG, 240, "72 hours of states held")
        broker.start()
        back = time.monotonic()
        with closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as db:
            mark = int(db.execute("SELECT max(seq) FROM outbox").fetchone()[0])
        seen = f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}' AND seq <= {mark}"
        wait_until(lambda: server.count(seen) >= mark, 240, "the backlog stored")
        recovery_s = time.monotonic() - back
        stored = server.count(seen)
        assert server.count(f"SELECT count(*) FROM seq_gaps WHERE first_missing <= {mark}") == 0
        # the newest state by seq is the present, whatever order the replay came in
        newest = f"SELECT min(state_seq) FROM units WHERE gw_id = '{GW}'"
        wait_until(lambda: server.count(newest) > mark, 30,
                   "every unit's state newer than the backlog")  # fmt: skip
        wills = mark + 1 - stored  # the seqs the server took for reserved, unsent Wills
        assert wills <= gateway.log_text().count("connected to")  # one a connection at most
        record(Outcome("72-hour uplink outage (time-accelerated, 4 batteries), broker back",
                       mark + 1 - wills, stored, 0, recovery_s,
                       "gateway messages to the mark (but unsent Wills' seqs)"))  # fmt: skip
    finally:
        for child in reversed(started):
            child.stop()
        broker.stop()
