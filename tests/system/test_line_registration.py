"""A resident registers a district and situation (a shelter, picked by name) through the LINE
sandbox's signed webhooks to `chargenet server`, sees it, and deletes it; the server's public
answers never show it."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mosquitto import Mosquitto
from tests.sandboxes import Sandbox
from tests.server.running import ServerProcess
from tests.system.platforms import STATION, Resident, start_server, text_of

pytestmark = pytest.mark.slow
USER = "U" + "7c" * 16
DISTRICT = "肱南"


@pytest.fixture
def server(tmp_path: Path, broker: Mosquitto, sandbox: Sandbox) -> Iterator[ServerProcess]:
    process = start_server(tmp_path, broker.url, sandbox)
    yield process
    assert process.stop() == 0, process.log_text()


def raw(server: ServerProcess, path: str) -> str:
    with urllib.request.urlopen(server.url + path, timeout=30) as reply:
        text: str = reply.read().decode()
        return text


def test_a_resident_registers_sees_and_deletes_it_in_english(
    server: ServerProcess, sandbox: Sandbox
) -> None:
    town = urllib.parse.quote(STATION["municipality"])
    server.admin("PUT", f"/api/v1/districts?municipality={town}", {"districts": ["大洲", DISTRICT]})
    resident = Resident(sandbox, USER, "en")
    asked = resident.say({"type": "text", "text": "register"}, "the consent question")
    assert "never made public" in text_of(asked)
    for answer, next_question in (("Yes", "Which municipality"), ("大洲市", "Which district"),
                                  (DISTRICT, "Where are you staying"),
                                  ("Shelter", "Which shelter"),
                                  (STATION["name_en"], "powered medical device")):  # fmt: skip
        reply = resident.say({"type": "text", "text": answer}, f"the answer to {answer}")
        assert next_question in text_of(reply), text_of(reply)
    done = text_of(resident.say({"type": "text", "text": "Care needs"}, "the registration"))
    assert "You are registered" in done and f"District: {DISTRICT}" in done
    assert "Medical device or care: Care needs" in done
    for path in ("/public", "/api/v1/stations", "/opendata/v1/stations.geojson",
                 "/opendata/v1/stations.csv"):  # fmt: skip
        page = raw(server, path)
        assert USER not in page and DISTRICT not in page and "need_requested" not in page, path
    shown = text_of(resident.say({"type": "text", "text": "my registration"}, "the registration"))
    assert f"Staying: Shelter ({STATION['name_en']})" in shown
    # the reference shown is how operators see the request, and grant it (never the user id)
    [request] = server.admin("GET", "/api/v1/priority/requests")["requests"]
    assert f"Reference: {request['reference']}" in shown and not request["granted"]
    server.admin("PUT", f"/api/v1/priority/residents/{request['reference']}", {"source": "desk"})
    gone = resident.say({"type": "text", "text": "delete registration"}, "the deletion")
    assert "deleted" in text_of(gone)
    assert server.admin("GET", "/api/v1/priority/requests")["requests"] == []  # the grant too
    [revoked, _granted] = server.admin(
        "GET", f"/api/v1/audit?subject=registration:{request['reference']}")["entries"]  # fmt: skip
    assert (revoked["action"], revoked["detail"]) == (
        "priority.revoked", {"reason": "registration_deleted"})  # fmt: skip
    after = resident.say({"type": "text", "text": "my registration"}, "no registration")
    assert "not registered" in text_of(after)
