"""A drill end to end (issue 12, item 4): simulator -> gateway -> Mosquitto -> `chargenet
server` -> both platforms' sandboxes, beside the real battery that stays watched.

The drill runs in 大洲市: a twin of its shelter gets the drill simulator's battery. A resident
who joined drills books the twin; one who did not is refused it and books the real shelter.
The drill's fault pages the crews marked 訓練 / DRILL and tells the participant, marked; a real
fault meanwhile pages as real; the crew acknowledges the drill's alert; ending the drill
closes what it left open, and its report's figures are what happened.
"""

from __future__ import annotations

import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from server.line.messages import Postback
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.sandboxes import Sandbox
from tests.server.running import ServerProcess
from tests.system.harness import Child, Simulator, quiet_simulator, start_gateway
from tests.system.platforms import (
    CHANNELS,
    GW,
    NEAR,
    REPORT_S,
    STATION,
    Resident,
    alerts,
    buttons,
    displays,
    postback_data,
    start_server,
    text_of,
)

pytestmark = pytest.mark.slow
CREW = "crew-suzuki"
ARRIVES_S = 5 * REPORT_S + 10
ELSEWHERE = {
    "id": "yw-1", "name_ja": "八幡浜市民会館", "name_en": "Yawatahama Hall", "latitude": 33.46,
    "longitude": 132.42, "municipality": "八幡浜市",
}  # fmt: skip
CREW_CHANNEL = CHANNELS[("municipality", "大洲市")]


@dataclass
class World:
    server: ServerProcess
    sandbox: Sandbox
    real: Simulator
    drill_sim: Simulator
    children: list[Child]
    tmp_path: Path
    broker: Mosquitto


@pytest.fixture
def world(tmp_path: Path, broker: Mosquitto, sandbox: Sandbox) -> Iterator[World]:
    real = quiet_simulator(tmp_path)
    (tmp_path / "drill").mkdir()
    drill_sim = quiet_simulator(tmp_path / "drill")
    server = start_server(tmp_path, broker.url, sandbox)
    children: list[Child] = []
    try:
        server.admin("POST", "/api/v1/stations", ELSEWHERE)
        children.append(start_gateway(tmp_path, real, broker.url, gw_id=GW,
                                      report_period_s=REPORT_S))  # fmt: skip
        wait_until(lambda: ports(server, STATION["id"]) == ["available"] * 4, 30,
                   "the real shelter's ports available")  # fmt: skip
        yield World(server, sandbox, real, drill_sim, children, tmp_path, broker)
    finally:
        for child in children:
            child.stop()
        assert server.stop() == 0, server.log_text()
        drill_sim.stop()
        real.stop()


def ports(server: ServerProcess, station_id: str) -> list[str]:
    detail = server.get(f"/api/v1/stations/{station_id}")
    return [p["status"] for b in detail["batteries"] for p in b["ports"]]


def incidents(server: ServerProcess) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.admin("GET", "/api/v1/incidents")["incidents"]
    return found


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def marked(text: str) -> bool:
    return "訓練" in text and "DRILL" in text


