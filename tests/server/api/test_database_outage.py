"""PostgreSQL goes away under a running server: clear 503s, then service as before."""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.postgres import PostgresCluster, create_database
from tests.server.running import ServerProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    own = PostgresCluster()  # its own: the test stops it
    own.start()
    yield own
    own.stop()


def answer(server: ServerProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """(status, JSON body, with `retry_after` added on an error) of one request."""
    try:
        return 200, server.request(method, path, body, admin=True)  # a booking: the desk
    except urllib.error.HTTPError as error:
        found = json.loads(error.read())
        found["retry_after"] = error.headers.get("Retry-After")
        return error.code, found


@pytest.mark.reliability
def test_an_outage_answers_503_and_the_server_recovers(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path, "", 60.0, database_url=create_database(cluster.url))
    try:
        server.admin("POST", "/api/v1/stations", {
            "id": "st-1", "name_ja": "避難所", "name_en": "Shelter", "latitude": 33.5,
            "longitude": 132.5,
        })  # fmt: skip
        [window] = server.get("/api/v1/stations/st-1/windows")["windows"][:1]
        booking = {"resident_id": "r-1", "station_id": "st-1", "window_start": window["start"]}

        cluster.pause()
        for method, path, body in (("GET", "/api/v1/stations", None),
                                   ("POST", "/api/v1/bookings", booking)):  # fmt: skip
            status, found = answer(server, method, path, body)
            assert (status, found["error"]["code"], found["retry_after"]) == (
                503, "database_unavailable", "5")  # fmt: skip
        assert answer(server, "GET", "/livez") == (200, {"status": "alive"})
        status, found = answer(server, "GET", "/readyz")
        assert (status, found["checks"]) == (503, {"database": "down"})

        cluster.resume()
        back = time.monotonic()
        wait_until(lambda: answer(server, "GET", "/api/v1/stations")[0] == 200, 30,
                   "stations served again")  # fmt: skip
        recovery_s = time.monotonic() - back
        status, found = answer(server, "POST", "/api/v1/bookings", booking)
        assert (status, found["error"]["code"]) == (409, "window_full")  # no ports: decided
        assert answer(server, "GET", "/readyz") == (200, {"status": "ready",
                                                         "checks": {"database": "up"}})  # fmt: skip
        assert "Traceback" not in server.log_text()
        record(Outcome("PostgreSQL paused, then resumed", 2, 2, 0, recovery_s,
                       "API calls while it was down (answered 503 with Retry-After; "
                       "the booking decided once it was back)"))  # fmt: skip
    finally:
        assert server.stop() == 0
