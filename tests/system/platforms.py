"""A real server wired to both platforms' sandboxes, fed by simulator and gateway.

The registry has one shelter in 大洲市 (counterpart group 南予) whose crew routes name the
three channels HQ would set up, so a fault there pages all three at once. A `Resident`
plays one LINE user through the sandbox's control API (what the web chat does), a crew
member presses buttons through `/_sandbox/lineworks/press` (what the channel view does).
The end-to-end, outage, browser tests and `bench.platforms` share this wiring.
"""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, Final

from server.line.messages import Postback, read_postback
from tests.conditions import wait_until
from tests.mosquitto import Mosquitto
from tests.sandboxes import CHANNELS as SANDBOX_CHANNELS
from tests.sandboxes import Sandbox, Sent
from tests.server.ingest.messages import state, status
from tests.server.ingest.test_link import publish_burst
from tests.server.running import ServerProcess
from tests.system.harness import Simulator

GW: Final = "gw-test"
REPORT_S: Final = 2.0
STATION: Final[dict[str, Any]] = {
    "id": "st-1", "name_ja": "大洲小学校", "name_en": "Ozu Elementary School",
    "latitude": 33.5066, "longitude": 132.5446, "address": "愛媛県大洲市大洲 1",
    "municipality": "大洲市", "counterpart_group": "南予",
}  # fmt: skip
CHANNELS: Final = dict(zip(
    [("municipality", "大洲市"), ("group", "南予"), ("hq", "")], SANDBOX_CHANNELS, strict=True
))  # fmt: skip
"""Crew routes: the station's crew, its counterpart group and HQ, as in Ehime's hotline."""
NEAR: Final = (33.5080, 132.5460)
"""A resident a few minutes' walk from the shelter."""


def start_server(
    workdir: Path,
    mqtt_url: str,
    sandbox: Sandbox,
    units: tuple[str, ...] = ("line-1.1",),
    env: dict[str, str] | None = None,
    database_url: str | None = None,
) -> ServerProcess:
    """`chargenet server` pointed at the sandbox, with the shelter, its batteries and the
    crew routes registered, and the sandbox's webhook and callback pointed back at it."""
    server = ServerProcess(workdir, mqtt_url, REPORT_S, database_url,
                           env={**sandbox.server_env, **(env or {})})  # fmt: skip
    try:
        register(server, units)
        sandbox.point_at(server.url)
    except Exception:
        server.stop()
        raise
    return server


def register(server: ServerProcess, units: tuple[str, ...]) -> None:
    """The shelter (unless a restarted server finds it), its batteries and its routes."""
    known = {s["id"] for s in server.get("/api/v1/stations")["stations"]}
    if STATION["id"] in known:
        return
    server.admin("POST", "/api/v1/stations", STATION)
    for unit in units:
        server.admin("PUT", f"/api/v1/batteries/{GW}/{unit}", {"station_id": STATION["id"]})
    for (scope, key), channel in CHANNELS.items():
        query = f"?key={urllib.parse.quote(key)}" if key else ""
        server.admin("PUT", f"/api/v1/crew-routes/{scope}{query}", {"channel_id": channel})


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside a message, depth first (Flex bubbles nest deeply)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def postback_data(node: Any, action: Postback) -> list[str]:
    """The data of the postbacks of this kind that buttons or quick replies in `node`
    carry, as the chat sends it when pressed."""
    return [
        obj["data"] for obj in walk(node)
        if obj.get("type") == "postback" and isinstance(obj.get("data"), str)
        and (r := read_postback(obj["data"])) is not None and r.action is action
    ]  # fmt: skip


def text_of(node: Any) -> str:
    """Everything a resident can read in `node`: texts, alt texts and labels."""
    parts = []
    for obj in walk(node):
        for key in ("text", "altText", "label", "contentText"):
            if isinstance(obj.get(key), str):
                parts.append(obj[key])
    return "\n".join(parts)


