"""The serial adapter of a gateway pulled out and plugged back in: the gateway lives on,
reports its units lost (their states go offline, with a `unit_lost` event, so the server
shows them as it last knew them, offline), reopens the port when the path is back and the
states resume. Recovery is timed from the plug to the first fresh state stored.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Child, quiet_simulator, start_gateway
from tests.system.serial_unplug import UnpluggableLine

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
GW = "gw-unplug"
ONLINE = f"SELECT online FROM units WHERE gw_id = '{GW}' AND unit = 'line-1.1'"
STATE_SEQ = f"SELECT state_seq FROM units WHERE gw_id = '{GW}' AND unit = 'line-1.1'"


def test_a_serial_line_pulled_out_and_back_is_reported_offline_and_reopened(
    tmp_path: Path, broker: Mosquitto
) -> None:
    started: list[Child] = []
    sim = quiet_simulator(tmp_path)
    started.append(sim)
    line = UnpluggableLine(tmp_path / "ttyUSB0", sim.announced["serial"]["line-1"]["device"])
    try:
        sim.announced["serial"]["line-1"]["device"] = str(line.path)
        server = ServerProcess(tmp_path, broker.url, 1.0)
        started.append(server)
        gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=1.0)
        started.append(gateway)
        wait_until(lambda: server.count(ONLINE) == 1, 30, "the unit online through the relay")
        line.unplug()
        wait_until(lambda: server.count(ONLINE) == 0, 30, "the unit offline, unplugged")
        lost = "SELECT count(*) FROM unit_events WHERE kind = 'unit_lost'"
        assert server.count(lost) == 1
        assert gateway.alive, gateway.log_text()
        sim.plug("line-1", 1, 3)  # a phone arrives while the line is out
        mark = server.count(STATE_SEQ)
        line.plug()
        plugged = time.monotonic()
        wait_until(lambda: server.count(ONLINE) == 1 and server.count(STATE_SEQ) > mark, 60,
                   "a fresh state after the plug")  # fmt: skip
        recovery_s = time.monotonic() - plugged
        occupied = "SELECT occupied FROM ports WHERE port = 3"
        wait_until(lambda: server.count(occupied) == 1, 10, "the phone plugged meanwhile seen")
        found = "SELECT count(*) FROM unit_events WHERE kind = 'unit_found'"
        assert server.count(found) == 1
        assert gateway.alive, gateway.log_text()
        top = server.count(f"SELECT max(seq) FROM seen_messages WHERE gw_id = '{GW}'")
        stored = server.count(f"SELECT count(DISTINCT seq) FROM seen_messages "
                              f"WHERE gw_id = '{GW}'")  # fmt: skip
        assert server.count("SELECT count(*) FROM seq_gaps") == 0
        # one connection throughout: every seq but its Will's (reserved, never sent) stored
        assert gateway.log_text().count("connected to") == 1
        record(Outcome("serial line unplugged and plugged back in", top, stored, 0,
                       recovery_s, "gateway messages (but the live Will's seq)"))  # fmt: skip
    finally:
        for child in reversed(started):
            child.stop()
        line.close()
