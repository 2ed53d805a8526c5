"""`chargenet demo --exit-after N`: everything starts, the server answers, all stops cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto, free_port

pytestmark = pytest.mark.slow


def test_demo_runs_the_server_with_the_demo_stations(tmp_path: Path, broker: Mosquitto) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "chargenet", "demo", "--mqtt", broker.url, "--data-dir",
         str(tmp_path / "data"), "--http-port", str(port), "--exit-after", "25",
         "--report-period", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    stations: list[dict[str, object]] = []

    def demo_stations_served_or_demo_ended() -> bool:
        nonlocal stations
        if demo.poll() is not None:
            return True
        try:
            with urllib.request.urlopen(url + "/api/v1/stations", timeout=5) as reply:
                stations = json.loads(reply.read())["stations"]
        except OSError:
            return False
        return any(s["id"] == "ozu-01" for s in stations)

    wait_until(demo_stations_served_or_demo_ended, 60, "the demo's stations from the server")
    out, err = demo.communicate(timeout=90)
    assert demo.returncode == 0, err
    assert any(s["id"] == "ozu-01" for s in stations), err
    assert f"dashboard {url}/" in out and "admin token " in out


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_sigterm_stops_the_demo_and_every_part(tmp_path: Path, broker: Mosquitto) -> None:
    data = tmp_path / "data"
    demo = subprocess.Popen(
        [sys.executable, "-m", "chargenet", "demo", "--mqtt", broker.url, "--data-dir",
         str(data), "--http-port", str(free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    gateway_config = str(data / "gateway.toml")
    wait_until(lambda: processes_mentioning(gateway_config), 60, "the demo's gateway running")
    demo.terminate()
    _, err = demo.communicate(timeout=60)
    assert demo.returncode == 0, err
    assert processes_mentioning(gateway_config) == []
    assert "Traceback" not in err