class Resident:
    """One LINE user in the sandbox's chat: sends events, reads what the bot delivered."""

    def __init__(self, sandbox: Sandbox, user_id: str, language: str = "ja") -> None:
        self.sandbox = sandbox
        self.user_id = user_id
        self.language = language

    def send(self, event: dict[str, Any]) -> Sent:
        """The event as a signed webhook; the server must take it (200)."""
        sent = self.sandbox.line_send(self.user_id, {"language": self.language, **event})
        assert sent["status"] == 200, sent
        return sent

    def deliveries(self) -> list[dict[str, Any]]:
        """What the resident saw, each accepted request once, in arrival order."""
        return self.sandbox.line_messages(self.user_id)

    def next_delivery(self, seen: int, what: str, timeout_s: float = 15.0) -> dict[str, Any]:
        """The first delivery after the `seen` earlier ones."""
        found = wait_until(lambda: self.deliveries()[seen:], timeout_s, what)
        return found[0]

    def say(self, event: dict[str, Any], what: str, timeout_s: float = 15.0) -> dict[str, Any]:
        """Send and wait for the bot's answer (the next delivery)."""
        seen = len(self.deliveries())
        self.send(event)
        return self.next_delivery(seen, what, timeout_s)

    def book(self, near: tuple[float, float] = NEAR) -> dict[str, Any]:
        """充電 -> share a location -> press the first option's book button; the ticket."""
        asked = self.say({"type": "text", "text": "充電" if self.language == "ja" else "charge"},
                         "the bot asking where the resident is")  # fmt: skip
        assert any(o.get("type") == "location" for o in walk(asked)), asked
        options = self.say({"type": "location", "latitude": near[0], "longitude": near[1],
                            "title": "現在地"}, "ranked options")  # fmt: skip
        [first, *_] = postback_data(options, Postback.BOOK)
        return self.say({"type": "postback", "data": first}, "the ticket")


def displays(sim: Simulator) -> dict[tuple[str, int], str]:
    """Every simulated port showing a code: (unit, port) -> code."""
    return {
        (f"{u['line']}.{u['unit_id']}", p["port"]): p["display_code"]
        for u in sim.units() for p in u["port_states"] if p["display_code"]
    }  # fmt: skip


def alerts(sandbox: Sandbox, channel: str) -> list[dict[str, Any]]:
    """The button messages (alerts with acknowledge/resolve) a channel shows."""
    return [m for m in sandbox.works_channel(channel)
            if m["content"].get("type") == "button_template"]  # fmt: skip


def buttons(message: dict[str, Any]) -> list[str]:
    """The postback data of a LINE WORKS message's buttons (`ack:42`, `resolve:42`)."""
    return [a["postback"] for a in message["content"].get("actions", []) if "postback" in a]


def rows(server: ServerProcess, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the server's SQLite database directly (the outbox has no API)."""
    path = server.database_url.split("///", 1)[1]
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return db.execute(query, args).fetchall()


def audit_trail(server: ServerProcess, subject: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(actor, action, detail) of every audit entry about `subject`, oldest first, as HQ
    reads them (`GET /api/v1/audit`)."""
    query = urllib.parse.urlencode({"subject": subject, "limit": 1000})
    found = server.admin("GET", f"/api/v1/audit?{query}")["entries"]
    return [(e["actor"], e["action"], e["detail"]) for e in reversed(found)]


STEADY: Final = {"CHARGENET_REPORT_PERIOD_S": "60"}
"""Server settings for a `Gateway` that publishes only when told: its battery is not
declared silent after three 2 s report periods."""


class Gateway:
    """A gateway as the server hears it, published straight to the broker: a birth, then
    full states with rising seqs (a port faulting is one state)."""

    def __init__(self, broker: Mosquitto, unit: str, ports: int) -> None:
        self.broker = broker
        self.unit = unit
        self.ports = ports
        self.seq = 0

    def publish(self, *faulted: int) -> None:
        """A state with these ports faulted (and the others available)."""
        if self.seq == 0:
            self.seq += 1
            publish_burst(self.broker.port, [status(GW, self.seq, units=(self.unit,))])
        self.seq += 1
        statuses = tuple(
            "faulted" if p in faulted else "available" for p in range(1, self.ports + 1)
        )
        publish_burst(self.broker.port, [state(GW, self.unit, self.seq, statuses)])


def port_faults(server: ServerProcess) -> list[int]:
    """The ids of the port faults' incidents, oldest first."""
    found = server.admin("GET", "/api/v1/incidents")["incidents"]
    return sorted(i["id"] for i in found if i["kind"] == "port_fault")


def outbox(server: ServerProcess, platform: str) -> list[tuple[int, str, int]]:
    """(id, state, attempts) of every outbox row to `platform`."""
    found = rows(server, "SELECT id, state, attempts FROM outbox WHERE platform = ? ORDER BY id",
                 platform)  # fmt: skip
    return [(int(i), str(s), int(a)) for i, s, a in found]


def all_sent(server: ServerProcess, platform: str, expected: int) -> bool:
    found = outbox(server, platform)
    return len(found) == expected and all(s == "sent" for _, s, _ in found)
