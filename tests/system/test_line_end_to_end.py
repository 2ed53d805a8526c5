"""Simulator -> gateway -> Mosquitto -> `chargenet server` -> both platforms' sandboxes.

A resident books in the LINE chat; the simulator faults the booked port; the three crew
channels (the station's crew, its counterpart group, HQ) show the alert at once and the
resident is pushed the moved booking; a crew member acknowledges and resolves it with the
alert's buttons; the audit log has the opening, the page, both presses and who did what.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.sandboxes import Sandbox
from tests.server.running import ServerProcess
from tests.system.harness import Child, Simulator, quiet_simulator, start_gateway
from tests.system.platforms import (
    CHANNELS,
    GW,
    REPORT_S,
    STATION,
    Resident,
    alerts,
    audit_trail,
    buttons,
    displays,
    start_server,
    text_of,
)

pytestmark = pytest.mark.slow
CREW = "crew-tanaka"
ARRIVES_S = 5 * REPORT_S + 10


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    simulator = quiet_simulator(tmp_path)
    yield simulator
    simulator.stop()


@pytest.fixture
def server(tmp_path: Path, broker: Mosquitto, sandbox: Sandbox) -> Iterator[ServerProcess]:
    process = start_server(tmp_path, broker.url, sandbox)
    yield process
    assert process.stop() == 0, process.log_text()


@pytest.fixture
def gateway(
    tmp_path: Path, sim: Simulator, broker: Mosquitto, server: ServerProcess
) -> Iterator[Child]:
    child = start_gateway(tmp_path, sim, broker.url, gw_id=GW, report_period_s=REPORT_S)
    wait_until(
        lambda: [p["status"] for b in server.get(f"/api/v1/stations/{STATION['id']}")["batteries"]
                 for p in b["ports"]] == ["available"] * 4,
        30, "the battery's four ports available in the API",
    )  # fmt: skip
    yield child
    child.stop()


def test_a_resident_booked_in_the_chat_is_moved_when_the_port_fails_and_the_crew_handles_it(
    server: ServerProcess, sim: Simulator, gateway: Child, sandbox: Sandbox
) -> None:
    resident = Resident(sandbox, "U" + "e2e".ljust(32, "0"))
    ticket = resident.book()
    [((unit, port), shown)] = wait_until(lambda: list(displays(sim).items()), ARRIVES_S,
                                         "the ticket code on a port's display")  # fmt: skip
    assert shown in text_of(ticket), ticket
    assert STATION["name_ja"] in text_of(ticket)
    seen = len(resident.deliveries())

    line, unit_id = unit.rsplit(".", 1)
    sim.inject(line, int(unit_id), "port_fault", port=port, error="over_current")

    paged = {c: wait_until(partial(alerts, sandbox, c), ARRIVES_S, f"the alert in {c}")
             for c in CHANNELS.values()}  # fmt: skip
    [incident] = [i for i in server.admin("GET", "/api/v1/incidents")["incidents"]
                  if i["kind"] == "port_fault"]  # fmt: skip
    ack, resolve = f"ack:{incident['id']}", f"resolve:{incident['id']}"
    for channel, messages in paged.items():
        assert len(messages) == 1, (channel, messages)
        assert buttons(messages[0]) == [ack, resolve]
        assert STATION["name_ja"] in messages[0]["content"]["contentText"]

    moved = resident.next_delivery(seen, "the moved booking pushed to the resident", ARRIVES_S)
    assert moved["via"] == "push"
    assert shown in text_of(moved)  # the same ticket, at another port
    wait_until(lambda: [p for p, c in displays(sim).items() if c == shown and p != (unit, port)],
               ARRIVES_S, "the ticket code on the new port's display")  # fmt: skip

    crew_ozu = CHANNELS[("municipality", "大洲市")]
    pressed = sandbox.works_press(crew_ozu, CREW, ack)
    assert pressed["status"] == 200, pressed
    [acknowledged] = server.admin("GET", "/api/v1/incidents?state=acknowledged")["incidents"]
    assert acknowledged["id"] == incident["id"]
    wait_until(lambda: "受付しました" in text_of(sandbox.works_user(CREW)), 10,
               "the presser told their press worked")  # fmt: skip
    pressed = sandbox.works_press(crew_ozu, CREW, resolve)
    assert pressed["status"] == 200, pressed
    [done] = server.admin("GET", "/api/v1/incidents?state=resolved")["incidents"]
    assert (done["id"], done["resolved_by"]) == (incident["id"], f"lineworks:{CREW}")

    def told_resolved(channel: str) -> bool:
        return "Resolved by" in text_of(sandbox.works_channel(channel))

    for channel in CHANNELS.values():
        wait_until(partial(told_resolved, channel), 10, f"{channel} told of the resolution")

    trail = audit_trail(server, f"incident:{incident['id']}")
    actions = [action for _, action, _ in trail]
    assert actions[:2] == ["incident.opened", "incident.paged"], actions
    paged_detail = trail[1][2]
    assert sorted(paged_detail["channels"]) == sorted(CHANNELS.values())
    presses = [(actor, d["button"], d["result"]) for actor, action, d in trail
               if action == "incident.button_pressed"]  # fmt: skip
    assert presses == [(f"lineworks:{CREW}", "ack", "acknowledged"),
                       (f"lineworks:{CREW}", "resolve", "resolved")]  # fmt: skip
    by = {action: actor for actor, action, _ in trail}
    assert by["incident.acknowledged"] == by["incident.resolved"] == f"lineworks:{CREW}"
    assert actions.index("incident.acknowledged") < actions.index("incident.resolved")
