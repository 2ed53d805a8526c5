"""A real server's liveness and readiness as its broker comes and goes: not ready while the
MQTT ingest is cut off, alive all along, ready again once it reconnects."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess

pytestmark = pytest.mark.slow


def probe(server: ServerProcess, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_readiness_follows_the_broker_and_liveness_stays(tmp_path: Path, broker: Mosquitto) -> None:
    server = ServerProcess(tmp_path, broker.url, 5.0)
    try:
        ready = (200, {"status": "ready", "checks": {"database": "up", "mqtt": "up"}})
        wait_until(lambda: probe(server, "/readyz") == ready, 30, "the server ready")
        broker.stop()
        cut_off = (503, {"status": "not_ready", "checks": {"database": "up", "mqtt": "down"}})
        wait_until(lambda: probe(server, "/readyz") == cut_off, 30, "not ready without MQTT")
        assert probe(server, "/livez") == (200, {"status": "alive"})
        broker.start()
        wait_until(lambda: probe(server, "/readyz") == ready, 60, "ready again")
    finally:
        assert server.stop() == 0, server.log_text()
