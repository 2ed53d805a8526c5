"""A municipality's Mosquitto bridged to the prefecture's with `deploy/mosquitto/bridge.conf`
(two real brokers): gateway states go up, retained, and commands come down; with the uplink
down the municipality's broker queues, and once it is back everything arrives, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.topics import COMMAND, DEFAULT_PREFIX, GATEWAY_STATUS, UNIT_EVENT, UnitAddress
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto, MqttSession

BRIDGE = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "bridge.conf"
SHIPPED_ADDRESS = "address prefecture-broker.example.jp:1883"
GW = "gw-ozu-1"
STATUS = GATEWAY_STATUS.format(DEFAULT_PREFIX, GW)
EVENT = UNIT_EVENT.format(DEFAULT_PREFIX, GW, UnitAddress("rs485-1", 1))
COMMANDS = COMMAND.format(DEFAULT_PREFIX, GW)


def bridged_to(prefecture: Mosquitto) -> str:
    """The shipped bridge section, pointed at `prefecture` and retrying every second."""
    text = BRIDGE.read_text()
    assert SHIPPED_ADDRESS in text and "restart_timeout 2 30" in text
    return "\n" + text.replace(SHIPPED_ADDRESS, f"address 127.0.0.1:{prefecture.port}").replace(
        "restart_timeout 2 30", "restart_timeout 1 1"
    )


@pytest.fixture
def prefecture(tmp_path: Path) -> Iterator[Mosquitto]:
    (tmp_path / "prefecture").mkdir()
    broker = Mosquitto(tmp_path / "prefecture")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def municipality(tmp_path: Path, prefecture: Mosquitto) -> Iterator[Mosquitto]:
    (tmp_path / "municipality").mkdir()
    broker = Mosquitto(tmp_path / "municipality", extra=bridged_to(prefecture))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def server(prefecture: Mosquitto) -> Iterator[MqttSession]:
    """The server's side at the prefecture: a persistent session, as the server keeps."""
    session = MqttSession(prefecture, "chargenet-server", persistent=True)
    assert session.connected.wait(10)
    session.subscribe(GATEWAY_STATUS.subscription(DEFAULT_PREFIX),
                      UNIT_EVENT.subscription(DEFAULT_PREFIX))  # fmt: skip
    yield session
    session.close()


@pytest.fixture
def gateway(municipality: Mosquitto) -> Iterator[MqttSession]:
    session = MqttSession(municipality, GW)
    assert session.connected.wait(10)
    session.subscribe(COMMANDS)
    yield session
    session.close()


def test_states_go_up_retained_and_commands_come_down(
    prefecture: Mosquitto, server: MqttSession, gateway: MqttSession
) -> None:
    gateway.publish(STATUS, b'{"state": "online"}', retain=True)
    wait_until(lambda: server.messages, 20, "the status at the prefecture")
    assert server.messages == [(STATUS, b'{"state": "online"}')]

    late = MqttSession(prefecture, "dashboard")  # a subscriber that came after it
    try:
        assert late.connected.wait(10)
        late.subscribe(STATUS)
        wait_until(lambda: late.messages, 10, "the retained status")
        assert late.messages == [(STATUS, b'{"state": "online"}')]
    finally:
        late.close()

    server.publish(COMMANDS, b'{"command": "set_display"}')
    wait_until(lambda: gateway.messages, 20, "the command at the gateway")
    assert gateway.messages == [(COMMANDS, b'{"command": "set_display"}')]


def test_the_municipality_queues_while_the_uplink_is_down(
    prefecture: Mosquitto, server: MqttSession, gateway: MqttSession
) -> None:
    gateway.publish(STATUS, b"up")
    wait_until(lambda: server.messages, 20, "the bridge carrying messages")
    prefecture.stop()  # the uplink is gone; the server's session is kept on disk
    sent = [f"event {n}".encode() for n in range(5)]
    for payload in sent:
        gateway.publish(EVENT, payload)  # the municipality's broker takes them
    prefecture.start()
    wait_until(lambda: len(server.messages) >= 1 + len(sent), 30,
               "the queued events at the prefecture")  # fmt: skip
    assert server.messages == [(STATUS, b"up")] + [(EVENT, p) for p in sent]
