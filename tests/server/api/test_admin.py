"""Admin endpoints: 401 for every one of them without or with a wrong token, then each works."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from server.api import schemas
from tests.server.api.conftest import ADMIN

pytestmark = pytest.mark.anyio


PUBLIC_WRITES = {("POST", "/api/v1/options"), ("DELETE", "/api/v1/bookings/x"),
                 ("POST", "/line/webhook"), ("POST", "/line/relayed")}  # fmt: skip
"""The only writes a resident may make without a bearer token: LINE's webhook and the
intake's hand-on are guarded by their signatures, a cancel by the booking's unguessable id.
(A booking takes the desk's bearer token or one of the other identities,
`server.api.identity`.)"""


def operations(app: FastAPI) -> list[tuple[str, str, bool]]:
    """(method, path with `x` for parameters, guarded) for every operation in the OpenAPI."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            guarded = any("HTTPBearer" in entry for entry in operation.get("security", []))
            found.append((method.upper(), re.sub(r"\{[^}]+\}", "x", path), guarded))
    return found


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    return [(method, path) for method, path, guarded in operations(app) if guarded]


async def test_every_admin_route_is_known(app: FastAPI) -> None:
    paths = {path for _, path in admin_routes(app)}
    assert {"/api/v1/incidents", "/api/v1/stations", "/api/v1/stations/x",
            "/api/v1/registry/import", "/api/v1/batteries/x/x",
            "/api/v1/ports/x/x/x/disable", "/api/v1/ports/x/x/x/enable",
            "/api/v1/notifications", "/api/v1/incidents/x/acknowledge",
            "/api/v1/incidents/x/resolve", "/api/v1/audit"} <= paths  # fmt: skip


