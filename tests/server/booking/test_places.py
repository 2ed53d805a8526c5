"""A booking and an incident name the port as a crew finds it: battery and port.

A station with two batteries has two port 1s, so "port 1" alone sends the crew (and the
resident) to the wrong socket half the time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.booking.views import battery_place, name_batteries, port_place
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Simulator, quiet_simulator, start_gateway

GW = "gw-test"
STATION = "st-two"
pytestmark = pytest.mark.slow


def test_batteries_are_numbered_per_station_in_the_order_the_dashboard_lists_them() -> None:
    units = [(7, "a", "gw-2", "rs485-1.1"), (3, "a", "gw-1", "rs485-1.2"),
             (5, "b", "gw-1", "rs485-1.1"), (4, "a", "gw-1", "rs485-1.1")]  # fmt: skip
    named = name_batteries(units)
    names = {b.unit_pk: b.name for b in named}
    assert names == {4: "battery 1 (rs485-1.1)", 3: "battery 2 (rs485-1.2)",
                     7: "battery 3 (rs485-1.1)", 5: "battery 1 (rs485-1.1)"}  # fmt: skip
    assert port_place(names, 3, 1) == "battery 2 (rs485-1.2) port 1"
    assert port_place(names, 99, 1) == "port 1"  # unmapped since: the port is all we know
    by_address = {(b.gw_id, b.unit): b.name for b in named}
    assert battery_place(by_address, "gw-1", "rs485-1.2", 3) == "battery 2 (rs485-1.2) port 3"
    assert battery_place(by_address, "gw-1", "rs485-1.2", None) == "battery 2 (rs485-1.2)"
    assert battery_place(by_address, "gw-1", None, None) is None  # the whole gateway


@pytest.fixture
def running(tmp_path: Path, broker: Mosquitto) -> Iterator[tuple[ServerProcess, Simulator]]:
    sim = quiet_simulator(tmp_path, units_per_line=2)
    process = ServerProcess(tmp_path, broker.url, 2.0,
                            env={"CHARGENET_INCIDENT_DEBOUNCE_S": "0"})  # fmt: skip
    gateway = start_gateway(tmp_path, sim, broker.url, gw_id=GW, report_period_s=2.0)
    try:
        process.admin("POST", "/api/v1/stations", {
            "id": STATION, "name_ja": "二台の避難所", "name_en": "Two batteries",
            "latitude": 33.5, "longitude": 132.5,
        })  # fmt: skip
        for unit in ("line-1.1", "line-1.2"):
            process.admin("PUT", f"/api/v1/batteries/{GW}/{unit}", {"station_id": STATION})
        wait_until(lambda: available(process) == 8, 30, "8 ports available")
        yield process, sim
    finally:
        gateway.stop()
        assert process.stop() == 0, process.log_text()
        sim.stop()


def book(server: ServerProcess, resident_id: str, window_start: str) -> dict[str, Any]:
    body = {"resident_id": resident_id, "station_id": STATION, "window_start": window_start}
    booking: dict[str, Any] = server.request("POST", "/api/v1/bookings", body, admin=True)
    return booking


def available(server: ServerProcess) -> int:
    detail = server.get(f"/api/v1/stations/{STATION}")
    return sum(p["status"] == "available" for b in detail["batteries"] for p in b["ports"])


def test_bookings_at_a_station_with_two_batteries_name_battery_and_port(
    running: tuple[ServerProcess, Simulator],
) -> None:
    server, _ = running
    [window] = [w for w in server.get(f"/api/v1/stations/{STATION}/windows")["windows"]
                if w["places"] >= 8][:1]  # fmt: skip
    made: list[dict[str, Any]] = [book(server, f"resident-{n}", window["start"]) for n in range(8)]
    assert sorted(b["port"] for b in made) == [1, 1, 2, 2, 3, 3, 4, 4]  # "port 1" twice
    assert sorted(b["place"] for b in made) == sorted(
        f"battery {n} (line-1.{n}) port {p}" for n in (1, 2) for p in range(1, 5)
    )
    again = server.get(f"/api/v1/bookings/{made[0]['id']}")
    assert again["place"] == made[0]["place"]
    detail = server.get(f"/api/v1/stations/{STATION}")
    assert [b["name"] for b in detail["batteries"]] == [
        "battery 1 (line-1.1)",
        "battery 2 (line-1.2)",
    ]


def test_an_incident_names_the_battery_and_the_port(
    running: tuple[ServerProcess, Simulator],
) -> None:
    server, sim = running
    sim.inject("line-1", 2, "port_fault", port=3, error="over_current")
    [incident] = wait_until(
        lambda: server.admin("GET", f"/api/v1/incidents?station_id={STATION}")["incidents"],
        30, "the port fault's incident",
    )  # fmt: skip
    assert (incident["kind"], incident["place"]) == ("port_fault", "battery 2 (line-1.2) port 3")
    [brief] = server.get(f"/api/v1/stations/{STATION}")["incidents"]
    assert brief["place"] == "battery 2 (line-1.2) port 3"
    acknowledged = server.admin("POST", f"/api/v1/incidents/{incident['id']}/acknowledge")
    assert acknowledged["place"] == "battery 2 (line-1.2) port 3"
