"""The deployed broker's access rules, on a real Mosquitto with `deploy/mosquitto/acl` and a
password per gateway: a wrong password is refused, a gateway cannot publish as another nor
read another's commands, and each still reaches its own topics and the server."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.topics import COMMAND, DEFAULT_PREFIX, GATEWAY_STATUS, TopicPattern
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto, MqttSession

ACL = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "acl"
SERVER = "chargenet-server"  # the ACL's server user, as docker-compose.yml names it
GATEWAYS = ("gw-a", "gw-b")


def topic(pattern: TopicPattern, gw: str) -> str:
    return pattern.format(DEFAULT_PREFIX, gw)


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
def sessions(secured: Mosquitto, passwords: dict[str, str]) -> Iterator[dict[str, MqttSession]]:
    opened = {name: MqttSession(secured, name, password) for name, password in passwords.items()}
    for name, session in opened.items():
        assert session.connected.wait(10), f"{name} got no CONNACK"
        assert session.refused is None, f"{name} refused: {session.refused}"
    yield opened
    for session in opened.values():
        session.close()


def test_a_wrong_password_or_an_unknown_user_is_refused(secured: Mosquitto) -> None:
    for user in ("gw-a", "gw-nobody"):
        session = MqttSession(secured, user, "not-the-password")
        try:
            assert session.connected.wait(10), "no CONNACK"
            assert session.refused is not None and "authori" in session.refused.lower()
        finally:
            session.close()


def test_a_gateway_cannot_publish_as_another(sessions: dict[str, MqttSession]) -> None:
    server, gw_a = sessions[SERVER], sessions["gw-a"]
    server.subscribe(GATEWAY_STATUS.subscription(DEFAULT_PREFIX))
    gw_a.publish(topic(GATEWAY_STATUS, "gw-b"), b"forged")
    gw_a.publish(topic(GATEWAY_STATUS, "gw-a"), b"own")  # after it, in order
    wait_until(lambda: (topic(GATEWAY_STATUS, "gw-a"), b"own") in server.messages, 10,
               "gw-a's own status at the server")  # fmt: skip
    assert server.messages == [(topic(GATEWAY_STATUS, "gw-a"), b"own")]


def test_a_gateway_cannot_read_another_gateways_commands(sessions: dict[str, MqttSession]) -> None:
    server, gw_a, gw_b = sessions[SERVER], sessions["gw-a"], sessions["gw-b"]
    gw_a.subscribe(topic(COMMAND, "gw-b"), topic(COMMAND, "gw-a"))
    gw_b.subscribe(topic(COMMAND, "gw-b"))
    server.publish(topic(COMMAND, "gw-b"), b"for b")
    server.publish(topic(COMMAND, "gw-a"), b"for a")
    wait_until(lambda: gw_a.messages and gw_b.messages, 10, "each gateway's own command")
    assert gw_a.messages == [(topic(COMMAND, "gw-a"), b"for a")]
    assert gw_b.messages == [(topic(COMMAND, "gw-b"), b"for b")]


def test_the_server_cannot_publish_a_gateways_status(sessions: dict[str, MqttSession]) -> None:
    server, gw_a = sessions[SERVER], sessions["gw-a"]
    server.subscribe(GATEWAY_STATUS.subscription(DEFAULT_PREFIX))
    server.publish(topic(GATEWAY_STATUS, "gw-a"), b"forged by the server")
    gw_a.publish(topic(GATEWAY_STATUS, "gw-a"), b"own")
    wait_until(lambda: server.messages, 10, "gw-a's own status")
    assert server.messages == [(topic(GATEWAY_STATUS, "gw-a"), b"own")]
