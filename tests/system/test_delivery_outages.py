"""Either platform down, rate-limited or slow, the server killed mid-send, a reply token or
an access token gone stale: afterwards every message has arrived once, none lost, none
doubled.

A real `chargenet server`, Mosquitto and the sandbox; a gateway's messages are published
straight to the broker (a port faulting is one state message), so each test is the
server's outbox against the platform. Residents get replies (they chat) and pushes (their
booking moved off a faulted port); crews get alerts in their three channels. What the
resident or crew saw is read from the sandbox, which records each accepted request once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conditions import wait_until
from tests.faults import Outcome, record
from tests.mosquitto import Mosquitto
from tests.sandboxes import Sandbox
from tests.server.running import ServerProcess
from tests.system.platforms import (
    CHANNELS,
    STATION,
    STEADY,
    Gateway,
    Resident,
    alerts,
    all_sent,
    buttons,
    outbox,
    port_faults,
    start_server,
    walk,
)
from tests.system.test_server_crash import ingest_counter

pytestmark = pytest.mark.slow
UNIT = "rs485-1.1"
PORTS = 4
QUICK = {"CHARGENET_DELIVERY_BACKOFF_MAX_S": "1", "CHARGENET_DELIVERY_TIMEOUT_S": "2",
         "CHARGENET_LINE_REPLY_WITHIN_S": "40", **STEADY}  # fmt: skip
"""Retries at most a second apart, calls given up after 2 s; a dead sender's rows are taken
over after 20 s (half the reply window), while a reply token is still usable: a restart
later than the window would push a reply whose first try's answer was lost, so it arrives
twice rather than never (`server.delivery.sender`)."""
SETTLED_S = 45.0


@pytest.fixture
def gateway(broker: Mosquitto) -> Gateway:
    return Gateway(broker, UNIT, PORTS)


def serve(
    workdir: Path, broker: Mosquitto, sandbox: Sandbox, gateway: Gateway,
    database_url: str | None = None,
) -> ServerProcess:  # fmt: skip
    """A server with the shelter's battery live; a restart (`database_url` of the killed
    one) finds the registry and the outbox its predecessor left."""
    workdir.mkdir(exist_ok=True)
    server = start_server(workdir, broker.url, sandbox, (UNIT,), QUICK, database_url)
    wait_until(lambda: ingest_counter(server, "connects") >= 1, 20, "the ingest connected")
    if gateway.seq == 0:
        gateway.publish()
        wait_until(lambda: ports(server).count("available") == PORTS, 20, "the battery's ports")
    return server


@pytest.fixture
def server(
    tmp_path: Path, broker: Mosquitto, sandbox: Sandbox, gateway: Gateway
) -> Iterator[ServerProcess]:
    process = serve(tmp_path, broker, sandbox, gateway)
    yield process
    if process.alive:
        assert process.stop() == 0, process.log_text()


def ports(server: ServerProcess) -> list[str]:
    detail = server.get(f"/api/v1/stations/{STATION['id']}")
    return [p["status"] for b in detail["batteries"] for p in b["ports"]]


def book(server: ServerProcess, user_id: str) -> dict[str, Any]:
    """A booking of a LINE resident (as their chat makes one) in the first free window."""
    windows = server.get(f"/api/v1/stations/{STATION['id']}/windows")["windows"]
    first = next(w for w in windows if w["places"] > 0)
    booking: dict[str, Any] = server.request("POST", "/api/v1/bookings", {
        "resident_id": f"line:{user_id}", "station_id": STATION["id"],
        "window_start": first["start"],
    }, admin=True)  # fmt: skip
    return booking


def user(n: int) -> str:
    return f"U{n:032x}"


def counts(sandbox: Sandbox, users: list[str]) -> dict[str, list[str]]:
    """Per resident, how each delivery reached them (reply / push), in order."""
    return {u: [d["via"] for d in sandbox.line_messages(u)] for u in users}


@pytest.mark.reliability
def test_line_down_then_rate_limited_delivers_every_reply_and_push_once(
    server: ServerProcess, sandbox: Sandbox, gateway: Gateway
) -> None:
    booked = [user(1), user(2)]
    moved_ports = [book(server, u)["port"] for u in booked]
    sandbox.faults("line", count=10, status=500)
    sandbox.faults("line", count=10, status=429, retry_after_s=0.2)
    chatting = [Resident(sandbox, user(n)) for n in (11, 12, 13)]
    for resident in chatting:
        resident.send({"type": "text", "text": "充電"})
    gateway.publish(*moved_ports)
    began = time.monotonic()

    wait_until(lambda: all_sent(server, "line", 5), SETTLED_S, "every LINE message sent")
    recovery_s = time.monotonic() - began
    assert sum(a for _, _, a in outbox(server, "line")) >= 5 + 20  # the faults were met
    seen = counts(sandbox, [*booked, *(r.user_id for r in chatting)])
    assert seen == {**{u: ["push"] for u in booked},
                    **{r.user_id: ["reply"] for r in chatting}}, seen  # fmt: skip
    record(Outcome("LINE answering 500 x10 then 429 x10", 5,
                   sum(min(1, len(v)) for v in seen.values()),
                   sum(max(0, len(v) - 1) for v in seen.values()), recovery_s,
                   "LINE replies and pushes"))  # fmt: skip
    for resident in chatting:
        [answer] = resident.deliveries()
        assert asks_for_a_location(answer), answer


def test_a_server_killed_while_line_holds_its_request_delivers_it_once_after_restart(
    tmp_path: Path, server: ServerProcess, broker: Mosquitto, sandbox: Sandbox, gateway: Gateway
) -> None:
    booked = user(1)
    port = book(server, booked)["port"]
    sandbox.faults("line", count=2, delay_s=4.0)  # accepted, but only after 4 s
    resident = Resident(sandbox, user(11))
    resident.send({"type": "text", "text": "充電"})
    gateway.publish(port)
    wait_until(lambda: len(outbox(server, "line")) == 2 and sandbox.queued_faults("line") == 0,
               10, "the reply and the push held by the platform")  # fmt: skip
    server.kill()
    wait_until(lambda: len(sandbox.line_deliveries()) == 2, 10, "both accepted late")
    again = serve(tmp_path / "again", broker, sandbox, gateway, server.database_url)
    try:
        wait_until(lambda: all_sent(again, "line", 2), SETTLED_S, "both marked sent")
        assert counts(sandbox, [booked, resident.user_id]) == {
            booked: ["push"], resident.user_id: ["reply"]}  # fmt: skip
    finally:
        assert again.stop() == 0, again.log_text()


def asks_for_a_location(delivery: dict[str, Any]) -> bool:
    """The answer to 充電: a quick reply with LINE's location action."""
    return any(o.get("type") == "location" for o in walk(delivery["messages"]))


