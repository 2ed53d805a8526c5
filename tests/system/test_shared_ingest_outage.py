"""Two servers sharing the ingest ($share/...) lose nothing when all of them are away.

Mosquitto queues nothing of a shared subscription for members that are away: a gateway
that drains its outbox while no server is connected hands the broker messages nobody gets.
The gateway keeps every message until a server's receipt covers it and sends again what
none covered, so the backlog arrives after all; the seq-gap record then shows no gap,
although the two processes each stored part of the stream.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from pathlib import Path

import psycopg
import pytest

from server.db.migrate import upgrade
from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import quiet_simulator, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
GW = "gw-share"
FAULTED_PORTS = (1, 2, 3)


def share(name: str) -> dict[str, str]:
    return {"CHARGENET_MQTT_SHARED_GROUP": "ingest", "CHARGENET_MQTT_CLIENT_ID": name}


def one(database: str, query: str) -> int:
    with psycopg.connect(database) as db:
        row = db.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def outbox_rows(path: Path, where: str = "1") -> int:
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return int(db.execute(f"SELECT count(*) FROM outbox WHERE {where}").fetchone()[0])


def test_a_backlog_drained_while_every_server_is_away_is_stored_without_gaps(
    broker: Mosquitto, postgres_url: str, tmp_path: Path
) -> None:
    upgrade(postgres_url)
    plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    outbox = tmp_path / "outbox.db"
    sim = quiet_simulator(tmp_path, units_per_line=2)
    gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=1.0,
                            extra="\nresend_after_s = 2")  # fmt: skip
    servers: list[ServerProcess] = []
    try:  # every process started is stopped, whatever fails, a server's start included
        servers = [ServerProcess(tmp_path, broker.url, 1.0, postgres_url, env=share(n))
                   for n in ("share-a", "share-b")]  # fmt: skip
        wait_until(lambda: one(plain, "SELECT count(*) FROM ports") == 8, 30, "both batteries")
        broker.stop()
        for server in servers:
            server.kill()
        for port in FAULTED_PORTS:  # raised while nobody can hear them
            sim.inject("line-1", 1, "port_fault", port=port, error="over_current")
        wait_until(lambda: outbox_rows(outbox, "topic LIKE '%/event'") >= len(FAULTED_PORTS),
                   20, "the faults' events stored at the gateway")  # fmt: skip
        broker.start()
        wait_until(lambda: outbox_rows(outbox, "delivered IS NULL") == 0, 30,
                   "the gateway drained its outbox to a broker no server is on")  # fmt: skip
        back = time.monotonic()
        servers = [ServerProcess(tmp_path, broker.url, 1.0, postgres_url, env=share(n))
                   for n in ("share-a", "share-b")]  # fmt: skip
        wait_until(lambda: outbox_rows(outbox) == 0, 60,
                   "every message covered by a server's receipt")  # fmt: skip
        recovery_s = time.monotonic() - back

        events = one(plain, "SELECT count(*) FROM unit_events WHERE kind = 'port_faulted' "
                            f"AND port IN {FAULTED_PORTS}")  # fmt: skip
        assert events == len(FAULTED_PORTS)
        assert one(plain, "SELECT count(*) FROM seq_gaps") == 0
        first = one(plain, f"SELECT min(seq) FROM seen_messages WHERE gw_id = '{GW}'")
        top = one(plain, f"SELECT max_seq FROM gateways WHERE gw_id = '{GW}'")
        stored = one(plain, f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}'")
        generated = top - first + 1
        # Only the Last Will of the outage may be missing: the stopping broker published it
        # to no one, and a Will is never in the outbox.
        assert generated - stored <= 1
        assert "sending them again" in gateway.log_text()
        record(Outcome("broker restart with every server away; the backlog drained to nobody",
                       generated - 1, stored, 0, recovery_s,
                       "gateway messages (but the Will published to nobody)"))  # fmt: skip
        print(
            f"\ngenerated {generated}, stored {stored}, missing {generated - stored} (the "
            "Will published to nobody), duplicated 0 (stored once per seq)"
        )
    finally:
        for child in [*servers, gateway, sim]:
            child.stop()
