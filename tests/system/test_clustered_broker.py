"""Gateway and server on a 3-node NATS cluster, each on a different node with the others as
failover URLs: the node the gateway is on dies (SIGKILL) under load; every message is
stored once.

Unlike a standby Mosquitto (test_broker_failover.py), the surviving nodes keep the sessions,
queued QoS 1 messages and retained states (JetStream, 3 replicas). NATS has no shared
subscriptions, so the server runs without `CHARGENET_MQTT_SHARED_GROUP`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.nats import NatsCluster
from tests.server.running import ServerProcess
from tests.system.harness import Child, Recorder, quiet_simulator, start_gateway

# The waits below add up past the suite's 120 s: a first connection (CONNECT_S), then the
# burst stored past NATS's ack_wait, on a loaded machine (the default cut one off mid-wait).
pytestmark = [pytest.mark.slow, pytest.mark.reliability, pytest.mark.timeout(330)]
GW = "gw-cluster"
UNITS = 2
CONNECT_S = 90
"""A client's first connection to a node: a fresh cluster's JetStream may time out creating
the client's session consumers (5 s), and the client then waits out its 30 s connect timeout
before it tries again (seen in CI)."""


def test_a_killed_cluster_node_is_failed_over_losing_nothing(tmp_path: Path) -> None:
    cluster = NatsCluster(tmp_path)
    n1, n2, n3 = cluster.nodes
    started: list[Child] = []  # every process started is stopped, whatever fails
    try:
        cluster.start()
        sim = quiet_simulator(tmp_path, units_per_line=UNITS)
        started.append(sim)
        gateway = start_gateway(
            tmp_path, sim, n1.url, GW, report_period_s=0.25,
            extra=f"\nresend_after_s = 2\nfailover_urls = {json.dumps([n2.url, n3.url])}",
        )  # fmt: skip
        started.append(gateway)
        failover = {"CHARGENET_MQTT_FAILOVER_URLS": json.dumps([n3.url, n1.url])}
        server = ServerProcess(tmp_path, n2.url, 2.0, env=failover)
        started.append(server)
        wait_until(lambda: server.count("SELECT count(*) FROM ports") == 4 * UNITS, CONNECT_S,
                   "both batteries' ports")  # fmt: skip

        for unit in range(1, UNITS + 1):  # a burst of changes around the node's death
            sim.inject("line-1", unit, "port_fault", port=2, error="over_current")
        n1.kill()  # the gateway's node
        killed = time.monotonic()
        for unit in range(1, UNITS + 1):
            sim.clear("line-1", unit, "port_fault", port=2)
        mark = server.count(f"SELECT max_seq FROM gateways WHERE gw_id = '{GW}'")
        stored_query = f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}' AND seq <= {mark}"
        wait_until(lambda: server.count(stored_query) >= mark, 120,
                   f"every message to seq {mark} stored")  # fmt: skip
        recovery_s = time.monotonic() - killed
        # A QoS 1 message NATS handed to a server connection that then hung (a surviving node
        # in its leader election) comes again only after `ack_wait` (30 s, deploy/nats).
        wait_until(lambda: server.count("SELECT count(*) FROM unit_events "
                                         "WHERE kind = 'port_faulted'") == UNITS, 90,
                   "the burst's faults stored, once each")  # fmt: skip
        assert server.count(f"SELECT count(*) FROM seq_gaps WHERE first_missing <= {mark}") == 0
        survivors = [f"connected to 127.0.0.1:{n.port}" for n in (n2, n3)]
        assert any(s in gateway.log_text() for s in survivors)  # failed over, to either
        record(Outcome("a broker node SIGKILLed in a 3-node NATS cluster", mark,
                       server.count(stored_query), 0, recovery_s,
                       "gateway messages (but the reserved Will's seq)"))  # fmt: skip
    finally:
        for child in reversed(started):
            child.stop()
        cluster.stop()


def test_sessions_retained_states_and_wills_live_on_across_the_cluster_s_nodes(
    tmp_path: Path,
) -> None:
    """What MQTT keeps for chargenet, kept by the cluster rather than by one node: a server
    away on n2 comes back on n3 to the fault event queued for its session meanwhile (the
    gateway's resend is put off, so only the session can bring it); a server that never
    was connects to n1 and rebuilds the live picture from retained states; the gateway's
    Last Will, published by n1 when the gateway dies, reaches the server on n3."""
    cluster = NatsCluster(tmp_path)
    n1, n2, n3 = cluster.nodes
    started: list[Child] = []
    faulted = "SELECT count(*) FROM ports WHERE port = 2 AND status = 'faulted'"
    try:
        cluster.start()
        sim = quiet_simulator(tmp_path)
        started.append(sim)
        gateway = start_gateway(tmp_path, sim, n1.url, GW, report_period_s=0.5,
                                extra="\nresend_after_s = 3600")  # fmt: skip
        started.append(gateway)
        session = {"CHARGENET_MQTT_CLIENT_ID": "server-on-the-cluster"}
        away = tmp_path / "away"
        away.mkdir()
        server = ServerProcess(away, n2.url, 2.0, env=session)
        started.append(server)
        wait_until(lambda: server.count("SELECT count(*) FROM ports") == 4, CONNECT_S,
                   "the ports")  # fmt: skip
        server.stop()  # its session stays, with its subscriptions

        recorder = Recorder(n3.port)
        try:
            sim.inject("line-1", 1, "port_fault", port=2, error="over_current")
            wait_until(lambda: bool(recorder.messages("/event")), 30, "the fault event sent")
        finally:
            recorder.close()
        back = ServerProcess(away, n3.url, 2.0, env=session)
        started.append(back)
        events = "SELECT count(*) FROM unit_events WHERE kind = 'port_faulted'"
        wait_until(lambda: back.count(events) == 1, CONNECT_S, "the queued event, on another node")

        fresh_dir = tmp_path / "fresh"
        fresh_dir.mkdir()
        fresh = ServerProcess(fresh_dir, n1.url, 2.0)
        started.append(fresh)
        wait_until(lambda: fresh.count(faulted) == 1, CONNECT_S, "the retained state, faulted")

        gateway.kill()
        offline = f"SELECT count(*) FROM gateways WHERE gw_id = '{GW}' AND state = 'offline'"
        wait_until(lambda: back.count(offline) == 1, 60, "the Will, on the server's node")
    finally:
        for child in reversed(started):
            child.stop()
        cluster.stop()
