"""The API's edge: bounded ids, ports and times, no control characters, JSON bodies only, a
JSON 500 for a bug, and docs that need no internet. On SQLite and PostgreSQL alike."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from server.api.app import create_app
from server.registry import load_demo_registry
from tests.server.api.conftest import ADMIN, live_ports, next_hour, settings_for

pytestmark = pytest.mark.anyio

STATION = {"id": "st-9", "name_ja": "避難所", "name_en": "Shelter", "latitude": 33.5,
           "longitude": 132.5}  # fmt: skip


@pytest.fixture
async def both(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app on SQLite, then on PostgreSQL (where NUL and int32 gave 500s)."""
    app = create_app(settings_for(database_url))
    async with app.router.lifespan_context(app):
        await load_demo_registry(app.state.services.db)
        await live_ports(app)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


def booking(**fields: str) -> dict[str, str]:
    return {"resident_id": "r-1", "station_id": "ozu-01",
            "window_start": next_hour().isoformat(), **fields}  # fmt: skip


REFUSED: list[tuple[str, str, dict[str, Any]]] = [
    # issue 9 item 5: past the database's INTEGER, a port no battery has, a year that overflows
    ("POST", "/api/v1/incidents/2147483648/acknowledge", {}),
    ("POST", "/api/v1/incidents/2147483648/resolve", {}),
    ("POST", "/api/v1/incidents/0/resolve", {}),
    ("POST", "/api/v1/ports/demo-gw/tcp-1.1/2147483648/disable", {}),
    ("POST", "/api/v1/ports/demo-gw/tcp-1.1/65/enable", {}),
    ("GET", "/api/v1/stations/ozu-01/windows", {"params": {"from": "9999-12-31T23:59:59Z"}}),
    ("POST", "/api/v1/options", {"json": {"lat": 33.5, "lon": 132.5, "earliest": 0}}),
    ("POST", "/api/v1/options", {"json": {"lat": 33.5, "lon": 132.5, "earliest": "0"}}),
    ("POST", "/api/v1/options", {"json": {"lat": False, "lon": 132.5}}),
    # item 9: OverflowError in the booking service
    ("POST", "/api/v1/bookings", {"json": booking(window_start="0001-01-01T00:00:00+14:00")}),
    # item 13: a time without a zone, the same on /windows and on /bookings
    ("GET", "/api/v1/stations/ozu-01/windows", {"params": {"from": "2030-01-01T00:00:00"}}),
    ("POST", "/api/v1/bookings", {"json": booking(window_start="2030-01-01T00:00:00")}),
    # items 13 and 17: control characters in ids and names
    ("POST", "/api/v1/bookings", {"json": booking(station_id="ozu\x0001")}),
    ("POST", "/api/v1/bookings", {"json": booking(resident_id="r\x00")}),
    ("POST", "/api/v1/bookings", {"json": booking(resident_id="r\x1b[31m")}),
    ("GET", "/api/v1/notifications", {"params": {"resident_id": "\x00"}}),
    ("POST", "/api/v1/stations", {"json": {**STATION, "name_en": "Shel\x00ter"}}),
    ("PUT", "/api/v1/stations/ozu-01", {"json": {"address": "\x00"}}),
    ("GET", "/api/v1/bookings/%00", {}),
    ("DELETE", "/api/v1/bookings/%00", {}),
    ("GET", "/api/v1/stations/%00", {}),
    ("GET", "/api/v1/stations/%00/windows", {}),
    ("GET", "/api/v1/incidents", {"params": {"station_id": "\x00"}}),
    ("PUT", "/api/v1/batteries/demo-gw/%00", {"json": {"station_id": "ozu-01"}}),
]  # fmt: skip


async def test_out_of_range_and_control_characters_are_422(both: httpx.AsyncClient) -> None:
    answers = []
    for method, path, request in REFUSED:
        reply = await both.request(method, path, headers=ADMIN, **request)
        json = reply.headers["content-type"] == "application/json"
        code = reply.json().get("error", {}).get("code") if json else reply.text[:40]
        answers.append((method, path, reply.status_code, code))
    assert answers == [(method, path, 422, "invalid") for method, path, _ in REFUSED]


