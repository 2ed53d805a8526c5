"""`chargenet intake` in front of `chargenet server`, real processes, over real HTTP.

LINE's webhook points at the intake: a resident books through it as through the server;
forged requests are refused at both doors; and events the intake acknowledged while the
server was down, through a SIGKILL of the intake itself, reach the server once it is back
and are answered once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from server.intake import wire
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.sandboxes import Sandbox
from tests.server.line.conftest import signature
from tests.server.running import IntakeProcess, ServerProcess
from tests.system.harness import Child
from tests.system.platforms import (
    REPORT_S,
    STATION,
    Gateway,
    Resident,
    outbox,
    start_server,
    text_of,
)
from tests.system.test_delivery_outages import UNIT, ports
from tests.system.test_server_crash import ingest_counter

pytestmark = pytest.mark.slow
C = TypeVar("C", bound=Child)


def front(sandbox: Sandbox, intake: IntakeProcess) -> None:
    sandbox.set_urls(line_webhook_url=f"{intake.url}/line/webhook")


def test_a_resident_books_through_the_intake_and_forgeries_are_refused_at_both_doors(
    tmp_path: Path, broker: Mosquitto, sandbox: Sandbox
) -> None:
    server = start_server(tmp_path, broker.url, sandbox, (UNIT,))
    intake = IntakeProcess(tmp_path, server.url, sandbox.line_channel_secret)
    try:
        front(sandbox, intake)
        wait_until(lambda: ingest_counter(server, "connects") >= 1, 20, "the ingest connected")
        Gateway(broker, UNIT, 4).publish()
        wait_until(lambda: ports(server).count("available") == 4, 20, "the battery's ports")
        ticket = Resident(sandbox, "U" + "1a7a6e".ljust(32, "0")).book()
        assert STATION["name_ja"] in text_of(ticket), ticket
        assert intake.health() == {"pending": 0, "handedOn": 3, "failures": 0,
                                   "failingForS": 0.0}  # fmt: skip

        body = json.dumps({"destination": "Ubot", "events": []}).encode()
        forged = {"Content-Type": "application/json", "X-Line-Signature": signature(b"other")}
        assert httpx.post(f"{intake.url}/line/webhook", content=body, headers=forged,
                          timeout=10).status_code == 401  # fmt: skip
        relayed = wire.encode([])
        other = {wire.SIGNATURE_HEADER: wire.signature("other", relayed)}
        refused = httpx.post(f"{server.url}{wire.RELAYED_PATH}", content=relayed, headers=other,
                             timeout=10)  # fmt: skip
        assert refused.status_code == 401
        signed = {**forged, "X-Line-Signature": signature(body, sandbox.line_channel_secret)}
        assert httpx.post(f"{intake.url}/line/webhook", content=body, headers=signed,
                          timeout=10).status_code == 200  # the console's "Verify"  # fmt: skip
    finally:
        assert intake.stop() == 0, intake.log_text()
        assert server.stop() == 0, server.log_text()


def test_events_acknowledged_while_the_server_is_down_are_answered_once_it_is_back(
    tmp_path: Path, broker: Mosquitto, sandbox: Sandbox
) -> None:
    started: list[Child] = []

    def kept(child: C) -> C:
        started.append(child)
        return child

    try:
        server = kept(start_server(tmp_path, broker.url, sandbox))
        intake = kept(IntakeProcess(tmp_path, server.url, sandbox.line_channel_secret))
        front(sandbox, intake)
        resident = Resident(sandbox, "U" + "0a7a6e".ljust(32, "0"))
        resident.say({"type": "text", "text": "予約確認"}, "the answer while all is up")
        answered = len(resident.deliveries())
        server.kill()

        resident.send({"type": "text", "text": "予約確認"})  # the intake acknowledges it: 200
        resident.send({"redeliver": True})  # and LINE sends it again
        wait_until(lambda: intake.health()["failures"] >= 1, 30, "the hand-on failing")
        assert intake.health()["pending"] == 1  # the redelivery is the same event
        intake.kill()  # acknowledged, not handed on, and the intake dies too

        intake = kept(IntakeProcess(tmp_path, server.url, sandbox.line_channel_secret,
                                    journal=intake.journal))  # fmt: skip
        assert intake.health()["pending"] == 1, intake.log_text()
        server = kept(ServerProcess(tmp_path, broker.url, REPORT_S, server.database_url,
                                    env=sandbox.server_env, port=server.port))  # fmt: skip
        wait_until(lambda: intake.health()["pending"] == 0, 60, "the backlog handed on")
        wait_until(lambda: len(resident.deliveries()) > answered, 30, "the late answer")
        wait_until(lambda: all(s == "sent" for _, s, _ in outbox(server, "line")), 30,
                   "the server's LINE outbox sent")  # fmt: skip
        assert len(resident.deliveries()) == answered + 1, resident.deliveries()
        assert intake.stop() == 0, intake.log_text()
        assert server.stop() == 0, server.log_text()
    finally:
        for child in started:
            if child.alive:
                child.stop()
