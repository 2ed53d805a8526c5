"""The deployed broker's access rules, on a real Mosquitto with `deploy/mosquitto/acl` and a
password per gateway: a wrong password is refused, a gateway cannot publish as another nor
read another's commands, and each still reaches its own topics and the server."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from protocol.topics import COMMAND, DEFAULT_PREFIX, GATEWAY_STATUS, TopicPattern
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto

ACL = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "acl"
SERVER = "chargenet-server"  # the ACL's server user, as docker-compose.yml names it
GATEWAYS = ("gw-a", "gw-b")


def topic(pattern: TopicPattern, gw: str) -> str:
    return pattern.format(DEFAULT_PREFIX, gw)


class Session:
    """A plain paho client that records the messages it gets and how its CONNECT went."""

    def __init__(self, broker: Mosquitto, user: str, password: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.refused: str | None = None
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{user}-{secrets.token_hex(4)}"
        )
        self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = lambda *_args: self.subscribed.set()
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, _client: paho.Client, _userdata: object, _flags: object,
                    reason: ReasonCode, _properties: object) -> None:  # fmt: skip
        if reason.is_failure:
            self.refused = str(reason)
        self.connected.set()

    def subscribe(self, *topics: str) -> None:
        for topic in topics:
            self.subscribed.clear()
            self.client.subscribe(topic, qos=1)
            assert self.subscribed.wait(10), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def passwords() -> dict[str, str]:
    return {name: secrets.token_urlsafe(16) for name in (SERVER, *GATEWAYS)}


@pytest.fixture
def secured(tmp_path: Path, passwords: dict[str, str]) -> Iterator[Mosquitto]:
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker", users=passwords, acl_file=ACL)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def sessions(secured: Mosquitto, passwords: dict[str, str]) -> Iterator[dict[str, Session]]:
    opened = {name: Session(secured, name, password) for name, password in passwords.items()}
    for name, session in opened.items():
        assert session.connected.wait(10), f"{name} got no CONNACK"
        assert session.refused is None, f"{name} refused: {session.refused}"
    yield opened
    for session in opened.values():
        session.close()


def test_a_wrong_password_or_an_unknown_user_is_refused(secured: Mosquitto) -> None:
    for user in ("gw-a", "gw-nobody"):
        session = Session(secured, user, "not-the-password")
        try:
            assert session.connected.wait(10), "no CONNACK"
            assert session.refused is not None and "authori" in session.refused.lower()
        finally:
            session.close()


def test_a_gateway_cannot_publish_as_another(sessions: dict[str, Session]) -> None:
    server, gw_a = sessions[SERVER], sessions["gw-a"]
    server.subscribe(GATEWAY_STATUS.subscription(DEFAULT_PREFIX))
    gw_a.publish(topic(GATEWAY_STATUS, "gw-b"), b"forged")
    gw_a.publish(topic(GATEWAY_STATUS, "gw-a"), b"own")  # after it, in order
    wait_until(lambda: (topic(GATEWAY_STATUS, "gw-a"), b"own") in server.messages, 10,
               "gw-a's own status at the server")  # fmt: skip
    assert server.messages == [(topic(GATEWAY_STATUS, "gw-a"), b"own")]


def test_a_gateway_cannot_read_another_gateways_commands(sessions: dict[str, Session]) -> None:
    server, gw_a, gw_b = sessions[SERVER], sessions["gw-a"], sessions["gw-b"]
    gw_a.subscribe(topic(COMMAND, "gw-b"), topic(COMMAND, "gw-a"))
    gw_b.subscribe(topic(COMMAND, "gw-b"))
    server.publish(topic(COMMAND, "gw-b"), b"for b")
    server.publish(topic(COMMAND, "gw-a"), b"for a")
    wait_until(lambda: gw_a.messages and gw_b.messages, 10, "each gateway's own command")
    assert gw_a.messages == [(topic(COMMAND, "gw-a"), b"for a")]
    assert gw_b.messages == [(topic(COMMAND, "gw-b"), b"for b")]


def test_the_server_cannot_publish_a_gateways_status(sessions: dict[str, Session]) -> None:
    server, gw_a = sessions[SERVER], sessions["gw-a"]
    server.subscribe(GATEWAY_STATUS.subscription(DEFAULT_PREFIX))
    server.publish(topic(GATEWAY_STATUS, "gw-a"), b"forged by the server")
    gw_a.publish(topic(GATEWAY_STATUS, "gw-a"), b"own")
    wait_until(lambda: server.messages, 10, "gw-a's own status")
    assert server.messages == [(topic(GATEWAY_STATUS, "gw-a"), b"own")]
