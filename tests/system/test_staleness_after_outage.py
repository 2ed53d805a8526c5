"""PostgreSQL stops under a server while a gateway keeps reporting: nobody is paged.

During the outage the ingest holds what it hears; when the database is back, the receipt
times in it are an outage old until the ingest has applied that backlog. Staleness judged
on them then opened `gateway_offline` (critical) for a gateway that never fell silent; it
must wait for the ingest. The outage is logged as it starts and ends, not per attempt.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.postgres import PostgresCluster, create_database
from tests.server.running import ServerProcess
from tests.system.harness import Recorder, quiet_simulator, start_gateway

pytestmark = pytest.mark.slow
GW = "gw-test"
REPORT_S = 1.0
OUTAGE_STATES = 6
"""States the gateway publishes while the database is down: twice the 3 periods of silence."""


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    own = PostgresCluster()  # its own: the test stops it
    own.start()
    yield own
    own.stop()


def port_statuses(server: ServerProcess) -> set[str]:
    detail = server.get("/api/v1/stations/st-1")
    return {p["status"] for b in detail["batteries"] for p in b["ports"]}


def gateway_incidents(server: ServerProcess) -> list[dict[str, object]]:
    found = server.admin("GET", "/api/v1/incidents")["incidents"]
    return [i for i in found if i["kind"] == "gateway_offline"]


def test_a_database_outage_opens_no_gateway_offline_and_is_logged_once(
    broker: Mosquitto, cluster: PostgresCluster, tmp_path: Path
) -> None:
    sim = quiet_simulator(tmp_path)
    server = ServerProcess(tmp_path, broker.url, REPORT_S, create_database(cluster.url))
    recorder = Recorder(broker.port)
    gateway = None
    try:
        server.admin("POST", "/api/v1/stations", {
            "id": "st-1", "name_ja": "避難所", "name_en": "Shelter", "latitude": 33.5,
            "longitude": 132.5,
        })  # fmt: skip
        server.admin("PUT", f"/api/v1/batteries/{GW}/line-1.1", {"station_id": "st-1"})
        gateway = start_gateway(tmp_path, sim, broker.url, gw_id=GW, report_period_s=REPORT_S)
        wait_until(lambda: port_statuses(server) == {"available"}, 30, "the battery's ports live")

        cluster.pause()
        before = len(recorder.messages("/state"))
        wait_until(lambda: len(recorder.messages("/state")) >= before + OUTAGE_STATES, 30,
                   "the gateway reporting through the outage")  # fmt: skip
        cluster.resume()
        wait_until(lambda: port_statuses(server) == {"available"}, 60,
                   "the ingest caught up after the outage")  # fmt: skip
        assert gateway_incidents(server) == []

        gateway.process.send_signal(signal.SIGSTOP)  # silent, its connection still open
        try:
            opened = wait_until(lambda: gateway_incidents(server), 3 * REPORT_S + 20,
                                "staleness judging again: the stopped gateway offline")  # fmt: skip
        finally:
            gateway.process.send_signal(signal.SIGCONT)
        assert [i["gw_id"] for i in opened] == [GW]
    finally:
        recorder.close()
        if gateway is not None:
            gateway.stop()
        assert server.stop() == 0
        sim.stop()
    log = server.log_text()
    assert "background job" not in log  # no job failed but for the outage, none logged it
    assert len(re.findall(r"database unavailable \(\w+\)$", log, re.MULTILINE)) == 1, log
    assert log.count("database available again") == 1, log
