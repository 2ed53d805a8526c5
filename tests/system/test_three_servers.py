"""Three `chargenet server` processes share the ingest (`$share/...`) and PostgreSQL; one
is SIGKILLed in the middle of a burst of port faults and bookings.

Afterwards, within a bound: every gateway message is stored once (the gateway sends again
what the dead process never receipted, and the shared group hands it to the others), each
incident is paged once to each of its three crew channels (a page the dead process had
leased is taken over when its lease ends), and no resident and no port is booked twice.
"""

from __future__ import annotations

import threading
import time
import urllib.error
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

from server.db.migrate import upgrade
from server.lineworks.buttons import Button, decode
from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.sandboxes import Sandbox
from tests.server.running import ServerProcess
from tests.system.harness import quiet_simulator, start_gateway
from tests.system.platforms import CHANNELS, GW, REPORT_S, STATION, alerts, buttons, start_server
from tests.system.test_shared_ingest_outage import share

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
UNITS = ("line-1.1", "line-1.2", "line-1.3")
FAULTS = [(unit, port) for unit in (1, 2, 3) for port in (1, 2)]
RESIDENTS = 36
QUICK = {"CHARGENET_DELIVERY_BACKOFF_MAX_S": "1", "CHARGENET_DELIVERY_TIMEOUT_S": "2",
         "CHARGENET_LINE_REPLY_WITHIN_S": "20"}  # fmt: skip
"""A dead process's leased sends are taken over after 10 s (half the reply window)."""
RECOVERY_S = 90.0


def one(database: str, query: str) -> int:
    with psycopg.connect(database) as db:
        row = db.execute(query).fetchone()
        assert row is not None
        return int(row[0] or 0)


def rows(database: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database) as db:
        return list(db.execute(query).fetchall())


def book(servers: list[ServerProcess], n: int, window: str) -> int:
    """A desk's booking for walk-in `n` through server n % 3; through the next live one
    when that server is gone (its answer lost: it may have booked)."""
    body = {"resident_id": f"walk-in-{n}", "station_id": STATION["id"], "window_start": window}
    for attempt in range(len(servers)):
        server = servers[(n + attempt) % len(servers)]
        try:
            server.request("POST", "/api/v1/bookings", body, admin=True)
            return 201
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            continue
    raise AssertionError(f"no server took walk-in-{n}")


def paged(sandbox: Sandbox) -> dict[str, list[int]]:
    """Per crew channel, the incidents its alerts name (an alert may name several opened
    together), each as often as it was paged there."""
    found: dict[str, list[int]] = {}
    for channel in CHANNELS.values():
        presses = [decode(data) for m in alerts(sandbox, channel) for data in buttons(m)]
        found[channel] = sorted(i for p in presses if p and p.button is Button.ACK
                                for i in p.incident_ids)  # fmt: skip
    return found


