"""Simulator -> gateway -> Mosquitto -> `chargenet server`: when two ports fail, the
resident an operator granted priority is re-placed first.

Seven of the station's eight places in a window are booked, the priority resident's on the
fourth port of the first battery. Ports 1 and 4 of that battery fault together: two
bookings for the one place left. The faults wait out the move grace (as a device's fault
for a later window does), then one relocation takes both: the priority resident keeps the
window, the other moves to a later one, though their booking came first.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conditions import wait_until
from tests.server.running import ServerProcess
from tests.system.harness import Child, Simulator
from tests.system.test_server_end_to_end import (
    REPORT_S,
    displays,
    gateway,  # noqa: F401  (a fixture)
    port_statuses,
    server,  # noqa: F401  (a fixture)
    sim,  # noqa: F401  (a fixture)
)

pytestmark = pytest.mark.slow
REFERENCE = "P4WERM3D"
GRACE_S = 8.0
"""Long enough for both faults to be heard before the relocation takes the station."""


@pytest.fixture
def move_grace_s() -> float:
    """`test_server_end_to_end`'s server, with the grace that lets both faults be heard."""
    return GRACE_S


def test_a_priority_resident_is_re_placed_first_when_ports_fail(
    server: ServerProcess,  # noqa: F811
    sim: Simulator,  # noqa: F811
    gateway: Child,  # noqa: F811
) -> None:
    wait_until(lambda: len(port_statuses(server)) == 8, 30, "both batteries' ports in the API")
    server.register("Upower", "大洲市", "medical_device", REFERENCE)
    granted = server.admin("PUT", f"/api/v1/priority/residents/{REFERENCE}", {"source": "desk"})
    assert granted["granted"]
    soon = datetime.now(UTC) + timedelta(seconds=GRACE_S + 60)
    windows = server.get("/api/v1/stations/st-1/windows")["windows"]
    window = next(w["start"] for w in windows if datetime.fromisoformat(w["start"]) > soon)

    def book(resident: str) -> dict[str, Any]:
        body = {"resident_id": resident, "station_id": "st-1", "window_start": window}
        made: dict[str, Any] = server.request("POST", "/api/v1/bookings", body, admin=True)
        return made

    first = [book(f"r{n}") for n in range(1, 4)]
    mine = book("line:Upower")
    rest = [book(f"r{n}") for n in range(4, 7)]
    codes = {b["ticket_code"]: b for b in [*first, mine, *rest]}

    def on_displays() -> dict[str, tuple[str, int]]:
        found = {c: p for p, c in displays(sim).items() if c is not None and c in codes}
        return found if len(found) == len(codes) else {}

    shown = wait_until(on_displays, 5 * REPORT_S + 10, "every ticket code on its port's display")
    (unit, port), (other_unit, other_port) = (
        shown[mine["ticket_code"]],
        shown[first[0]["ticket_code"]],
    )
    assert unit == other_unit and port == 4 and other_port == 1  # one battery, lowest ports
    line, unit_id = unit.rsplit(".", 1)
    for faulted in (1, 4):
        sim.inject(line, int(unit_id), "port_fault", port=faulted, error="over_current")

    def moved(booking: dict[str, Any]) -> bool:
        return bool(server.get(f"/api/v1/bookings/{booking['id']}")["status"] == "moved")

    wait_until(lambda: moved(mine) and moved(first[0]), 5 * REPORT_S + GRACE_S + 30,
               "both bookings off the faulted ports")  # fmt: skip
    active = {
        b["resident_id"]: b
        for b in (server.get(f"/api/v1/bookings/{b['id']}") for b in [*first, mine, *rest])
        if b["status"] == "active"
    }
    assert set(active) == {"r2", "r3", "r4", "r5", "r6"}  # the moved have new bookings
    path = server.database_url.split("///", 1)[1]
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        after = dict(db.execute(  # the moved bookings' successors
            "SELECT resident_id, window_start FROM bookings WHERE status = 'active'"
            " AND moved_from_id IN (?, ?)", (mine["id"], first[0]["id"])).fetchall())  # fmt: skip
    start = datetime.fromisoformat(window)
    assert datetime.fromisoformat(after["line:Upower"]).replace(tzinfo=UTC) == start
    assert datetime.fromisoformat(after["r1"]).replace(tzinfo=UTC) > start
