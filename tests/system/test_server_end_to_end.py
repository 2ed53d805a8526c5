"""Simulator -> gateway -> Mosquitto -> `chargenet server` -> the REST API.

A simulated port fault shows as `faulted` within a few report periods; a killed gateway
(its Last Will) shows its station's ports `offline`; a spare gateway with a fresh outbox
takes over.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Child, Simulator, quiet_simulator, start_gateway

pytestmark = pytest.mark.slow
GW = "gw-test"
REPORT_S = 2.0


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    simulator = quiet_simulator(tmp_path, tcp_units=1)
    yield simulator
    simulator.stop()


@pytest.fixture
def move_grace_s() -> float:
    """Bookings move at once here, unless a test overrides this fixture."""
    return 0.0


@pytest.fixture
def server(tmp_path: Path, broker: Mosquitto, move_grace_s: float) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path, broker.url, REPORT_S,
                            env={"CHARGENET_MOVE_GRACE_S": str(move_grace_s)})  # fmt: skip
    process.admin("POST", "/api/v1/stations", {
        "id": "st-1", "name_ja": "テスト避難所", "name_en": "Test shelter",
        "latitude": 33.5, "longitude": 132.5,
    })  # fmt: skip
    for unit in ("line-1.1", "tcp-1.1"):
        process.admin("PUT", f"/api/v1/batteries/{GW}/{unit}", {"station_id": "st-1"})
    yield process
    assert process.stop() == 0, process.log_text()


@pytest.fixture
def gateway(tmp_path: Path, sim: Simulator, broker: Mosquitto) -> Iterator[Child]:
    child = start_gateway(tmp_path, sim, broker.url, gw_id=GW, report_period_s=REPORT_S)
    yield child
    if child.alive:
        child.stop()


def port_statuses(server: ServerProcess) -> dict[tuple[str, int], str]:
    detail = server.get("/api/v1/stations/st-1")
    return {(b["unit"], p["port"]): p["status"] for b in detail["batteries"] for p in b["ports"]}


def test_fault_shows_faulted_and_a_killed_gateway_offline(
    server: ServerProcess, sim: Simulator, gateway: Child
) -> None:
    wait_until(lambda: len(port_statuses(server)) == 8, 30, "both batteries' ports in the API")
    sim.inject("line-1", 1, "port_fault", port=2, error="over_current")
    wait_until(
        lambda: port_statuses(server).get(("line-1.1", 2)) == "faulted",
        5 * REPORT_S + 10, "port 2 faulted in the API",
    )  # fmt: skip
    listed = {s["id"]: s for s in server.get("/api/v1/stations")["stations"]}
    assert listed["st-1"]["availability"]["healthy_ports"] == 7
    gateway.kill()
    wait_until(
        lambda: set(port_statuses(server).values()) == {"offline"},
        5 * REPORT_S + 10, "every port offline after the gateway died",
    )  # fmt: skip
    assert server.get("/api/v1/stations")["stations"][0]["availability"]["level"] == "full"


def displays(sim: Simulator) -> dict[tuple[str, int], str | None]:
    """Every simulated port's display: (unit, port) -> code."""
    shown = {}
    for unit in sim.units():
        name = f"{unit['line']}.{unit['unit_id']}"
        for port in unit["port_states"]:
            shown[(name, port["port"])] = port["display_code"]
    return shown


def test_a_booking_reaches_the_port_display_and_moves_when_the_port_fails(
    server: ServerProcess, sim: Simulator, gateway: Child
) -> None:
    wait_until(lambda: len(port_statuses(server)) == 8, 30, "both batteries' ports in the API")
    windows = server.get("/api/v1/stations/st-1/windows")["windows"]
    first = next(w for w in windows if w["places"] > 0)
    booking = server.request("POST", "/api/v1/bookings", {
        "resident_id": "resident-1", "station_id": "st-1", "window_start": first["start"],
    }, admin=True)  # fmt: skip
    code = booking["ticket_code"]
    shown = wait_until(
        lambda: [p for p, c in displays(sim).items() if c == code], 5 * REPORT_S + 10,
        "the ticket code on a port's display",
    )  # fmt: skip
    (unit, port) = shown[0]
    line, unit_id = unit.rsplit(".", 1)
    sim.inject(line, int(unit_id), "port_fault", port=port, error="over_current")
    moved = wait_until(
        lambda: (b := server.get(f"/api/v1/bookings/{booking['id']}"))["status"] == "moved" and b,
        5 * REPORT_S + 10, "the booking moved off the faulted port",
    )  # fmt: skip
    assert moved["status"] == "moved"
    told = server.admin("GET", "/api/v1/notifications")["notifications"]
    assert [n["kind"] for n in told if n["resident_id"] == "resident-1"] == ["booking_moved"]
    wait_until(
        lambda: [p for p, c in displays(sim).items() if c == code and p != (unit, port)],
        5 * REPORT_S + 10, "the ticket code on the new port's display",
    )  # fmt: skip


