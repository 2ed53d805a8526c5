"""Crew routes as registry data: the API, the CSV import (all rows or none), the audit."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from server import audit
from server.lineworks.routing import load_routes
from tests.server.lineworks.conftest import ADMIN, ROUTES

pytestmark = pytest.mark.anyio

CSV = {**ADMIN, "Content-Type": "text/csv"}


async def listed(client: httpx.AsyncClient) -> dict[tuple[str, str], str]:
    reply = await client.get("/api/v1/crew-routes", headers=ADMIN)
    assert reply.status_code == 200, reply.text
    return {(r["scope"], r["key"]): r["channel_id"] for r in reply.json()["routes"]}


async def route_actions(app: FastAPI) -> list[tuple[str, str, str]]:
    async with app.state.services.db.transaction() as session:
        entries = await audit.entries(session, limit=1000)
    return [(e.action, e.subject, e.actor) for e in reversed(entries)
            if e.action.startswith("crew_route.")]  # fmt: skip


async def test_routes_are_set_listed_and_read_by_the_pager(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    assert await listed(client) == ROUTES
    async with app.state.services.db.transaction() as session:
        routes = await load_routes(session)
    assert (dict(routes.municipality), dict(routes.group), routes.hq) == (
        {"大洲市": "ch-ozu"}, {"南予": "ch-nanyo"}, "ch-hq",
    )  # fmt: skip


async def test_put_replaces_and_delete_removes_each_audited(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    moved = await client.put("/api/v1/crew-routes/municipality", params={"key": "大洲市"},
                             json={"channel_id": "ch-ozu-2"},
                             headers={**ADMIN, "X-Actor": "hq-sato"})  # fmt: skip
    assert moved.status_code == 200, moved.text
    assert moved.json()["channel_id"] == "ch-ozu-2"
    gone = await client.delete("/api/v1/crew-routes/group", params={"key": "南予"}, headers=ADMIN)
    assert gone.status_code == 204
    again = await client.delete("/api/v1/crew-routes/group", params={"key": "南予"}, headers=ADMIN)
    assert again.status_code == 404
    assert await listed(client) == {("municipality", "大洲市"): "ch-ozu-2", ("hq", ""): "ch-hq"}
    assert (await route_actions(app))[-2:] == [
        ("crew_route.updated", "crew_route:municipality:大洲市", "hq-sato"),
        ("crew_route.deleted", "crew_route:group:南予", "admin"),
    ]  # fmt: skip


@pytest.mark.parametrize(("scope", "key", "channel"), [
    ("city", "大洲市", "ch-x"), ("hq", "大洲市", "ch-x"), ("group", "", "ch-x"),
    ("municipality", "大洲市", "ch x/../../users"), ("municipality", "大洲市", ""),
])  # fmt: skip
async def test_invalid_routes_are_refused(
    client: httpx.AsyncClient, scope: str, key: str, channel: str
) -> None:
    reply = await client.put(f"/api/v1/crew-routes/{scope}", params={"key": key},
                             json={"channel_id": channel}, headers=ADMIN)  # fmt: skip
    assert reply.status_code == 422, reply.text
    assert await listed(client) == ROUTES


async def test_csv_import_creates_updates_and_keeps(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    text = "scope,key,channel_id\nmunicipality,内子町,ch-uchiko\nhq,,ch-hq-2\ngroup,南予,ch-nanyo\n"
    reply = await client.post("/api/v1/crew-routes", content=text.encode(), headers=CSV)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"created": ["municipality:内子町"], "updated": ["hq"],
                            "unchanged": ["group:南予"]}  # fmt: skip
    assert await listed(client) == {**ROUTES, ("municipality", "内子町"): "ch-uchiko",
                                    ("hq", ""): "ch-hq-2"}  # fmt: skip
    assert ("crew_route.created", "crew_route:municipality:内子町", "admin") in await route_actions(
        app
    )


async def test_csv_import_with_a_bad_row_reports_it_and_imports_nothing(
    client: httpx.AsyncClient,
) -> None:
    text = ("\ufeffscope,key,channel_id\nmunicipality,内子町,ch-uchiko\ncity,松山市,ch-matsuyama\n"
            "group,,ch-x\nmunicipality,内子町,ch-again\n")  # fmt: skip
    reply = await client.post("/api/v1/crew-routes", content=text.encode(), headers=CSV)
    assert reply.status_code == 422
    error = reply.json()["error"]
    assert error["code"] == "invalid_csv"
    assert "row 3, column scope" in error["message"]
    assert "row 4: a group route needs a key" in error["message"]
    assert "row 5, column scope: already given in row 2" in error["message"]
    assert await listed(client) == ROUTES  # row 2 was fine, and is not imported either


async def test_csv_import_with_a_bad_header_names_it(client: httpx.AsyncClient) -> None:
    reply = await client.post("/api/v1/crew-routes", content=b"scope,channel\nhq,c\n",
                              headers=CSV)  # fmt: skip
    assert reply.status_code == 422
    assert "column channel: unknown column" in reply.json()["error"]["message"]


async def test_routes_need_the_admin_token(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/crew-routes")).status_code == 401
    put = await client.put("/api/v1/crew-routes/hq", json={"channel_id": "ch-evil"})
    assert put.status_code == 401
    assert await listed(client) == ROUTES