def test_a_reply_token_expired_while_the_reply_waited_is_pushed_instead_once(
    server: ServerProcess, sandbox: Sandbox, gateway: Gateway
) -> None:
    """The answer waits behind the resident's earlier message (a push LINE rate-limits for a
    while: a person's messages go in order) and its token runs out meanwhile."""
    resident = Resident(sandbox, user(1))
    port = book(server, resident.user_id)["port"]
    sandbox.faults("line", count=5, status=429, retry_after_s=0.5, calls=("push",))
    gateway.publish(port)
    wait_until(lambda: [a for _, _, a in outbox(server, "line")] >= [1], 20,
               "the moved booking's push refused once")  # fmt: skip
    resident.send({"type": "text", "text": "充電"})
    wait_until(lambda: len(outbox(server, "line")) == 2, 10, "the answer queued behind it")
    assert sandbox.line_expire_reply_tokens() == 1
    wait_until(lambda: all_sent(server, "line", 2), SETTLED_S, "both sent")
    moved, answer = resident.deliveries()
    assert (moved["via"], answer["via"]) == ("push", "push"), (moved, answer)
    assert asks_for_a_location(answer), answer
    assert len(resident.deliveries()) == 2


def test_a_reply_token_expired_after_a_refused_reply_is_pushed_instead_once(
    server: ServerProcess, sandbox: Sandbox
) -> None:
    """LINE answers the first reply 500 (it took nothing), then the token runs out: the
    answer must still arrive, pushed."""
    sandbox.faults("line", count=1, status=500, delay_s=1.0, calls=("reply",))
    resident = Resident(sandbox, user(11))
    resident.send({"type": "text", "text": "充電"})
    assert sandbox.line_expire_reply_tokens() == 1
    wait_until(lambda: all_sent(server, "line", 1), SETTLED_S, "the answer sent")
    [answer] = resident.deliveries()
    assert answer["via"] == "push" and asks_for_a_location(answer), answer


