"""A fixed port comes back only after its battery's alarms are reset (simulator, gateway,
Mosquitto, `chargenet server`).

The simulated battery latches a port fault as a real one does: cleared at its cause, the
port still reports faulted until the master writes AlmRst. The crew's reset (resolving the
incident with `reset_alarms`, or the battery's own reset) reaches the battery through the
gateway, the port is available again, and the audit log says who did it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Child, Recorder, Simulator, quiet_simulator, start_gateway

pytestmark = pytest.mark.slow
GW, UNIT = "gw-test", "line-1.1"
REPORT_S = 2.0
LATCHED_STATES = 2
"""States the battery reports after the clear, still faulted, before the reset."""


@pytest.fixture
def running(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[ServerProcess, Simulator]]:
    sim = quiet_simulator(tmp_path)
    server = ServerProcess(tmp_path, broker.url, REPORT_S)
    gateway: Child | None = None
    try:
        server.admin("POST", "/api/v1/stations", {
            "id": "st-1", "name_ja": "避難所", "name_en": "Shelter", "latitude": 33.5,
            "longitude": 132.5,
        })  # fmt: skip
        server.admin("PUT", f"/api/v1/batteries/{GW}/{UNIT}", {"station_id": "st-1"})
        gateway = start_gateway(tmp_path, sim, broker.url, gw_id=GW, report_period_s=REPORT_S)
        yield server, sim
    finally:
        if gateway is not None:
            gateway.stop()
        assert server.stop() == 0, server.log_text()
        sim.stop()


def status_of(server: ServerProcess, port: int) -> str | None:
    detail = server.get("/api/v1/stations/st-1")
    found = [p["status"] for b in detail["batteries"] for p in b["ports"] if p["port"] == port]
    return found[0] if found else None


def reported(recorder: Recorder, port: int) -> list[str]:
    """Port `port`'s status in every state the gateway published for the battery."""
    states = [m.payload for m in recorder.messages(f"/unit/{UNIT}/state")]
    return [p["status"] for s in states for p in s["ports"] if p["port"] == port]


def fault_latched(server: ServerProcess, sim: Simulator, recorder: Recorder, port: int) -> None:
    """Fault `port`, clear it at the battery, and see it stay faulted."""
    sim.inject("line-1", 1, "port_fault", port=port, error="over_current")
    wait_until(lambda: status_of(server, port) == "faulted", 5 * REPORT_S + 10,
               f"port {port} faulted in the API")  # fmt: skip
    sim.clear("line-1", 1, "port_fault", port=port)
    seen = len(reported(recorder, port))
    after = wait_until(lambda: reported(recorder, port)[seen + LATCHED_STATES - 1:],
                       (LATCHED_STATES + 2) * REPORT_S + 10, "states after the clear")  # fmt: skip
    assert set(reported(recorder, port)[seen:]) == {"faulted"}, after
    assert status_of(server, port) == "faulted"


def rows(server: ServerProcess, query: str) -> list[Any]:
    database = server.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(database) as db:
        return db.execute(query).fetchall()


def test_a_cleared_fault_stays_until_the_crew_resets_the_battery(
    running: tuple[ServerProcess, Simulator], broker: Mosquitto
) -> None:
    server, sim = running
    recorder = Recorder(broker.port)
    try:
        wait_until(lambda: status_of(server, 2) == "available", 30, "the battery's ports live")
        fault_latched(server, sim, recorder, 2)
        [incident] = wait_until(
            lambda: [i for i in server.admin("GET", "/api/v1/incidents")["incidents"]
                     if i["kind"] == "port_fault"], 10, "the port fault's incident",
        )  # fmt: skip
        resolved = server.admin("POST", f"/api/v1/incidents/{incident['id']}/resolve",
                                {"reset_alarms": True})  # fmt: skip
        assert resolved["state"] == "resolved"
        wait_until(lambda: status_of(server, 2) == "available", 5 * REPORT_S + 10,
                   "port 2 available after the reset")  # fmt: skip

        fault_latched(server, sim, recorder, 3)
        reset = server.admin("POST", f"/api/v1/batteries/{GW}/{UNIT}/reset-alarms")
        wait_until(lambda: status_of(server, 3) == "available", 5 * REPORT_S + 10,
                   "port 3 available after the battery's reset")  # fmt: skip
    finally:
        recorder.close()
    answered = wait_until(
        lambda: rows(server, "SELECT cmd_id, ok FROM commands WHERE action = 'reset_alarms' "
                             "AND ok IS NOT NULL"),
        10, "both resets answered by the gateway",
    )  # fmt: skip
    assert len(answered) == 2 and all(ok for _, ok in answered)
    audited = rows(server, "SELECT actor, detail FROM audit_log "
                           "WHERE action = 'battery.alarms_reset' ORDER BY id")  # fmt: skip
    details = [json.loads(detail) for _, detail in audited]
    assert [actor for actor, _ in audited] == ["admin", "admin"]
    assert [d["incident_id"] for d in details] == [incident["id"], None]
    assert details[1]["cmd_id"] == reset["cmd_id"]
    assert {d["cmd_id"] for d in details} == {cmd_id for cmd_id, _ in answered}
