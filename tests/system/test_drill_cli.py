"""`chargenet drill start` from a scenario file, against a real server and Mosquitto: it
starts the drill, runs the simulator and the drill's gateway, ends the drill when the time
is up, and prints and writes the report the server gives."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.mosquitto import Mosquitto
from tests.server.running import TOKEN, ServerProcess

pytestmark = pytest.mark.slow
SCENARIO = """\
seed = 7
speed = 1.0
physics = false

[defaults]
ports = 4

[[line]]
name = "shelter-01"
baudrate = 19200
parity = "N"
stopbits = 2
units = [1]

[[fault]]
at_s = 2
line = "shelter-01"
unit_id = 1
kind = "port_fault"
port = 2
error = "over_current"
"""
RUN_S = 20


def test_the_cli_plays_a_scenario_as_a_drill_and_prints_its_report(
    tmp_path: Path, broker: Mosquitto
) -> None:
    server = ServerProcess(tmp_path, broker.url, 1.0)
    try:
        server.admin("POST", "/api/v1/stations", {
            "id": "ozu-01", "name_ja": "大洲小学校", "name_en": "Ozu Elementary School",
            "latitude": 33.5, "longitude": 132.5, "municipality": "大洲市",
        })  # fmt: skip
        scenario = tmp_path / "short-night.toml"
        scenario.write_text(SCENARIO)
        out = tmp_path / "report.json"
        done = subprocess.run(
            [sys.executable, "-m", "chargenet", "drill", "--server", server.url, "--token", TOKEN,
             "start", "--scenario", str(scenario), "--municipality", "大洲市", "--mqtt",
             broker.url, "--data-dir", str(tmp_path / "drill"), "--report-period", "1",
             "--duration", str(RUN_S), "--out", str(out)],
            capture_output=True, text=True, timeout=RUN_S + 90,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        report = json.loads(out.read_text())
        drill = report["drill"]
        assert (drill["active"], drill["municipalities"]) == (False, ["大洲市"])
        assert drill["units"] == {"shelter-01.1": "drill1-ozu-01"}
        drilled = [i for i in server.admin("GET", "/api/v1/incidents")["incidents"]
                   if i["drill_id"] == drill["id"]]  # fmt: skip
        assert [(i["kind"], i["port"]) for i in drilled] == [("port_fault", 2)]
        assert report["incidents"] == 1 and report["unresolved_at_end"] == 1
        assert f"drill {drill['id']} started: gateway drill-1" in done.stdout
        assert "incidents 1, alerts sent 0" in done.stdout  # no crew routes in this registry
        started = datetime.fromisoformat(drill["started_at"]).astimezone(ZoneInfo("Asia/Tokyo"))
        assert f"in 大洲市: {started:%m/%d %H:%M} - " in done.stdout  # Japan time
        assert server.get("/api/v1/stations")["stations"][0]["id"] == "ozu-01"
    finally:
        assert server.stop() == 0, server.log_text()
