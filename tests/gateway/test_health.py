"""The gateway's health rules and exposition, from plain views."""

from __future__ import annotations

import dataclasses
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from chargenet.demo import free_port
from gateway.health import BusView, GatewayView, families, problems, report
from gateway.poller import UnitStats
from gateway.publisher import Counters
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.system.harness import quiet_simulator, start_gateway

HEALTHY = GatewayView(
    gw_id="gw-1", version="1.0", mqtt_connected=True, mqtt=Counters(published=7, acked=7),
    outbox_messages=0, outbox_unconfirmed=2, outbox_bytes=40_000, outbox_budget_bytes=10**8,
    over_budget_appends=0, report_period_s=60.0,
    buses=[BusView("rs485-1", {1: UnitStats(polls_ok=9, polls_failed=1), 2: UnitStats()},
                   busy_s=1.5, last_ok_age_s=0.4)],
)  # fmt: skip


def test_a_healthy_gateway_is_ok() -> None:
    status, body = report(HEALTHY)
    assert (status, body["status"], body["problems"]) == (200, "ok", [])
    assert body["buses"] == {"rs485-1": {"units": 2, "last_ok_age_s": 0.4}}


def test_each_problem_is_named() -> None:
    silent = BusView("rs485-2", {}, busy_s=30.0, last_ok_age_s=181.0)
    never = BusView("lan", {}, busy_s=0.0, last_ok_age_s=None)
    sick = dataclasses.replace(HEALTHY, mqtt_connected=False, outbox_bytes=10**8 + 1,
                               buses=[*HEALTHY.buses, silent, never])  # fmt: skip
    assert problems(sick) == [
        "mqtt: not connected to the broker",
        "bus rs485-2: no unit answered for 180 s",
        "bus lan: no unit answered for 180 s",
        "outbox: 100000001 bytes, past its 100000000",
    ]
    assert report(sick)[0] == 503


def test_the_exposition_parses_with_units_and_buses_as_labels() -> None:
    class One(Collector):
        def collect(self) -> Iterator[Metric]:
            return families(HEALTHY)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(One())
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    assert found[("chargenet_gateway_polls_total",
                  (("bus", "rs485-1"), ("outcome", "failed"), ("unit", "1")))] == 1  # fmt: skip
    assert found[("chargenet_gateway_bus_busy_seconds_total", (("bus", "rs485-1"),))] == 1.5
    assert found[("chargenet_gateway_outbox", (("what", "unconfirmed"),))] == 2
    assert found[("chargenet_gateway_mqtt_total", (("counter", "acked"),))] == 7
    assert found[("chargenet_gateway_mqtt_connected", ())] == 1


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""  # not listening yet


def health(port: int) -> tuple[int, dict[str, Any]]:
    status, body = fetch(f"http://127.0.0.1:{port}/healthz")
    return status, (json.loads(body) if status else {})


def sample(port: int, name: str, **labels: str) -> float | None:
    _, body = fetch(f"http://127.0.0.1:{port}/metrics")
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


@pytest.mark.slow
def test_a_running_gateway_reports_its_polls_and_its_broker(
    tmp_path: Path, broker: Mosquitto
) -> None:
    sim = quiet_simulator(tmp_path)
    port = free_port()
    gateway = start_gateway(tmp_path, sim, broker.url, top=f'health_listen = "127.0.0.1:{port}"')
    try:
        wait_until(lambda: health(port)[0] == 200, 30, "the gateway healthy")
        bus = next(iter(sim.announced["serial"]))
        unit = str(sim.announced["serial"][bus]["units"][0])
        wait_until(lambda: (sample(port, "chargenet_gateway_polls_total", bus=bus, unit=unit,
                                   outcome="ok") or 0) >= 3, 30, "three polls counted")  # fmt: skip
        busy = sample(port, "chargenet_gateway_bus_busy_seconds_total", bus=bus)
        assert busy is not None and busy > 0
        assert sample(port, "chargenet_gateway_mqtt_connected") == 1
        assert (sample(port, "chargenet_gateway_outbox", what="budget_bytes") or 0) > 0
        broker.stop()
        wait_until(lambda: health(port)[0] == 503, 30, "degraded without the broker")
        body = health(port)[1]
        assert body["status"] == "degraded"
        assert body["problems"] == ["mqtt: not connected to the broker"]
        assert sample(port, "chargenet_gateway_mqtt_connected") == 0
        broker.start()
        wait_until(lambda: health(port)[0] == 200, 60, "healthy again")
    finally:
        assert gateway.stop() == 0, gateway.log_text()
        sim.stop()


@pytest.mark.slow
def test_under_systemd_it_says_ready_pings_the_watchdog_and_says_stopping(
    tmp_path: Path, broker: Mosquitto
) -> None:
    """systemd's notify socket, stood in for by a datagram socket of our own."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(path))
        systemd.settimeout(30)
        sim = quiet_simulator(tmp_path)
        env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "500000"}
        gateway = start_gateway(tmp_path, sim, broker.url, env=env)
        try:
            heard = [systemd.recv(64).decode() for _ in range(4)]  # a timeout fails the test
            assert heard == ["READY=1"] + ["WATCHDOG=1"] * 3, heard
            assert gateway.stop() == 0, gateway.log_text()
            tail = []
            while "STOPPING=1" not in tail:
                tail.append(systemd.recv(64).decode())
        finally:
            gateway.stop()
            sim.stop()