def channel_alerts(sandbox: Sandbox) -> dict[str, list[list[str]]]:
    """Per crew channel, the buttons of each alert it shows, in order."""
    return {c: [buttons(m) for m in alerts(sandbox, c)] for c in CHANNELS.values()}


def page_two(server: ServerProcess, gateway: Gateway) -> list[int]:
    """Two port faults, one after the other: two incidents, each paged to three channels."""
    gateway.publish(1)
    wait_until(lambda: len(outbox(server, "lineworks")) == 3, 20, "the first page queued")
    gateway.publish(1, 2)
    wait_until(lambda: len(outbox(server, "lineworks")) == 6, 20, "the second page queued")
    return port_faults(server)


@pytest.mark.reliability
def test_lineworks_down_then_rate_limited_delivers_every_alert_once(
    server: ServerProcess, sandbox: Sandbox, gateway: Gateway
) -> None:
    sandbox.faults("lineworks", count=8, status=500)
    sandbox.faults("lineworks", count=8, status=429, retry_after_s=0.2)
    began = time.monotonic()
    first, second = page_two(server, gateway)
    wait_until(lambda: all_sent(server, "lineworks", 6), SETTLED_S, "every alert sent")
    recovery_s = time.monotonic() - began
    assert sum(a for _, _, a in outbox(server, "lineworks")) >= 6 + 16
    expected = [[f"ack:{first}", f"resolve:{first}"], [f"ack:{second}", f"resolve:{second}"]]
    shown = channel_alerts(sandbox)
    assert shown == {c: expected for c in CHANNELS.values()}
    kept = [a for alerts_ in shown.values() for a in alerts_]
    unique = {(c, tuple(a)) for c, alerts_ in shown.items() for a in alerts_}
    record(
        Outcome(
            "LINE WORKS answering 500 x8 then 429 x8",
            6,
            len(unique),
            len(kept) - len(unique),
            recovery_s,
            "crew alerts (incident x channel)",
        )
    )


def test_a_server_killed_while_lineworks_holds_its_request_delivers_it_once_after_restart(
    tmp_path: Path, server: ServerProcess, broker: Mosquitto, sandbox: Sandbox, gateway: Gateway
) -> None:
    sandbox.faults("lineworks", count=1, delay_s=4.0)  # the caller gone by then: not delivered
    gateway.publish(1)
    wait_until(lambda: sorted(s for _, s, _ in outbox(server, "lineworks"))
               == ["pending", "sent", "sent"] and sandbox.queued_faults("lineworks") == 0, 20,
               "two alerts sent, the third held by the platform")  # fmt: skip
    server.kill()
    again = serve(tmp_path / "again", broker, sandbox, gateway, server.database_url)
    try:
        wait_until(lambda: all_sent(again, "lineworks", 3), SETTLED_S, "every alert sent")
        assert sandbox.call("GET", "/_sandbox/lineworks/faults")["dropped"] == 1  # the held one
        [incident] = port_faults(again)
        expected = [[f"ack:{incident}", f"resolve:{incident}"]]
        assert channel_alerts(sandbox) == {c: expected for c in CHANNELS.values()}
    finally:
        assert again.stop() == 0, again.log_text()


def test_an_expired_then_a_revoked_access_token_costs_no_alert_and_doubles_none(
    server: ServerProcess, sandbox: Sandbox, gateway: Gateway
) -> None:
    gateway.publish(1)
    wait_until(lambda: all_sent(server, "lineworks", 3), 20, "the first alert, a token cached")
    assert sandbox.works_expire_tokens() >= 1
    gateway.publish(1, 2)
    wait_until(lambda: all_sent(server, "lineworks", 6), 20, "the second alert")
    assert sandbox.works_revoke_tokens() >= 1
    gateway.publish(1, 2, 3)
    wait_until(lambda: all_sent(server, "lineworks", 9), 20, "the third alert")
    incidents = port_faults(server)
    expected = [[f"ack:{i}", f"resolve:{i}"] for i in incidents]
    assert channel_alerts(sandbox) == {c: expected for c in CHANNELS.values()}
