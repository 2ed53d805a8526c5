"""`/metrics` as Prometheus reads it, from a real server process, also with PostgreSQL down."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.postgres import PostgresCluster, create_database
from tests.server.ingest.messages import event, state, status
from tests.server.ingest.test_link import publish_burst
from tests.server.running import ServerProcess

pytestmark = pytest.mark.slow
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    own = PostgresCluster()  # its own: the test stops it
    own.start()
    yield own
    own.stop()


def samples(server: ServerProcess) -> dict[str, list[Sample]]:
    """Every sample of the exposition by its name, each name checked as Prometheus would."""
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(server.metrics()):
        assert family.name.startswith("chargenet_"), family.name
        for sample in family.samples:
            assert METRIC_NAME.match(sample.name), sample.name
            assert all(LABEL_NAME.match(label) for label in sample.labels), sample.labels
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float | None:
    return next((s.value for s in found.get(name, []) if s.labels == labels), None)


def test_the_exposition_parses_with_kinds_as_labels_and_outlives_the_database(
    broker: Mosquitto, cluster: PostgresCluster, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path, broker.url, 60.0, create_database(cluster.url))
    try:
        wires = [status("gw-m", 1, units=("rs485-1.1",))]
        wires += [state("gw-m", "rs485-1.1", seq) for seq in range(2, 53)]
        wires.append(event("gw-m", "rs485-1.1", 53, "event-0001"))
        publish_burst(broker.port, wires)
        wait_until(lambda: value(samples(server), "chargenet_ingest_total", counter="applied")
                   == 53, 30, "all 53 messages applied")  # fmt: skip
        found = samples(server)
        assert value(found, "chargenet_ingest_routed_total", kind="UnitState") == 51
        assert value(found, "chargenet_ingest_routed_total", kind="UnitEvent") == 1
        assert value(found, "chargenet_ingest_routed_total", kind="GatewayStatus") == 1
        assert value(found, "chargenet_database_up") == 1
        assert value(found, "chargenet_ingest_backlog") == 0
        wait_until(lambda: value(samples(server), "chargenet_changes", what="pending") == 0,
                   30, "every change fanned out")  # fmt: skip
        assert not [n for n in found if "(" in n or "'" in n]

        cluster.pause()
        down = samples(server)  # answered (not 503), and parses
        assert value(down, "chargenet_database_up") == 0
        assert value(down, "chargenet_ingest_total", counter="applied") == 53
        assert value(down, "chargenet_sse", what="subscribers") == 0
        assert "chargenet_bookings" not in {n.rsplit("{")[0] for n in down}

        cluster.resume()
        wait_until(lambda: value(samples(server), "chargenet_database_up") == 1, 30,
                   "the database up again in /metrics")  # fmt: skip
    finally:
        assert server.stop() == 0
