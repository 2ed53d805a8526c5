"""What a faulty gateway (or a stranger on a broker without ACL) sends changes nothing.

Against a real `chargenet server` and Mosquitto, published in one burst with genuine
messages around them, so they share batches:

- a state with a seq 100,000 ahead, and states measured in 2999 and 1970: refused as
  implausible, the unit's genuine states go on applying (no lock-out, no incident);
- out-of-range or loosely typed values (seq 1e30, port 1e12, 4,000 ports, a port twice,
  online "yes", an event for port -7): each refused alone as malformed, no batch fails;
- the unit of a gateway the registry does not know is counted, and alerts no crew.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.server.ingest.messages import Wire, event, state, status
from tests.server.ingest.test_link import publish_burst
from tests.server.running import ServerProcess
from tests.system.test_server_crash import ingest_counter

pytestmark = pytest.mark.slow
GW = "gw-faulty"
UNIT = "rs485-1.1"
STRANGER = "gw-unknown"


def tampered(wire: Wire, **changes: object) -> Wire:
    topic, payload = wire
    return topic, json.dumps(json.loads(payload) | changes).encode()


def port_statuses(server: ServerProcess) -> set[str]:
    path = server.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT p.status FROM ports p JOIN units u ON u.id = p.unit_pk WHERE u.gw_id = ?",
            (GW,),
        )
        return {status for (status,) in rows}


def gauge(server: ServerProcess, name: str) -> float:
    return next(float(line.split()[-1]) for line in server.metrics().splitlines()
                if line.startswith(f"{name} "))  # fmt: skip


def test_forged_implausible_and_out_of_range_messages_change_nothing(
    broker: Mosquitto, tmp_path: Path
) -> None:
    server = ServerProcess(tmp_path, broker.url, 60.0)
    try:
        server.admin("POST", "/api/v1/stations", {"id": "st-1", "name_ja": "避難所",
                     "name_en": "Shelter", "latitude": 33.5, "longitude": 132.5})  # fmt: skip
        server.admin("PUT", f"/api/v1/batteries/{GW}/{UNIT}", {"station_id": "st-1"})
        wait_until(lambda: ingest_counter(server, "connects") >= 1, 20, "the ingest connected")
        publish_burst(broker.port, [status(GW, 1, units=(UNIT,)), state(GW, UNIT, 2)])
        wait_until(lambda: port_statuses(server) == {"available"}, 20, "the genuine state")

        faulted = ("faulted", "faulted")
        good = state(GW, UNIT, 3)
        port = json.loads(good[1])["ports"][0]
        burst = [
            state(GW, UNIT, 100_003, faulted),  # far ahead
            state(GW, UNIT, 4, faulted, ts=datetime(2999, 1, 1, tzinfo=UTC)),
            state(GW, UNIT, 5, faulted, ts=datetime(1970, 1, 1, tzinfo=UTC)),
            tampered(good, seq=10**30),
            tampered(good, seq=6, ports=[port | {"port": 10**12}]),
            tampered(good, seq=7, ports=[port | {"port": n} for n in range(1, 4001)]),
            tampered(good, seq=8, ports=[port, port]),
            tampered(good, seq=9, online="yes"),
            tampered(event(GW, UNIT, 10, "evt-bad-port"), port=-7),
            state(GW, UNIT, 11, ("charging", "available")),  # genuine, in the same batches
            state(STRANGER, UNIT, 1, faulted),
        ]
        publish_burst(broker.port, burst)
        wait_until(lambda: port_statuses(server) == {"charging", "available"}, 20,
                   "the genuine state after the bad ones")  # fmt: skip
        wait_until(lambda: ingest_counter(server, "received") >= 2 + len(burst), 20, "all read")
        assert ingest_counter(server, "implausible") == 3
        # The bad seq and the event are malformed at routing; the bad states with a good
        # envelope are malformed when validated whole, or superseded unread by the newer
        # genuine state of their batch (`apply._newest_states`): never applied either way.
        malformed = ingest_counter(server, "malformed")
        assert malformed >= 2 and malformed + ingest_counter(server, "superseded") >= 6
        assert ingest_counter(server, "batch_errors") == 0
        assert ingest_counter(server, "failed") == 0
        publish_burst(broker.port, [state(GW, UNIT, 12, ("available", "faulted"))])
        wait_until(lambda: port_statuses(server) == {"available", "faulted"}, 20, "not locked")
        wait_until(
            lambda: server.admin("GET", "/api/v1/incidents")["incidents"], 20, "its incident"
        )
        incidents = server.admin("GET", "/api/v1/incidents")["incidents"]
        assert [(i["kind"], i["gw_id"]) for i in incidents] == [("port_fault", GW)]
        assert gauge(server, "chargenet_units_unmapped") == 1  # the stranger's battery
    finally:
        server.stop()
