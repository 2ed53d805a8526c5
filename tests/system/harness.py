"""Real processes for end-to-end tests: simulator, gateway, and an independent MQTT recorder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from chargenet.demo import gateway_config_toml, read_announcement
from protocol.topics import DEFAULT_PREFIX

STARTUP_S = 30.0


class Child:
    """A `python -m chargenet ...` child whose stderr goes to a file for post-mortems."""

    def __init__(
        self,
        args: list[str],
        log_path: Path,
        stdout: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        env = {**os.environ, "CHARGENET_LOG_LEVEL": "INFO", **(env or {})}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chargenet", *args], stdout=stdout, stderr=self._log, env=env
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log.close()
        return code

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()


class Simulator(Child):
    """`chargenet sim` with its announcement and a client for its control API."""

    def __init__(self, args: list[str], workdir: Path) -> None:
        super().__init__(["sim", *args], workdir / "sim.log", stdout=subprocess.PIPE)
        try:
            self.announced: dict[str, Any] = read_announcement(self.process, STARTUP_S)
        except Exception:
            self.stop()
            raise RuntimeError(f"simulator did not start:\n{self.log_text()}") from None
        self.control: str = self.announced["control"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.control + path, data=data, method=method,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())

    def units(self) -> list[dict[str, Any]]:
        units: list[dict[str, Any]] = self.call("GET", "/units")["units"]
        return units

    def unit(self, line: str, unit_id: int) -> dict[str, Any]:
        return next(u for u in self.units() if u["line"] == line and u["unit_id"] == unit_id)

    def inject(self, line: str, unit_id: int, kind: str, **extra: Any) -> None:
        self.call("POST", "/faults", {"line": line, "unit_id": unit_id, "kind": kind, **extra})

    def clear(self, line: str, unit_id: int, kind: str, **extra: Any) -> None:
        self.call("DELETE", "/faults", {"line": line, "unit_id": unit_id, "kind": kind, **extra})

    def plug(self, line: str, unit_id: int, port: int, plugged: bool = True) -> None:
        body = {"line": line, "unit_id": unit_id, "port": port, "plugged": plugged}
        self.call("POST", "/phones", body)


def quiet_simulator(
    workdir: Path,
    units_per_line: int = 1,
    baudrate: int = 19200,
    tcp_units: int = 0,
    seed: int | None = 1,
) -> Simulator:
    """One serial line of 4-port batteries (and `tcp_units` on Modbus TCP), no physics:
    nothing changes unless the test says so."""
    args = ["--serial-lines", "1", "--units-per-line", str(units_per_line), "--ports", "4",
            "--baudrate", str(baudrate), "--tcp-units", str(tcp_units), "--no-physics"]  # fmt: skip
    return Simulator(args + (["--seed", str(seed)] if seed is not None else []), workdir)


def start_gateway(
    workdir: Path,
    sim: Simulator,
    mqtt_url: str,
    gw_id: str = "gw-test",
    report_period_s: float = 2.0,
    poll_period_s: float = 0.2,
    extra: str = "",
    top: str = "",
    env: dict[str, str] | None = None,
    store: Path | None = None,
) -> Child:
    """A gateway for every line the simulator announced, outbox in `workdir` (or `store`);
    `extra` goes into `[mqtt]`, `top` before it."""
    text = gateway_config_toml(
        gw_id, mqtt_url, sim.announced, store or workdir / "outbox.db", report_period_s
    ).replace("poll_period_s = 1.0", f"poll_period_s = {poll_period_s}\n{top}")
    text = text.replace("reconnect_max_s = 5", "reconnect_max_s = 1" + extra)
    config = workdir / "gateway.toml"
    config.write_text(text)
    return Child(["gateway", "--config", str(config)], workdir / "gateway.log", env=env)


@dataclass(frozen=True)
class Received:
    topic: str
    payload: dict[str, Any]
    retain: bool


class Recorder:
    """An independent subscriber (plain paho) that records everything under the prefix."""

    def __init__(self, port: int, client_id: str = "recorder", persistent: bool = False) -> None:
        self._lock = threading.Lock()
        self._messages: list[Received] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.reconnect_delay_set(0.1, 1)  # type: ignore[arg-type]  # paho takes float s
        self.connected = threading.Event()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        if not self.connected.wait(STARTUP_S):
            raise RuntimeError("recorder could not connect")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{DEFAULT_PREFIX}/#", qos=1)
        self.connected.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            payload = json.loads(message.payload)
        except ValueError:
            payload = {"_raw": message.payload.decode(errors="replace")}
        with self._lock:
            self._messages.append(Received(message.topic, payload, bool(message.retain)))

    def messages(self, suffix: str = "") -> list[Received]:
        with self._lock:
            return [m for m in self._messages if m.topic.endswith(suffix)]

    def latest(self, suffix: str) -> dict[str, Any] | None:
        found = self.messages(suffix)
        return found[-1].payload if found else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
