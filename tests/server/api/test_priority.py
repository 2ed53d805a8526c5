"""The priority API: requests (a self-reported need) listed by reference, granted and
revoked by operators, a municipality's list imported; hold-back rules set and refused with
the field named; all audited; and the book path through the API keeps held places."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from server.api import schemas
from server.line.conversation import Registration
from server.line.registration_rows import RegistrationRows
from tests.server.api.conftest import ADMIN, client_of, demo_app
from tests.server.api.test_operators import make

pytestmark = pytest.mark.anyio

OZU = "大洲市"


async def register(app: FastAPI, user_id: str, need: str | None, where: str = OZU) -> str:
    """A LINE resident's registration as the chat stores it; its reference."""
    rows = RegistrationRows(app.state.services.db, lambda: datetime.now(UTC))
    await rows.register(Registration(user_id, where, None, "home", need))
    found = await rows.registration(user_id)
    assert found is not None and found.reference
    return found.reference


async def audit_of(client: httpx.AsyncClient, subject: str) -> list[schemas.AuditEntryOut]:
    reply = await client.get("/api/v1/audit", params={"subject": subject}, headers=ADMIN)
    return schemas.AuditList.model_validate(reply.json()).entries


async def test_a_self_report_is_a_request_until_an_operator_grants_it(database_url: str) -> None:
    async with demo_app(database_url) as app, client_of(app) as client:
        await requests_granted_and_revoked(app, client)


async def requests_granted_and_revoked(app: FastAPI, client: httpx.AsyncClient) -> None:
    reference = await register(app, "Uoxygen", "medical_device")
    await register(app, "Unone", None)  # no need, no grant: not listed
    booking = app.state.services.booking
    assert not await booking.is_priority("line:Uoxygen")
    listed = await client.get("/api/v1/priority/requests", headers=ADMIN)
    assert listed.status_code == 200, listed.text
    assert listed.json()["counts"] == [
        {"municipality": OZU, "requested": 1, "granted": 0, "waiting": 1}
    ]
    [request] = listed.json()["requests"]
    assert (request["reference"], request["granted"]) == (reference, False)
    assert "Uoxygen" not in listed.text and "line:" not in listed.text  # no LINE user ids

    granted = await client.put(f"/api/v1/priority/residents/{reference.lower()}",
                               json={"source": "desk"}, headers=ADMIN)  # fmt: skip
    assert granted.status_code == 200, granted.text
    assert granted.json()["granted"] and granted.json()["source"] == "desk"
    assert await booking.is_priority("line:Uoxygen")
    counts = (await client.get("/api/v1/priority/requests", headers=ADMIN)).json()["counts"]
    assert counts == [{"municipality": OZU, "requested": 1, "granted": 1, "waiting": 0}]

    revoked = await client.delete(f"/api/v1/priority/residents/{reference}", headers=ADMIN)
    assert revoked.status_code == 200 and not revoked.json()["granted"]
    assert not await booking.is_priority("line:Uoxygen")
    entries = await audit_of(client, f"registration:{reference}")
    assert [e.action for e in entries] == ["priority.revoked", "priority.granted"]
    assert entries[1].detail["source"] == "desk" and entries[1].actor
    assert "Uoxygen" not in json.dumps([e.detail for e in entries])

    unknown = await client.put("/api/v1/priority/residents/ZZZZZZZZ", json={}, headers=ADMIN)
    assert unknown.status_code == 404 and "reference" in unknown.json()["error"]["message"]
    other = await make(client, "uchiko-op", "municipality", "内子町")
    refused = await client.put(f"/api/v1/priority/residents/{reference}", json={}, headers=other)
    assert refused.status_code == 403
    hidden = await client.get("/api/v1/priority/requests", headers=other)
    assert hidden.json() == {"counts": [], "requests": []}


