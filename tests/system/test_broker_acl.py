"""deploy/mosquitto: gateways authenticate and each is confined to its own topics."""

from __future__ import annotations

import getpass
import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from server.ingest.link import INFLIGHT_WINDOW
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
PREFIX = "chargenet/v1/gw"


class DeployedBroker(Mosquitto):
    """Mosquitto running deploy/mosquitto/mosquitto.conf with paths moved into a temp dir."""

    def __init__(self, workdir: Path, passwords: dict[str, str]) -> None:
        super().__init__(workdir)
        passwd = workdir / "passwd"
        passwd.touch()
        for user, password in passwords.items():
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
        acl = workdir / "acl"
        acl.write_text((DEPLOY / "acl").read_text())
        text = (DEPLOY / "mosquitto.conf").read_text()
        text = text.replace("/mosquitto/config/passwd", str(passwd))
        text = text.replace("/mosquitto/config/acl", str(acl))
        text = text.replace("/mosquitto/data/", f"{workdir}/")
        text = text.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        self.config.write_text(text + f"user {getpass.getuser()}\nlog_dest file {self.log}\n")


class Client:
    def __init__(self, port: int, user: str, password: str) -> None:
        self.received: list[str] = []
        self.refused: int | None = None
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{user}-test")
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.received.append(m.topic)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10), "no CONNACK"

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        self.refused = None if not getattr(rc, "is_failure", False) else int(rc.value)  # type: ignore[attr-defined]
        self.ready.set()

    def publish(self, topic: str) -> None:
        self.client.publish(topic, b"{}", qos=1).wait_for_publish(10)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def passwords() -> dict[str, str]:
    return {name: secrets.token_urlsafe(16) for name in ("gw-a", "gw-b", "chargenet-server")}


@pytest.fixture
def deployed(tmp_path: Path, passwords: dict[str, str]) -> Iterator[DeployedBroker]:
    broker = DeployedBroker(tmp_path, passwords)
    broker.start()
    yield broker
    broker.stop()


def test_gateway_is_confined_to_its_own_topics(
    deployed: DeployedBroker, passwords: dict[str, str]
) -> None:
    server = Client(deployed.port, "chargenet-server", passwords["chargenet-server"])
    gw_a = Client(deployed.port, "gw-a", passwords["gw-a"])
    try:
        server.subscribe(f"{PREFIX}/+/unit/+/state")
        server.subscribe(f"{PREFIX}/+/status")
        gw_a.publish(f"{PREFIX}/gw-b/unit/rs485-1.1/state")  # forged: another gateway's topic
        gw_a.publish(f"{PREFIX}/gw-a/unit/rs485-1.1/state")
        gw_a.publish(f"{PREFIX}/gw-a/status")
        wait_until(lambda: len(server.received) >= 2, 10, "gw-a's own messages")
        assert sorted(server.received) == [
            f"{PREFIX}/gw-a/status",
            f"{PREFIX}/gw-a/unit/rs485-1.1/state",
        ]

        gw_a.subscribe(f"{PREFIX}/+/cmd")
        gw_a.subscribe(f"{PREFIX}/+/receipt")
        gw_a.publish(f"{PREFIX}/gw-a/receipt")  # a gateway cannot confirm its own messages
        server.publish(f"{PREFIX}/gw-b/cmd")
        server.publish(f"{PREFIX}/gw-b/receipt")
        server.publish(f"{PREFIX}/gw-a/cmd")
        server.publish(f"{PREFIX}/gw-a/receipt")
        wait_until(lambda: len(gw_a.received) >= 2, 10, "gw-a's command and receipt")
        assert sorted(gw_a.received) == [f"{PREFIX}/gw-a/cmd", f"{PREFIX}/gw-a/receipt"]
    finally:
        server.close()
        gw_a.close()


def test_wrong_password_is_refused(deployed: DeployedBroker, passwords: dict[str, str]) -> None:
    wrong = Client(deployed.port, "gw-a", "not-" + passwords["gw-a"])
    try:
        assert wrong.refused is not None
    finally:
        wrong.close()


def test_queue_limits_are_set_on_purpose() -> None:
    text = (DEPLOY / "mosquitto.conf").read_text()
    settings = dict(
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert int(settings["max_queued_messages"]) >= 100_000
    # the server holds messages unacknowledged until committed: two batches must fit in flight
    assert int(settings["max_inflight_messages"]) >= INFLIGHT_WINDOW
    assert settings["allow_anonymous"] == "false"
    assert settings["persistence"] == "true"
