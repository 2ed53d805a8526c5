"""A gateway whose clock runs 10 minutes fast or slow (a shelter box without NTP): its
messages are applied as any other's (freshness is judged by receipt, order by seq), its
units are neither stale nor offline, and the skew is shown per gateway
(`chargenet_gateway_clock_skew_seconds`). The gateway's clock is shifted for real, with
libfaketime preloaded into its process alone.
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

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
GW = "gw-skewed"
SKEW = f"SELECT CAST(round(clock_skew_s) AS INTEGER) FROM gateways WHERE gw_id = '{GW}'"
LIVE = f"SELECT count(*) FROM units WHERE gw_id = '{GW}' AND online = 1 AND stale = 0"
OCCUPIED = "SELECT count(*) FROM ports WHERE port = 2 AND occupied = 1"
TOP = f"SELECT max(seq) FROM seen_messages WHERE gw_id = '{GW}'"


@pytest.mark.parametrize("offset_min", [10, -10])
def test_a_gateway_10_minutes_off_is_believed_and_its_skew_shown(
    tmp_path: Path, broker: Mosquitto, offset_min: int
) -> None:
    if not LIBFAKETIME.exists():
        raise RuntimeError("libfaketime is not installed (apt-get install libfaketime)")
    started: list[Child] = []
    try:
        sim = quiet_simulator(tmp_path)
        started.append(sim)
        server = ServerProcess(tmp_path, broker.url, 1.0)
        started.append(server)
        shifted = {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": f"{offset_min:+d}m"}
        gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=1.0, env=shifted)
        started.append(gateway)
        wait_until(lambda: server.count(LIVE) == 1, 30, "the skewed gateway's unit live")
        want = offset_min * 60
        wait_until(lambda: abs(server.count(SKEW) - want) <= 5, 30, "its skew measured")
        sim.plug("line-1", 1, 2)
        plugged = time.monotonic()
        wait_until(lambda: server.count(OCCUPIED) == 1, 30, "the phone plugged seen")
        seen_s = time.monotonic() - plugged
        mark = server.count(TOP)
        wait_until(lambda: server.count(TOP) >= mark + 5, 30, "five more reports stored")
        assert server.count(LIVE) == 1  # five report periods on: staleness would have struck
        series = f'chargenet_gateway_clock_skew_seconds{{gw_id="{GW}"}}'
        exported = [line for line in server.metrics().splitlines() if line.startswith(series)]
        assert len(exported) == 1 and abs(float(exported[0].split()[-1]) - want) <= 5
        refused = "SELECT count(*) FROM seq_gaps"
        assert server.count(refused) == 0
        top = server.count(TOP)
        stored = server.count(f"SELECT count(DISTINCT seq) FROM seen_messages "
                              f"WHERE gw_id = '{GW}'")  # fmt: skip
        assert gateway.alive, gateway.log_text()
        record(Outcome(f"the gateway's clock {abs(offset_min)} minutes "
                       f"{'ahead' if offset_min > 0 else 'behind'}", top, stored, 0, seen_s,
                       "gateway messages (but the live Will's seq)"))  # fmt: skip
    finally:
        for child in reversed(started):
            child.stop()