async def test_a_municipality_s_list_is_granted_all_rows_or_none(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    first = await register(app, "Ua", "medical_device")
    second = await register(app, "Ub", None)  # on the municipality's list, asked for nothing
    elsewhere = await register(app, "Uc", "care", where="内子町")
    csv_headers = {**ADMIN, "Content-Type": "text/csv"}
    bad = f"municipality,reference\n{OZU},{first}\n{OZU},NOSUCHREF\n{OZU},{elsewhere}\n"
    refused = await client.post("/api/v1/priority/residents", content=bad.encode(),
                                headers=csv_headers)  # fmt: skip
    assert refused.status_code == 422, refused.text
    message = refused.json()["error"]["message"]
    assert "row 3" in message and "row 4" in message
    assert not await app.state.services.booking.is_priority("line:Ua")  # nothing granted
    good = f"municipality,reference\n{OZU},{first}\n{OZU},{second}\n"
    done = await client.post("/api/v1/priority/residents", content=good.encode(),
                             headers=csv_headers)  # fmt: skip
    assert done.status_code == 200, done.text
    assert sorted(done.json()["created"]) == sorted([first, second])
    again = await client.post("/api/v1/priority/residents", content=good.encode(),
                              headers=csv_headers)  # fmt: skip
    assert again.json()["created"] == [] and len(again.json()["unchanged"]) == 2
    [entry] = await audit_of(client, f"registration:{second}")
    assert (entry.action, entry.detail["source"]) == ("priority.granted", "municipal_list")


@pytest.mark.parametrize(
    ("body", "field"),
    [({"hold_share": 1.5, "release_before_min": 30}, "hold_share"),
     ({"hold_share": -0.1, "release_before_min": 30}, "hold_share"),
     ({"hold_share": 0.25, "release_before_min": -5}, "release_before_min"),
     ({"hold_share": 0.25}, "release_before_min")],
)  # fmt: skip
async def test_bad_rules_are_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, float], field: str
) -> None:
    reply = await client.put(f"/api/v1/priority/rules/{OZU}", json=body, headers=ADMIN)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["field"] == field


async def test_rules_are_set_per_municipality_and_audited(client: httpx.AsyncClient) -> None:
    before = (await client.get("/api/v1/priority/rules", headers=ADMIN)).json()["rules"]
    assert [(r["municipality"], r["hold_share"]) for r in before] == [(OZU, 0.0)]  # no hold
    body = {"hold_share": 0.25, "release_before_min": 30}
    put = await client.put(f"/api/v1/priority/rules/{OZU}", json=body, headers=ADMIN)
    assert put.status_code == 200, put.text
    assert (put.json()["hold_share"], put.json()["release_before_min"]) == (0.25, 30)
    [entry] = await audit_of(client, f"priority_rule:{OZU}")
    assert entry.action == "priority.rule_set"
    assert entry.detail["before"] == {"hold_share": 0.0, "release_before_min": 0}
    unknown = await client.put("/api/v1/priority/rules/架空町", json=body, headers=ADMIN)
    assert unknown.status_code == 404
    assert "municipality" in unknown.json()["error"]["message"]
    assert "架空町" in unknown.json()["error"]["message"]
    viewer = await make(client, "reader", "viewer")
    assert (await client.put(f"/api/v1/priority/rules/{OZU}", json=body,
                             headers=viewer)).status_code == 403  # fmt: skip


async def test_the_api_book_path_keeps_held_places_for_priority(database_url: str) -> None:
    """ozu-01 has 8 ports; a quarter held until the window starts: 6 places for anyone,
    however many ask at once, and the held 2 for priority residents."""
    async with demo_app(database_url) as app, client_of(app) as client:
        body = {"hold_share": 0.25, "release_before_min": 0}
        assert (await client.put(f"/api/v1/priority/rules/{OZU}", json=body,
                                 headers=ADMIN)).status_code == 200  # fmt: skip
        reference = await register(app, "Uvent", "medical_device")
        await client.put(f"/api/v1/priority/residents/{reference}", json={}, headers=ADMIN)
        windows = (await client.get("/api/v1/stations/ozu-01/windows")).json()["windows"]
        start = windows[1]["start"]
        assert (windows[1]["places"], windows[1]["held"]) == (6, 2)  # as anyone may book

        async def book(resident: str) -> httpx.Response:
            wanted = {"resident_id": resident, "station_id": "ozu-01", "window_start": start}
            return await client.post("/api/v1/bookings", headers=ADMIN, json=wanted)

        replies = await asyncio.gather(*(book(f"walk-in-{n}") for n in range(12)))
        assert sorted(r.status_code for r in replies) == [201] * 6 + [409] * 6
        assert {r.json()["error"]["code"] for r in replies if r.status_code == 409} == {
            "window_full"
        }
        mine = await book("line:Uvent")
        assert mine.status_code == 201, mine.text
        after = (await client.get("/api/v1/stations/ozu-01/windows")).json()["windows"]
        assert [(w["places"], w["held"]) for w in after if w["start"] == start] == [(0, 1)]
