"""`chargenet demo --exit-after N`: everything starts, the server answers, all stops cleanly."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import httpx
import pytest

from chargenet.demo import free_port
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto

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
    assert f"public page (residents) {url}/public" in out
    assert "resident chat (LINE sandbox) http://127.0.0.1:" in out
    assert "crew channels (LINE WORKS sandbox) http://127.0.0.1:" in out
    assert "gateway health http://127.0.0.1:" in out


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


class Lines:
    """A child's stdout lines as they come, read by a thread (the child keeps running)."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert child.stdout is not None
        stdout = child.stdout
        threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True).start()

    def after(self, prefix: str) -> str | None:
        """The rest of the first line that starts with `prefix`, if one came yet."""
        found = (line for line in list(self.lines) if line.startswith(prefix))
        return next((line.removeprefix(prefix).strip() for line in found), None)


def test_the_demo_opens_to_the_network_and_its_fault_command_works_as_printed(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """`--host 0.0.0.0`: the dashboard answers on this machine's network address, as a phone
    would reach it; the printed fault command runs from a shell without the venv active."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "chargenet", "demo", "--mqtt", broker.url, "--data-dir",
         str(tmp_path / "data"), "--http-port", str(free_port()), "--host", "0.0.0.0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out = Lines(demo)
        fault = wait_until(
            lambda: out.after("inject a fault:") or demo.poll() is not None, 60, "the demo's URLs"
        )
        assert isinstance(fault, str), demo.stderr.read() if demo.stderr else ""
        phone_url = out.after("dashboard from a phone")
        assert phone_url is not None and "127.0.0.1" not in phone_url, out.lines
        with urllib.request.urlopen(phone_url, timeout=10) as reply:
            assert reply.status == 200 and "<html" in reply.read().decode().lower()
        no_venv = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        ran = subprocess.run(shlex.split(fault), env=no_venv, capture_output=True, text=True,
                             timeout=60)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        control = out.after("simulator control API")
        assert control is not None
        with urllib.request.urlopen(control + "/units", timeout=10) as reply:
            units = json.loads(reply.read())["units"]
        unit = next(u for u in units if u["line"] == "rs485-1" and u["unit_id"] == 2)
        assert [f["kind"] for f in unit["faults"]] == ["port_fault"]
        chat = out.after("resident chat (LINE sandbox)")
        assert chat is not None
        sandbox = chat.removesuffix("/_sandbox/line/chat")
        user = "U" + "de30".ljust(32, "0")
        sent = httpx.post(f"{sandbox}/_sandbox/line/users/{user}/send", timeout=30,
                          json={"type": "text", "text": "予約確認"}).json()  # fmt: skip
        assert sent["status"] == 200, sent  # the intake took LINE's webhook
        wait_until(lambda: httpx.get(f"{sandbox}/_sandbox/line/users/{user}/messages",
                                     timeout=30).json(), 30, "the bot's answer")  # fmt: skip
        intake = out.after("LINE webhook (chargenet intake)")
        assert intake is not None
        health = httpx.get(intake.removesuffix("/line/webhook") + "/healthz", timeout=30).json()
        assert health["handedOn"] == 1 and health["pending"] == 0, health
    finally:
        demo.terminate()
        demo.wait(timeout=60)
    assert demo.returncode == 0
