"""Public endpoints: status codes, shapes (validated by the response models), error codes."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from server.api import schemas
from tests.server.api.conftest import ADMIN

pytestmark = pytest.mark.anyio


async def test_stations_list_live_availability(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/v1/stations")
    assert reply.status_code == 200
    listed = schemas.StationList.model_validate(reply.json())
    by_id = {s.id: s for s in listed.stations}
    assert {"ozu-01", "ozu-02"} <= set(by_id)
    ozu1 = by_id["ozu-01"].availability
    assert ozu1.healthy_ports == 8 and ozu1.total_ports == 8
    assert ozu1.next_free_window is not None and ozu1.level in ("free", "busy")
    no_battery = next(s for s in listed.stations if s.availability.total_ports == 0)
    assert no_battery.availability.level == "no_chargers"  # not "full": nothing to charge at


async def test_station_detail_has_ports_with_effective_status(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/v1/stations/ozu-01")
    assert reply.status_code == 200
    detail = schemas.StationDetail.model_validate(reply.json())
    statuses = {p.status for b in detail.batteries for p in b.ports}
    assert statuses == {"available"} and len(detail.batteries) == 2


async def test_unknown_station_is_404_not_found(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/stations/nope", "/api/v1/stations/nope/windows"):
        reply = await client.get(path)
        assert reply.status_code == 404
        assert reply.json()["error"]["code"] == "not_found"


async def test_windows_from_a_time(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/v1/stations/ozu-01/windows")
    assert reply.status_code == 200
    windows = schemas.WindowList.model_validate(reply.json()).windows
    assert windows and all(w.places <= 8 for w in windows)
    later = windows[3].start.isoformat()
    again = await client.get("/api/v1/stations/ozu-01/windows", params={"from": later})
    assert schemas.WindowList.model_validate(again.json()).windows[0].start == windows[3].start
    bad = await client.get("/api/v1/stations/ozu-01/windows", params={"from": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["error"] == {
        "code": "invalid", "message": bad.json()["error"]["message"], "field": "from",
    }  # fmt: skip


async def test_options_ranked_for_a_location(client: httpx.AsyncClient) -> None:
    reply = await client.post("/api/v1/options", json={"lat": 33.506, "lon": 132.544})
    assert reply.status_code == 200
    options = schemas.OptionList.model_validate(reply.json()).options
    assert options and [o.cost for o in options] == sorted(o.cost for o in options)
    assert {o.station_id for o in options} <= {"ozu-01", "ozu-02"}
    bad = await client.post("/api/v1/options", json={"lat": 133, "lon": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "lat"


async def test_book_view_cancel(client: httpx.AsyncClient) -> None:
    windows = (await client.get("/api/v1/stations/ozu-01/windows")).json()["windows"]
    start = windows[1]["start"]
    body = {"resident_id": "r-1", "station_id": "ozu-01", "window_start": start}
    made = await client.post("/api/v1/bookings", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    booking = schemas.BookingOut.model_validate(made.json())
    assert booking.status == "active" and booking.window_start == datetime.fromisoformat(start)
    again = await client.post("/api/v1/bookings", json=body, headers=ADMIN)
    assert again.status_code == 409 and again.json()["error"]["code"]
    seen = await client.get(f"/api/v1/bookings/{booking.id}")
    assert seen.status_code == 200 and seen.json()["id"] == booking.id
    gone = await client.delete(f"/api/v1/bookings/{booking.id}")
    assert gone.status_code == 200 and gone.json()["status"] == "cancelled"
    missing = await client.get("/api/v1/bookings/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [{}, {"resident_id": "", "station_id": "ozu-01", "window_start": "2030-01-01T00:00:00Z"},
     {"resident_id": "r", "station_id": "ozu-01", "window_start": "soon"}],
)  # fmt: skip
async def test_bad_booking_requests_are_422_invalid(
    client: httpx.AsyncClient, body: dict[str, str]
) -> None:
    reply = await client.post("/api/v1/bookings", json=body, headers=ADMIN)
    assert reply.status_code == 422
    assert reply.json()["error"]["code"] == "invalid" and reply.json()["error"]["field"]


async def test_openapi_lists_every_route_and_docs_are_served(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    for path in (
        "/api/v1/stations",
        "/api/v1/bookings",
        "/api/v1/incidents",
        "/api/v1/ports/{gw_id}/{unit}/{port}/disable",
        "/api/v1/registry/import",
    ):
        assert path in spec["paths"], path  # fmt: skip
    assert (await client.get("/docs")).status_code == 200


async def test_metrics_are_prometheus_text(client: httpx.AsyncClient) -> None:
    reply = await client.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    assert "chargenet_sse" in reply.text


async def test_dashboard_page_and_assets(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and "充電ステーション" in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert (await client.get(asset)).status_code == 200


async def test_unknown_path_is_404_with_a_code(client: httpx.AsyncClient) -> None:
    reply = await client.get("/api/v1/nothing-here")
    assert reply.status_code == 404 and reply.json()["error"]["code"] == "not_found"
