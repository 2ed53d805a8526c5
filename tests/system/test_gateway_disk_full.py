"""The gateway's data directory fills up while the broker is down, so the outbox must write
and cannot: the gateway keeps running, says so, holds what matters, and delivers it all
once there is room and a broker again.

The outbox sits on a tmpfs of its own, filled to the last byte. While the disk refuses
writes the outbox holds entries in memory (`gateway.outbox_hold`): every event, and the
newest state per unit; the intermediate states are lost by design (states are retained
snapshots: the newest one is the present). What the test counts as generated is what the
gateway gave a seq to, which happens when an entry reaches the disk, so "lost" here is
about stored seqs and the faults raised while full (asserted one by one); the states
coalesced in memory never get a seq and are not counted.
"""

from __future__ import annotations

import errno
import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from chargenet.demo import free_port
from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.server.running import ServerProcess
from tests.system.harness import Child, quiet_simulator, start_gateway

pytestmark = [pytest.mark.slow, pytest.mark.reliability]
GW = "gw-full"
PORTS = 4


def healthz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            body: dict[str, Any] = json.loads(reply.read())
    except urllib.error.HTTPError as degraded:  # 503 carries the same body
        body = json.loads(degraded.read())
    return body


def outbox_of(port: int, figure: str) -> Any:
    return healthz(port)["outbox"][figure]


def fill(directory: Path) -> Path:
    """Write a file in `directory` until the file system has no byte left."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        block = b"\0" * 65536
        try:
            while True:
                out.write(block)
        except OSError as full:
            assert full.errno == errno.ENOSPC, full
        try:
            while True:
                out.write(b"\0")
        except OSError as full:
            assert full.errno == errno.ENOSPC, full
    return filler


def test_a_full_disk_under_the_outbox_crashes_nothing_and_loses_no_event(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(data)],
                             capture_output=True, text=True)  # fmt: skip
    assert mounted.returncode == 0, f"cannot mount a tmpfs (run as root): {mounted.stderr}"
    (tmp_path / "broker").mkdir()
    broker = Mosquitto(tmp_path / "broker")
    started: list[Child] = []
    try:
        broker.start()
        sim = quiet_simulator(tmp_path)
        started.append(sim)
        server = ServerProcess(tmp_path, broker.url, 2.0)
        started.append(server)
        health = free_port()
        gateway = start_gateway(tmp_path, sim, broker.url, GW, report_period_s=1.0,
                                top=f'health_listen = "127.0.0.1:{health}"',
                                store=data / "outbox.db")  # fmt: skip
        started.append(gateway)
        wait_until(lambda: server.count("SELECT count(*) FROM ports") == PORTS, 30, "the ports")
        broker.stop()
        filler = fill(data)
        for port in range(1, PORTS + 1):  # events and state changes the disk cannot take
            sim.inject("line-1", 1, "port_fault", port=port, error="over_current")
            sim.plug("line-1", 1, port)
        refused = wait_until(lambda: outbox_of(health, "write_error") is not None, 30,
                             "the gateway saying its outbox cannot write")  # fmt: skip
        assert refused
        body = healthz(health)
        assert body["status"] == "degraded"
        assert any("cannot write" in p for p in body["problems"]), body
        wait_until(lambda: outbox_of(health, "held") >= PORTS + 1, 30,
                   "the faults and the newest state held")  # fmt: skip
        failures = outbox_of(health, "write_failures")
        wait_until(lambda: outbox_of(health, "write_failures") >= failures + 3, 30,
                   "more appends refused, and lived through")  # fmt: skip
        assert gateway.alive, gateway.log_text()
        assert "cannot write" in gateway.log_text()

        filler.unlink()
        broker.start()
        back = time.monotonic()
        faulted = "SELECT count(*) FROM unit_events WHERE kind = 'port_faulted'"
        wait_until(lambda: server.count(faulted) == PORTS, 60, "every fault raised while full")
        wait_until(lambda: server.count("SELECT count(*) FROM ports WHERE occupied = 1 "
                                         "AND status = 'faulted'") == PORTS, 30,
                   "the newest state: every port plugged and faulted")  # fmt: skip
        recovery_s = time.monotonic() - back
        wait_until(lambda: healthz(health)["status"] == "ok", 30, "the gateway healthy again")
        assert "takes writes again" in gateway.log_text()
        top = server.count(f"SELECT max(seq) FROM seen_messages WHERE gw_id = '{GW}'")
        stored = server.count(f"SELECT count(*) FROM seen_messages WHERE gw_id = '{GW}'")
        distinct = server.count(f"SELECT count(DISTINCT seq) FROM seen_messages "
                                 f"WHERE gw_id = '{GW}'")  # fmt: skip
        gaps = server.count("SELECT count(*) FROM seq_gaps")
        assert gaps == 0
        assert stored == distinct
        wills = top + 1 - distinct  # the seqs the server took for reserved, unsent Wills
        assert wills <= gateway.log_text().count("connected to")  # one a connection at most
        record(Outcome("gateway's disk full with the broker down, then room and the broker",
                       top + 1 - wills, distinct, stored - distinct, recovery_s,
                       "gateway messages (but unsent Wills' seqs)"))  # fmt: skip
    finally:
        for child in reversed(started):
            child.stop()
        broker.stop()
        subprocess.run(["umount", str(data)], check=False)