def test_a_spare_gateway_with_a_fresh_outbox_takes_over(
    server: ServerProcess, sim: Simulator, broker: Mosquitto, tmp_path: Path
) -> None:
    """The crew swaps a dead gateway for a spare: its seqs start again, and count."""
    first_dir, spare_dir = tmp_path / "first", tmp_path / "spare"
    first_dir.mkdir()
    spare_dir.mkdir()
    with sqlite3.connect(first_dir / "outbox.db") as outbox:  # a gateway that ran for weeks
        outbox.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        outbox.execute("INSERT INTO meta VALUES ('next_seq', 1000000)")
    first = start_gateway(first_dir, sim, broker.url, gw_id=GW, report_period_s=REPORT_S)
    try:
        wait_until(lambda: len(port_statuses(server)) == 8, 30, "both batteries' ports in the API")
    finally:
        first.kill()
    wait_until(
        lambda: set(port_statuses(server).values()) == {"offline"},
        5 * REPORT_S + 10, "every port offline after the first gateway died",
    )  # fmt: skip
    spare = start_gateway(spare_dir, sim, broker.url, gw_id=GW, report_period_s=REPORT_S)
    try:
        wait_until(
            lambda: "offline" not in port_statuses(server).values(),
            5 * REPORT_S + 10, "the spare's ports live in the API",
        )  # fmt: skip
        sim.inject("line-1", 1, "port_fault", port=3, error="over_current")
        wait_until(
            lambda: port_statuses(server).get(("line-1.1", 3)) == "faulted",
            5 * REPORT_S + 10, "a fault behind the spare shows as faulted",
        )  # fmt: skip
    finally:
        spare.stop()
    assert 'chargenet_ingest_total{counter="seq_restarts"} 1.0' in server.metrics()


@pytest.mark.parametrize("move_grace_s", [180.0])
def test_a_broker_outage_moves_no_booking_and_its_faults_arrive_after_it(
    server: ServerProcess, sim: Simulator, gateway: Child, broker: Mosquitto
) -> None:
    """The network drops (the broker restarts): Mosquitto then publishes every gateway's
    Last Will. Nobody's booking moves for that; a fault raised meanwhile arrives after."""
    wait_until(lambda: len(port_statuses(server)) == 8, 30, "both batteries' ports in the API")
    first = next(w for w in server.get("/api/v1/stations/st-1/windows")["windows"]
                 if w["places"] > 0)  # fmt: skip
    booking = server.request("POST", "/api/v1/bookings", {
        "resident_id": "resident-1", "station_id": "st-1", "window_start": first["start"],
    }, admin=True)  # fmt: skip
    faulted = 4 if booking["port"] != 4 else 3  # not the booked port, whichever battery
    broker.stop()
    served = sim.unit("line-1", 1)["requests"]
    sim.inject("line-1", 1, "port_fault", port=faulted, error="over_current")
    wait_until(lambda: sim.unit("line-1", 1)["requests"] >= served + 10, 20,
               "the gateway polls the faulted battery during the outage")  # fmt: skip
    assert port_statuses(server)[("line-1.1", faulted)] != "faulted"
    broker.start()
    wait_until(
        lambda: port_statuses(server).get(("line-1.1", faulted)) == "faulted",
        30, "the fault in the API after the outage",
    )  # fmt: skip

    def port_faults() -> list[tuple[str, int]]:
        incidents = server.admin("GET", "/api/v1/incidents?state=open")["incidents"]
        return [(i["unit"], i["port"]) for i in incidents if i["kind"] == "port_fault"]

    wait_until(lambda: port_faults() == [("line-1.1", faulted)], 10, "the fault's incident")
    assert "offline" not in port_statuses(server).values()
    kept = server.get(f"/api/v1/bookings/{booking['id']}")
    assert (kept["status"], kept["port"]) == ("active", booking["port"])
    assert server.admin("GET", "/api/v1/notifications")["notifications"] == []