def test_a_drill_is_marked_kept_apart_and_reported_while_a_real_fault_alerts_as_real(
    world: World,
) -> None:
    server, sandbox = world.server, world.sandbox
    drill = server.admin("POST", "/api/v1/drills", {
        "name": "大洲市 台風訓練", "scenario": "quiet", "municipalities": ["大洲市"],
        "units": ["line-1.1"],
    })  # fmt: skip
    [(twin, real_id)] = drill["stations"].items()
    assert (real_id, drill["units"], drill["active"]) == (STATION["id"], {"line-1.1": twin}, True)
    world.children.append(start_gateway(world.tmp_path / "drill", world.drill_sim,
                                        world.broker.url, gw_id=drill["gw_id"],
                                        report_period_s=REPORT_S))  # fmt: skip
    wait_until(lambda: ports(server, twin) == ["available"] * 4, 30, "the twin's ports available")

    # Seen by operators, marked; never by the public or in open data.
    listed = {s["id"]: s for s in server.get("/api/v1/stations?drills=true")["stations"]}
    assert listed[twin]["drill_id"] == drill["id"] and marked(
        listed[twin]["name_ja"] + listed[twin]["name_en"]
    )
    assert twin not in {s["id"] for s in server.get("/api/v1/stations")["stations"]}
    assert twin not in str(server.get("/opendata/v1/stations.geojson"))

    # Only a participant books the twin; the other is refused it and books the real shelter.
    joined = Resident(sandbox, "U" + "d1".ljust(32, "0"))
    outsider = Resident(sandbox, "U" + "d2".ljust(32, "0"))
    assert "訓練不参加" in text_of(joined.say({"type": "text", "text": "訓練参加"}, "joined"))
    offered = joined.say({"type": "text", "text": "訓練"}, "the drill's stations offered")
    [book_twin, *_] = postback_data(offered, Postback.BOOK)
    assert twin in book_twin and "【訓練】" in text_of(offered)  # in the resident's language
    ticket = joined.say({"type": "postback", "data": book_twin}, "the drill ticket")
    assert "【訓練】" in text_of(ticket)
    refused = outsider.say({"type": "postback", "data": book_twin}, "the outsider refused")
    assert "訓練参加" in text_of(refused)
    real_ticket = outsider.book(NEAR)
    assert "訓練" not in text_of(real_ticket) and STATION["name_ja"] in text_of(real_ticket)
    [(_, drill_port)] = wait_until(lambda: list(displays(world.drill_sim)), ARRIVES_S,
                                      "the drill ticket on the twin's display")  # fmt: skip
    [(_, real_port)] = wait_until(lambda: list(displays(world.real)), ARRIVES_S,
                                  "the real ticket on the real display")  # fmt: skip

    # The drill's fault: a drill incident, paged marked, its participant told marked.
    seen = len(joined.deliveries())
    world.drill_sim.inject("line-1", 1, "port_fault", port=drill_port, error="over_current")
    [drill_incident] = wait_until(
        lambda: [i for i in incidents(server) if i["drill_id"] == drill["id"]], ARRIVES_S,
        "the drill's incident",
    )  # fmt: skip
    assert (drill_incident["station_id"], drill_incident["kind"]) == (twin, "port_fault")
    [drill_alert] = wait_until(lambda: alerts(sandbox, CREW_CHANNEL), ARRIVES_S, "the drill page")
    assert marked(drill_alert["content"]["contentText"]), drill_alert
    told = joined.next_delivery(seen, "the participant told of the drill's fault", ARRIVES_S)
    assert "【訓練】" in text_of(told), told

    # A real fault meanwhile is real: paged unmarked, not the drill's.
    spare = next(p for p in range(1, 5) if p != real_port)
    world.real.inject("line-1", 1, "port_fault", port=spare, error="over_current")
    [real_incident] = wait_until(
        lambda: [i for i in incidents(server) if i["drill_id"] is None], ARRIVES_S,
        "the real incident",
    )  # fmt: skip
    assert real_incident["station_id"] == STATION["id"]
    real_alert = wait_until(
        lambda: [a for a in alerts(sandbox, CREW_CHANNEL) if a is not drill_alert
                 and f"#{real_incident['id']}" in a["content"]["contentText"]],
        ARRIVES_S, "the real page",
    )[0]  # fmt: skip
    assert "訓練" not in real_alert["content"]["contentText"]
    assert "DRILL" not in real_alert["content"]["contentText"]

    # The crew acknowledges the drill's alert with its button.
    ack = next(b for b in buttons(drill_alert) if b.startswith("ack:"))
    assert sandbox.works_press(CREW_CHANNEL, CREW, ack)["status"] == 200
    wait_until(
        lambda: [i for i in incidents(server) if i["id"] == drill_incident["id"]
                 and i["state"] == "acknowledged"], 10, "the drill incident acknowledged",
    )  # fmt: skip

    ended = server.admin("POST", f"/api/v1/drills/{drill['id']}/end")
    assert not ended["active"] and ended["ended_by"]
    assert twin not in {s["id"] for s in server.get("/api/v1/stations?drills=true")["stations"]}
    with pytest.raises(urllib.error.HTTPError) as gone:
        server.get(f"/api/v1/stations/{twin}")
    assert gone.value.code == 404

    report = server.admin("GET", f"/api/v1/drills/{drill['id']}/report")
    rows = {i["id"]: i for i in incidents(server) if i["drill_id"] == drill["id"]}
    assert report["incidents"] == len(rows) == 1
    handled = rows[drill_incident["id"]]
    ack_s = (at(handled["acknowledged_at"]) - at(handled["opened_at"])).total_seconds()
    assert report["acknowledged"] == {
        "count": 1,
        "p50_s": round(ack_s, 1),
        "max_s": round(ack_s, 1),
    }
    assert handled["resolved_by"] == "drill_end" and report["unresolved_at_end"] == 1
    assert report["resolved"]["count"] == 0
    assert report["actors"] == {f"lineworks:{CREW}": {"acknowledged": 1, "resolved": 0}}
    drill_pages = [m for channel in CHANNELS.values() for m in alerts(sandbox, channel)
                   if f"#{drill_incident['id']}" in m["content"]["contentText"]]  # fmt: skip
    assert report["alerts_sent"]["paged"] == len(drill_pages) == len(CHANNELS)
    assert report["real_incidents"] == 1
    assert report["bookings"]["participants"] == 1
    assert report["resident_notices"] >= 1

    # Nothing of the drill reached the resident who did not join it.
    assert not any("訓練" in text_of(d) and "訓練参加" not in text_of(d)
                   for d in outsider.deliveries())  # fmt: skip