async def test_every_write_is_guarded_unless_meant_for_residents(app: FastAPI) -> None:
    unguarded = {(m, p) for m, p, guarded in operations(app) if m != "GET" and not guarded}
    assert unguarded == PUBLIC_WRITES


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic dGVzdA=="}])  # fmt: skip
async def test_admin_routes_refuse_without_the_token(
    app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    routes = admin_routes(app)
    assert len(routes) >= 10
    for method, path in routes:
        reply = await client.request(method, path, headers=headers, json={})
        assert reply.status_code == 401, (method, path, reply.text)
        assert reply.json()["error"]["code"] == "unauthorized"


async def test_public_station_get_is_not_guarded_but_put_is(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/stations/ozu-01")).status_code == 200
    assert (await client.put("/api/v1/stations/ozu-01", json={})).status_code == 401


async def test_create_and_update_a_station(client: httpx.AsyncClient) -> None:
    spec = {"id": "ozu-99", "name_ja": "テスト公民館", "name_en": "Test Hall",
            "latitude": 33.5, "longitude": 132.55}  # fmt: skip
    made = await client.post("/api/v1/stations", json=spec, headers=ADMIN)
    assert made.status_code == 201 and made.json()["id"] == "ozu-99"
    dup = await client.post("/api/v1/stations", json=spec, headers=ADMIN)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "station_exists"
    changed = await client.put("/api/v1/stations/ozu-99", json={"name_en": "Hall"}, headers=ADMIN)
    assert changed.status_code == 200 and changed.json()["name_en"] == "Hall"
    bad = await client.post("/api/v1/stations", json={**spec, "id": "Bad Id"}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "id"
    missing = await client.put("/api/v1/stations/nope", json={}, headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_csv_import_all_or_nothing(client: httpx.AsyncClient) -> None:
    good = "id,name_ja,name_en,latitude,longitude\nozu-77,避難所,Shelter,33.5,132.5\n"
    reply = await client.post(
        "/api/v1/registry/import", content=good, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert reply.status_code == 200, reply.text
    assert schemas.ImportOut.model_validate(reply.json()).created == ["ozu-77"]
    bad = good + "ozu-78,x,y,999,0\n"
    refused = await client.post(
        "/api/v1/registry/import", content=bad, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_csv"


async def test_map_a_battery(client: httpx.AsyncClient) -> None:
    reply = await client.put(
        "/api/v1/batteries/gw-9/lan.1", json={"station_id": "ozu-03"}, headers=ADMIN
    )
    assert reply.status_code == 200 and reply.json()["station_id"] == "ozu-03"
    bad = await client.put("/api/v1/batteries/gw-9/nounit", json={"station_id": "ozu-03"},
                           headers=ADMIN)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"


async def test_disable_moves_bookings_and_enable_restores(client: httpx.AsyncClient) -> None:
    windows = (await client.get("/api/v1/stations/ozu-01/windows")).json()["windows"]
    body = {"resident_id": "r-9", "station_id": "ozu-01", "window_start": windows[1]["start"]}
    booking = (await client.post("/api/v1/bookings", json=body, headers=ADMIN)).json()
    assert booking["port"] == 1  # the lowest free port; on one of the two batteries
    for unit in ("rs485-1.1", "rs485-1.2"):
        off = await client.post(f"/api/v1/ports/demo-gw/{unit}/1/disable", headers=ADMIN)
        assert off.status_code == 200, off.text
        port = schemas.PortAdminOut.model_validate(off.json())
        assert port.admin_disabled and port.cmd_id
    detail = (await client.get("/api/v1/stations/ozu-01")).json()
    statuses = {(b["unit"], p["port"]): p["status"] for b in detail["batteries"]
                for p in b["ports"]}  # fmt: skip
    assert statuses[("rs485-1.1", 1)] == statuses[("rs485-1.2", 1)] == "unavailable"
    moved = (await client.get(f"/api/v1/bookings/{booking['id']}")).json()
    assert moved["status"] == "moved"
    told = (await client.get("/api/v1/notifications", headers=ADMIN)).json()
    assert any(n["resident_id"] == "r-9" for n in told["notifications"])
    on = await client.post("/api/v1/ports/demo-gw/rs485-1.1/1/enable", headers=ADMIN)
    assert on.status_code == 200 and not on.json()["admin_disabled"]
    missing = await client.post("/api/v1/ports/demo-gw/rs485-1.1/9/disable", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_incidents_list_ack_resolve(client: httpx.AsyncClient) -> None:
    listed = await client.get("/api/v1/incidents", headers=ADMIN)
    assert listed.status_code == 200
    schemas.IncidentList.model_validate(listed.json())
    missing = await client.post("/api/v1/incidents/999/acknowledge", headers=ADMIN)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad_state = await client.get("/api/v1/incidents", params={"state": "x"}, headers=ADMIN)
    assert bad_state.status_code == 422 and bad_state.json()["error"]["field"] == "state"


async def test_notifications_listed(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/v1/notifications", headers=ADMIN)
    assert reply.status_code == 200
    schemas.NotificationList.model_validate(reply.json())


async def test_the_audit_log_lists_who_did_what_newest_first(client: httpx.AsyncClient) -> None:
    for action in ("disable", "enable"):
        done = await client.post(f"/api/v1/ports/demo-gw/rs485-1.1/2/{action}", headers=ADMIN)
        assert done.status_code == 200, done.text
    subject = "port:demo-gw/rs485-1.1/2"
    reply = await client.get("/api/v1/audit", params={"subject": subject}, headers=ADMIN)
    assert reply.status_code == 200
    entries = schemas.AuditList.model_validate(reply.json()).entries
    assert [e.action for e in entries] == ["port.enabled", "port.disabled"]
    assert entries[0].detail == {"station_id": "ozu-01"} and entries[0].actor
    one = await client.get("/api/v1/audit", params={"limit": 1}, headers=ADMIN)
    [use] = one.json()["entries"]  # the newest: this very request, as every use is
    assert (use["action"], use["detail"]) == (
        "operator.used",
        {"method": "GET", "path": "/api/v1/audit"},
    )
    bad = await client.get("/api/v1/audit", params={"limit": 0}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "limit"


async def test_an_empty_configured_token_rejects_everything(sqlite_url: str) -> None:
    from server.api.app import create_app
    from tests.server.api.conftest import settings_for

    app = create_app(settings_for(sqlite_url).model_copy(update={"admin_token": SecretStr("")}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            reply = await http.get("/api/v1/incidents", headers={"Authorization": "Bearer "})
            assert reply.status_code == 401
