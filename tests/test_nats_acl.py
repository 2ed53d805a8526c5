"""The access rules of `deploy/nats` on a real 3-node NATS cluster, as tests/test_broker_acl.py
has them on Mosquitto: a wrong password is refused, a gateway cannot publish as another nor
read another's commands; each client is on a different node, so the rules hold across routes."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.topics import COMMAND, DEFAULT_PREFIX, GATEWAY_STATUS, UNIT_STATE, UnitAddress
from tests.conditions import wait_until
from tests.mosquitto import MqttSession
from tests.nats import NatsCluster
from tests.test_broker_acl import GATEWAYS, SERVER, topic


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    return {name: secrets.token_urlsafe(16) for name in (SERVER, *GATEWAYS)}


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, passwords: dict[str, str]
) -> Iterator[NatsCluster]:
    """One cluster for the module: starting three nodes is the slow part."""
    nats = NatsCluster(tmp_path_factory.mktemp("nats"), users=passwords, server_user=SERVER)
    try:
        nats.start()
        yield nats
    finally:
        nats.stop()


@pytest.fixture
def sessions(cluster: NatsCluster, passwords: dict[str, str]) -> Iterator[dict[str, MqttSession]]:
    opened = {
        name: MqttSession(node, name, password)
        for node, (name, password) in zip(cluster.nodes, passwords.items(), strict=True)
    }
    try:
        for name, session in opened.items():
            assert session.connected.wait(20), f"{name} got no CONNACK"
            assert session.refused is None, f"{name} refused: {session.refused}"
        yield opened
    finally:
        for session in opened.values():
            session.close()


def test_a_wrong_password_or_an_unknown_user_is_refused(cluster: NatsCluster) -> None:
    for user in ("gw-a", "gw-nobody"):
        session = MqttSession(cluster.nodes[1], user, "not-the-password")
        try:
            assert session.connected.wait(20), "no CONNACK"
            assert session.refused is not None, f"{user} was let in with a wrong password"
        finally:
            session.close()


def test_a_gateway_cannot_publish_as_another(sessions: dict[str, MqttSession]) -> None:
    server, gw_a = sessions[SERVER], sessions["gw-a"]
    server.subscribe(GATEWAY_STATUS.subscription(DEFAULT_PREFIX))
    gw_a.publish(topic(GATEWAY_STATUS, "gw-b"), b"forged")
    gw_a.publish(topic(GATEWAY_STATUS, "gw-a"), b"own")  # after it, in order
    wait_until(lambda: (topic(GATEWAY_STATUS, "gw-a"), b"own") in server.messages, 20,
               "gw-a's own status at the server")  # fmt: skip
    assert server.messages == [(topic(GATEWAY_STATUS, "gw-a"), b"own")]


def test_a_unit_topic_with_a_dot_passes_and_stays_the_gateways(
    sessions: dict[str, MqttSession],
) -> None:
    """`rs485-1.3` is `rs485-1//3` inside NATS: the rules must still match it."""
    server, gw_a = sessions[SERVER], sessions["gw-a"]
    server.subscribe(UNIT_STATE.subscription(DEFAULT_PREFIX))
    own = UNIT_STATE.format(DEFAULT_PREFIX, "gw-a", UnitAddress("rs485-1", 3))
    gw_a.publish(UNIT_STATE.format(DEFAULT_PREFIX, "gw-b", UnitAddress("rs485-1", 3)), b"forged")
    gw_a.publish(own, b"own")
    wait_until(lambda: (own, b"own") in server.messages, 20, "gw-a's own unit state")
    assert server.messages == [(own, b"own")]


def test_a_gateway_cannot_read_another_gateways_commands(sessions: dict[str, MqttSession]) -> None:
    server, gw_a, gw_b = sessions[SERVER], sessions["gw-a"], sessions["gw-b"]
    gw_a.subscribe(topic(COMMAND, "gw-b"), topic(COMMAND, "gw-a"))
    gw_b.subscribe(topic(COMMAND, "gw-b"))
    server.publish(topic(COMMAND, "gw-b"), b"for b")
    server.publish(topic(COMMAND, "gw-a"), b"for a")
    wait_until(lambda: gw_a.messages and gw_b.messages, 20, "each gateway's own command")
    assert gw_a.messages == [(topic(COMMAND, "gw-a"), b"for a")]
    assert gw_b.messages == [(topic(COMMAND, "gw-b"), b"for b")]


def test_a_port_taken_before_its_node_binds_it_means_new_ports(tmp_path: Path) -> None:
    """Another test may bind a port between our choosing it and the node's binding it (a CI
    run failed so); the cluster starts again on fresh ports."""
    nats = NatsCluster(tmp_path)
    taken = nats.nodes[1].client_port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        try:
            nats.start()
            assert taken not in [n.client_port for n in nats.nodes]
            assert all(node.ready() for node in nats.nodes)
        finally:
            nats.stop()