def test_one_of_three_servers_killed_mid_burst_loses_and_doubles_nothing(
    tmp_path: Path, broker: Mosquitto, sandbox: Sandbox, postgres_url: str
) -> None:
    upgrade(postgres_url)
    plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    sim = quiet_simulator(tmp_path, units_per_line=len(UNITS))
    gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=0.25,
                            extra="\nresend_after_s = 2")  # fmt: skip
    servers: list[ServerProcess] = []
    try:
        for name in ("share-a", "share-b", "share-c"):
            env = {**QUICK, **share(name)}
            if not servers:  # the first registers the shelter and is the sandbox's server
                servers.append(start_server(tmp_path, broker.url, sandbox, UNITS, env,
                                            postgres_url))  # fmt: skip
            else:
                servers.append(ServerProcess(tmp_path, broker.url, REPORT_S, postgres_url,
                                             env={**sandbox.server_env, **env}))  # fmt: skip
        first, doomed, _ = servers
        wait_until(lambda: one(plain, "SELECT count(*) FROM ports WHERE status = 'available'")
                   == 4 * len(UNITS), 30, "every port live")  # fmt: skip
        windows = first.get(f"/api/v1/stations/{STATION['id']}/windows")["windows"]
        window = next(w for w in windows if w["places"] == 4 * len(UNITS))["start"]

        answered = threading.Semaphore(0)

        def counted(n: int) -> int:
            code = book(servers, n, window)
            answered.release()
            return code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = pool.map(counted, range(RESIDENTS))
            for unit, port in FAULTS[:3]:
                sim.inject("line-1", unit, "port_fault", port=port, error="over_current")
            for _ in range(RESIDENTS // 3):
                assert answered.acquire(timeout=60), "bookings answered"
            doomed.kill()
            killed_at = time.monotonic()
            for unit, port in FAULTS[3:]:
                sim.inject("line-1", unit, "port_fault", port=port, error="over_current")
            results = list(codes)
        assert set(results) <= {201, 409}, results

        mark = one(plain, f"SELECT max_seq FROM gateways WHERE gw_id = '{GW}'")

        def settled() -> bool:
            """Every message the gateway sent up to `mark` stored, and every page sent."""
            stored = one(plain, f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}' "
                                f"AND seq <= {mark}")  # fmt: skip
            gaps = one(plain, f"SELECT count(*) FROM seq_gaps WHERE first_missing <= {mark}")
            unsent = one(plain, "SELECT count(*) FROM outbox WHERE state != 'sent'")
            opened = one(plain, "SELECT count(*) FROM incidents WHERE kind = 'port_fault'")
            seen = paged(sandbox)
            events = one(plain, "SELECT count(*) FROM unit_events WHERE kind = 'port_faulted'")
            progress[:] = [f"{stored} of the seqs to {mark} stored, {gaps} gaps, {opened} "
                           f"incidents, {events} fault events, {unsent} messages unsent, "
                           f"paged {seen}"]  # fmt: skip
            # every seq but the Last Will's reserved one (a birth's seq plus one)
            everyone_told = (
                opened == events == len(FAULTS)
                and unsent == 0
                and all(len(ids) >= len(FAULTS) for ids in seen.values())
            )
            return stored >= mark and gaps == 0 and everyone_told

        progress: list[str] = []
        try:
            wait_until(settled, RECOVERY_S, "every message receipted and every page sent")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {progress}") from None
        recovery_s = time.monotonic() - killed_at

        # every message up to the mark stored once ((gw_id, seq) is the seen table's key),
        # the dead member's share sent again by the gateway and taken by the others
        generated = mark + 1  # seqs 0..mark
        stored = one(plain, f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}' "
                            f"AND seq <= {mark}")  # fmt: skip
        assert generated - stored == 1, (generated, stored)  # the Last Will's reserved seq
        assert "sending them again" in gateway.log_text()
        events = one(plain, "SELECT count(*) FROM unit_events WHERE kind = 'port_faulted'")
        assert events == len(FAULTS)

        # each incident paged once to each channel, none twice, none lost
        incidents = sorted(i["id"] for i in first.admin("GET", "/api/v1/incidents")["incidents"]
                           if i["kind"] == "port_fault")  # fmt: skip
        assert len(incidents) == len(FAULTS)
        alerts_seen = paged(sandbox)
        assert alerts_seen == {c: incidents for c in CHANNELS.values()}

        # No resident and no port twice among the active bookings of any window. A booking
        # moved off a faulted port may go to another window and free a place here for a
        # later resident, so the burst's window alone bounds nothing.
        active = one(plain, "SELECT count(*) FROM bookings WHERE status = 'active'")
        assert active > 0 and results.count(201) > 0
        assert one(plain, "SELECT count(*) - count(DISTINCT resident_id) FROM bookings "
                          "WHERE status = 'active'") == 0  # fmt: skip
        assert one(plain, "SELECT count(*) - count(DISTINCT (unit_pk, port, window_start)) "
                          "FROM bookings WHERE status = 'active'") == 0  # fmt: skip
        busiest = one(plain, "SELECT max(n) FROM (SELECT count(*) AS n FROM bookings "
                             "WHERE status = 'active' GROUP BY window_start) AS w")  # fmt: skip
        assert busiest <= 4 * len(UNITS)
        fault = "one of three servers SIGKILLed mid-burst"
        record(Outcome(fault, generated - 1, stored, 0, recovery_s, "gateway messages"))
        record(Outcome(fault, len(FAULTS) * len(CHANNELS),
                       sum(len(set(ids)) for ids in alerts_seen.values()),
                       sum(len(ids) - len(set(ids)) for ids in alerts_seen.values()),
                       recovery_s, "crew alerts (incident x channel)"))  # fmt: skip
        print(
            f"\nkilled share-b mid-burst: {generated} messages generated, {stored} stored, "
            f"0 doubled; {len(incidents)} incidents paged x{len(CHANNELS)} channels once; "
            f"{results.count(201)} bookings made, {active} active; settled "
            f"{recovery_s:.1f} s after the kill"
        )
    finally:
        for child in [*servers, gateway, sim]:
            if child.alive:
                child.stop()
