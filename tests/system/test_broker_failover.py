"""The broker a gateway and the server use dies (SIGKILL) under load; both fail over to
the next URL they were given and nothing is lost.

The standby knows nothing of the dead broker's sessions or retained messages, so this is
the hardest failover: the gateway's birth and snapshots rebuild the present on it, and
what the dead broker took but no server receipt covered is sent again from the gateway's
outbox. A clustered broker's other node would keep sessions too; the code path is the
same (`failover_urls`, `CHARGENET_MQTT_FAILOVER_URLS`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Child, quiet_simulator, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
GW = "gw-failover"
UNITS = 2


def test_a_killed_broker_is_failed_over_by_gateway_and_server_losing_nothing(
    tmp_path: Path,
) -> None:
    brokers = []
    for name in ("primary", "standby"):
        (tmp_path / name).mkdir()
        brokers.append(Mosquitto(tmp_path / name))
    primary, standby = brokers
    started: list[Child] = []  # every process started is stopped, whatever fails
    try:
        for broker in brokers:
            broker.start()
        sim = quiet_simulator(tmp_path, units_per_line=UNITS)
        started.append(sim)
        gateway = start_gateway(
            tmp_path, sim, primary.url, GW, report_period_s=0.25,
            extra=f'\nresend_after_s = 2\nfailover_urls = ["{standby.url}"]',
        )  # fmt: skip
        started.append(gateway)
        failover = {"CHARGENET_MQTT_FAILOVER_URLS": json.dumps([standby.url])}
        server = ServerProcess(tmp_path, primary.url, 2.0, env=failover)
        started.append(server)
        wait_until(lambda: server.count("SELECT count(*) FROM ports") == 4 * UNITS, 30,
                   "both batteries' ports")  # fmt: skip
        primary.kill()
        killed = time.monotonic()
        for unit in range(1, UNITS + 1):  # faults while both look for a broker
            sim.inject("line-1", unit, "port_fault", port=2, error="over_current")
        mark = server.count(f"SELECT max_seq FROM gateways WHERE gw_id = '{GW}'")

        def stored_to_mark() -> bool:
            stored = server.count(f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}' "
                                   f"AND seq <= {mark}")  # fmt: skip
            events = server.count("SELECT count(*) FROM unit_events "
                                   "WHERE kind = 'port_faulted'")  # fmt: skip
            return stored >= mark and events == UNITS

        wait_until(stored_to_mark, 60, "every message to the mark and both faults stored")
        recovery_s = time.monotonic() - killed
        assert server.count(f"SELECT count(*) FROM seq_gaps WHERE first_missing <= {mark}") == 0
        assert f"connected to 127.0.0.1:{standby.port}" in gateway.log_text()
        assert f"connected to 127.0.0.1:{standby.port}" in server.log_text()
        stored = server.count(f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}' "
                               f"AND seq <= {mark}")  # fmt: skip
        record(Outcome("the broker SIGKILLed; gateway and server fail over to a standby",
                       mark, stored, 0, recovery_s,
                       "gateway messages (but the reserved Will's seq)"))  # fmt: skip
    finally:
        for child in reversed(started):
            child.stop()
        for broker in brokers:
            broker.stop()