async def test_the_bounds_leave_what_is_valid_alone(both: httpx.AsyncClient) -> None:
    made = await both.post("/api/v1/bookings", json=booking(resident_id="山田 花子"), headers=ADMIN)
    assert made.status_code == 201, made.text
    last = {"from": "2099-12-31T23:30:00+09:00"}  # the last time the bound allows
    ahead = await both.get("/api/v1/stations/ozu-01/windows", params=last)
    assert (
        ahead.status_code == 200 and ahead.json()["windows"][0]["start"] == "2099-12-31T14:30:00Z"
    )
    created = await both.post("/api/v1/stations", json=STATION, headers=ADMIN)
    assert created.status_code == 201, created.text
    missing = await both.post("/api/v1/incidents/2147483647/acknowledge", headers=ADMIN)
    assert missing.status_code == 404
    port = await both.post("/api/v1/ports/demo-gw/tcp-1.1/64/disable", headers=ADMIN)
    assert port.status_code == 404


async def test_a_body_that_is_not_json_is_415(both: httpx.AsyncClient) -> None:
    body = b'{"lat": 33.5, "lon": 132.5, "reset_alarms": false}'
    paths = ["/api/v1/bookings", "/api/v1/options", "/api/v1/stations",
             "/api/v1/incidents/1/resolve"]  # fmt: skip
    for path in paths:  # the booking lane, a public route, admin routes
        for content_type in ({"Content-Type": "text/plain"}, {}):
            reply = await both.post(path, content=body, headers={**ADMIN, **content_type})
            assert reply.status_code == 415, (path, content_type, reply.text)
            assert reply.json()["error"]["code"] == "unsupported_media_type"


async def test_json_with_a_charset_and_csv_where_declared_are_accepted(
    both: httpx.AsyncClient,
) -> None:
    typed = {"Content-Type": "application/json; charset=utf-8"}
    body = b'{"lat": 33.5, "lon": 132.5}'
    reply = await both.post("/api/v1/options", content=body, headers=typed)
    assert reply.status_code == 200, reply.text
    csv = "id,name_ja,name_en,latitude,longitude\nozu-78,避難所,Shelter,33.5,132.5\n"
    imported = await both.post(
        "/api/v1/registry/import", content=csv, headers={**ADMIN, "Content-Type": "text/csv"}
    )
    assert imported.status_code == 200, imported.text


async def test_a_405_allows_every_method_of_the_path(both: httpx.AsyncClient) -> None:
    reply = await both.request("PATCH", "/api/v1/stations")
    assert reply.status_code == 405 and reply.headers["allow"] == "GET, HEAD, POST"


async def test_a_bug_is_a_json_500_with_its_traceback_logged(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings_for(sqlite_url))

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/broken", broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            with caplog.at_level(logging.ERROR, logger="server.api.errors"):
                reply = await client.get("/api/v1/broken")
    assert reply.status_code == 500 and reply.headers["content-type"] == "application/json"
    assert reply.json()["error"]["code"] == "internal_error"
    [record] = [r for r in caplog.records if r.name == "server.api.errors"]
    assert "GET /api/v1/broken" in record.getMessage()
    assert record.exc_info is not None and str(record.exc_info[1]) == "a bug"


async def test_docs_need_no_internet(client: httpx.AsyncClient, app: FastAPI) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.text), page.text
    assets = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    kinds = {}
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        kinds[asset.rsplit(".", 1)[-1]] = served.headers["content-type"]
    assert kinds["js"].startswith(("text/javascript", "application/javascript"))
    assert kinds["css"].startswith("text/css") and kinds["json"].startswith("application/json")
    assert (await client.get("/redoc")).status_code == 404  # not exposed
