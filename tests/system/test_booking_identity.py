"""A LINE Login (LIFF) app books over real HTTP with the resident's ID token, which the
server has LINE (the sandbox) verify: the booking is the chat's same resident; another's
or an expired token books nothing; the resident is held to their own rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.sandboxes import Sandbox
from tests.system.platforms import STATION, Gateway, Resident, start_server, text_of
from tests.system.test_delivery_outages import UNIT, ports
from tests.system.test_server_crash import ingest_counter

pytestmark = pytest.mark.slow
ONE, OTHER = "U" + "1d".ljust(32, "0"), "U" + "2d".ljust(32, "0")


def test_an_id_token_books_for_its_own_resident_only(
    tmp_path: Path, broker: Mosquitto, sandbox: Sandbox
) -> None:
    server = start_server(tmp_path, broker.url, sandbox, (UNIT,),
                          env={"CHARGENET_BOOKING_REQUESTS_PER_MIN": "3"})  # fmt: skip
    try:
        wait_until(lambda: ingest_counter(server, "connects") >= 1, 20, "the ingest connected")
        Gateway(broker, UNIT, 4).publish()
        wait_until(lambda: ports(server).count("available") == 4, 20, "the battery's ports")
        [first, *_] = server.get(f"/api/v1/stations/{STATION['id']}/windows")["windows"]

        def book(resident: str, token: str) -> httpx.Response:
            body: dict[str, Any] = {"resident_id": resident, "station_id": STATION["id"],
                                    "window_start": first["start"]}  # fmt: skip
            return httpx.post(f"{server.url}/api/v1/bookings", json=body, timeout=30,
                              headers={"X-Line-Id-Token": token})  # fmt: skip

        token = sandbox.line_id_token(ONE)
        someone_else = book(f"line:{OTHER}", token)
        assert someone_else.status_code == 403, someone_else.text
        expired = book(f"line:{ONE}", sandbox.line_id_token(ONE, expires_in_s=-10))
        assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
        forged = book(f"line:{ONE}", token[:-4] + "AAAA")
        assert forged.status_code == 401, forged.text
        made = book(f"line:{ONE}", token)
        assert made.status_code == 201, made.text
        again = [book(f"line:{ONE}", token).status_code for _ in range(3)]
        assert again == [409, 409, 429]  # already booked, then beyond the resident's rate

        status = Resident(sandbox, ONE).say({"type": "text", "text": "予約確認"}, "the status")
        assert made.json()["ticket_code"] in text_of(status), status  # the chat's resident
        assert server.admin("GET", "/api/v1/bookings/" + made.json()["id"])["status"] == "active"
    finally:
        assert server.stop() == 0, server.log_text()
