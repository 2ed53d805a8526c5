"""Operator accounts through the API: HQ makes them; each reaches what its role allows,
its token is kept hashed, rotated or revoked at once, and every use is audited."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from server.db.models import AuditEntry, Incident, OperatorToken
from tests.server.api.conftest import ADMIN, client_of, demo_app
from tests.server.registry.test_shelter_formats import GSI_CSV, GSI_GEOJSON

pytestmark = pytest.mark.anyio

UWA = {"id": "uwa-01", "name_ja": "宇和島市立明倫小学校", "name_en": "Meirin Elementary School",
       "latitude": 33.22, "longitude": 132.56, "municipality": "宇和島市"}  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def make(client: httpx.AsyncClient, name: str, role: str, municipality: str | None = None
               ) -> dict[str, str]:  # fmt: skip
    """The new operator's headers; the token is in the answer that made it."""
    body = {"name": name, "role": role, "municipality": municipality}
    made = await client.post("/api/v1/operators", json=body, headers=ADMIN)
    assert made.status_code == 201, made.text
    assert made.json()["token"].startswith("cgo_")
    return bearer(made.json()["token"])


async def incident_at(app: FastAPI, station_id: str, unit: str) -> int:
    now = datetime.now(UTC)
    async with app.state.services.db.transaction() as session:
        row = Incident(kind="port_fault", dedupe_key=f"port_fault:{unit}", state="open",
                       station_id=station_id, gw_id="demo-gw", unit=unit, port=1,
                       opened_at=now, last_seen_at=now)  # fmt: skip
        session.add(row)
        await session.flush()
        return row.id


@pytest.fixture
async def two_towns(app: FastAPI, client: httpx.AsyncClient) -> tuple[int, int]:
    """A station of 宇和島市 beside the demo's 大洲市 ones, one battery moved there, and an
    open incident in each town: (大洲市's, 宇和島市's)."""
    assert (await client.post("/api/v1/stations", json=UWA, headers=ADMIN)).status_code == 201
    moved = await client.put("/api/v1/batteries/demo-gw/tcp-1.1", json={"station_id": "uwa-01"},
                             headers=ADMIN)  # fmt: skip
    assert moved.status_code == 200, moved.text
    return (await incident_at(app, "ozu-01", "rs485-1.1"),
            await incident_at(app, "uwa-01", "tcp-1.1"))  # fmt: skip


async def test_a_municipality_acts_on_its_own_stations_only(
    client: httpx.AsyncClient, two_towns: tuple[int, int]
) -> None:
    ozu_incident, uwa_incident = two_towns
    ozu = await make(client, "ozu-tanaka", "municipality", "大洲市")
    own = await client.post("/api/v1/ports/demo-gw/rs485-1.1/1/disable", headers=ozu)
    assert own.status_code == 200, own.text
    other = await client.post("/api/v1/ports/demo-gw/tcp-1.1/1/disable", headers=ozu)
    assert other.status_code == 403 and "宇和島市" in other.json()["error"]["message"]
    listed = (await client.get("/api/v1/incidents", headers=ozu)).json()["incidents"]
    assert [i["id"] for i in listed] == [ozu_incident]
    assert (await client.post(f"/api/v1/incidents/{uwa_incident}/acknowledge",
                              headers=ozu)).status_code == 403  # fmt: skip
    acked = await client.post(f"/api/v1/incidents/{ozu_incident}/acknowledge", headers=ozu)
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "ozu-tanaka"
    for method, path, body in [
        ("POST", "/api/v1/stations", {**UWA, "id": "uwa-02"}),
        ("PUT", "/api/v1/stations/uwa-01", {"name_en": "Renamed"}),
        ("PUT", "/api/v1/stations/ozu-01", {"municipality": "宇和島市"}),
        ("PUT", "/api/v1/batteries/demo-gw/tcp-1.1", {"station_id": "ozu-01"}),
        ("PUT", "/api/v1/batteries/demo-gw/rs485-1.2", {"station_id": "uwa-01"}),
        ("POST", "/api/v1/batteries/demo-gw/tcp-1.1/reset-alarms", None),
        ("GET", "/api/v1/stations/uwa-01/poster.pdf", None),
        ("GET", "/api/v1/audit", None),
        ("GET", "/api/v1/notifications", None),
        ("GET", "/api/v1/operators", None),
        ("PUT", "/api/v1/crew-routes/group?key=南予", {"channel_id": "mine"}),
        ("PUT", "/api/v1/crew-routes/municipality?key=宇和島市", {"channel_id": "mine"}),
    ]:
        reply = await client.request(method, path, json=body, headers=ozu)
        assert reply.status_code == 403, (method, path, reply.text)
        assert reply.json()["error"]["code"] == "forbidden"
    renamed = await client.put("/api/v1/stations/ozu-01", json={"name_en": "Ozu ES"}, headers=ozu)
    assert renamed.status_code == 200 and renamed.json()["name_en"] == "Ozu ES"
    route = await client.put("/api/v1/crew-routes/municipality", params={"key": "大洲市"},
                             json={"channel_id": "crew-ozu-2"}, headers=ozu)  # fmt: skip
    assert route.status_code == 200, route.text
    routes = (await client.get("/api/v1/crew-routes", headers=ozu)).json()["routes"]
    assert [(r["scope"], r["key"]) for r in routes] == [("municipality", "大洲市")]


async def test_a_municipalitys_file_naming_anothers_station_changes_nothing(
    client: httpx.AsyncClient, two_towns: tuple[int, int]
) -> None:
    ozu = await make(client, "ozu-tanaka", "municipality", "大洲市")
    header = "id,name_ja,name_en,latitude,longitude,municipality\n"
    rows = ("ozu-99,新しい避難所,New Shelter,33.5,132.5,大洲市\n"
            "uwa-01,乗っ取り,Taken,33.2,132.5,大洲市\n")  # fmt: skip
    csv = {**ozu, "Content-Type": "text/csv"}
    refused = await client.post("/api/v1/registry/import", content=header + rows, headers=csv)
    assert refused.status_code == 403, refused.text
    assert (await client.get("/api/v1/stations/ozu-99")).status_code == 404
    assert (await client.get("/api/v1/stations/uwa-01")).json()["municipality"] == "宇和島市"
    own = await client.post("/api/v1/registry/import", content=header + rows.splitlines()[0],
                            headers=csv)  # fmt: skip
    assert own.status_code == 200 and own.json()["created"] == ["ozu-99"]
    routes = "scope,key,channel_id\nmunicipality,大洲市,crew-a\nhq,,crew-b\n"
    taken = await client.post("/api/v1/crew-routes", content=routes, headers=csv)
    assert taken.status_code == 403
    hq_routes = (await client.get("/api/v1/crew-routes", headers=ADMIN)).json()["routes"]
    assert {(r["scope"], r["channel_id"]) for r in hq_routes} >= {("hq", "hq-ehime")}


async def test_a_municipality_loads_its_published_shelters_and_not_anothers(
    client: httpx.AsyncClient, two_towns: tuple[int, int]
) -> None:
    """GSI's GeoJSON as published, then its CSV in Shift_JIS with one 宇和島市 (38203) row."""
    ozu = await make(client, "ozu-tanaka", "municipality", "大洲市")
    geojson = {**ozu, "Content-Type": "application/geo+json"}
    own = await client.post("/api/v1/registry/import?kind=gsi-geojson",
                            content=GSI_GEOJSON.read_bytes(), headers=geojson)  # fmt: skip
    assert own.status_code == 200, own.text
    assert len(own.json()["created"]) == 4
    assert (await client.get("/api/v1/stations/e3820700000101")).json()["municipality"] == "大洲市"
    text = GSI_CSV.read_text(encoding="utf-8").replace("平野公民館", "平野公民館（改）")
    sjis = {**ozu, "Content-Type": "text/csv; charset=Shift_JIS"}
    again = await client.post("/api/v1/registry/import?kind=gsi-csv",
                              content=text.encode("cp932"), headers=sjis)  # fmt: skip
    assert again.status_code == 200 and again.json()["updated"] == ["e3820700000601"]
    foreign = text.replace("E3820700000201", "E3820300000201").replace("平野公民館（改）", "平野")
    refused = await client.post("/api/v1/registry/import?kind=gsi-csv",
                                content=foreign.encode("cp932"), headers=sjis)  # fmt: skip
    assert refused.status_code == 403 and "宇和島市" in refused.json()["error"]["message"]
    assert (await client.get("/api/v1/stations/e3820300000201")).status_code == 404
    kept = (await client.get("/api/v1/stations/e3820700000601")).json()
    assert kept["name_ja"] == "平野公民館（改）"
    broken = text.replace("33.5146", "")
    invalid = await client.post("/api/v1/registry/import?kind=gsi-csv",
                                content=broken.encode(), headers=sjis)  # fmt: skip
    assert invalid.status_code == 422
    assert "row 3, column 緯度" in invalid.json()["error"]["message"]


async def test_a_viewer_reads_and_changes_nothing(client: httpx.AsyncClient) -> None:
    viewer = await make(client, "press-room", "viewer")
    for path in ("/api/v1/incidents", "/api/v1/audit", "/api/v1/crew-routes"):
        assert (await client.get(path, headers=viewer)).status_code == 200, path
    writes = [("POST", "/api/v1/ports/demo-gw/rs485-1.1/1/disable"),
              ("PUT", "/api/v1/stations/ozu-01"), ("POST", "/api/v1/bookings")]  # fmt: skip
    for method, path in writes:
        reply = await client.request(method, path, json={}, headers=viewer)
        assert reply.status_code == 403, (method, path, reply.text)
        assert "viewer" in reply.json()["error"]["message"]


async def test_only_hq_manages_accounts_and_roles_must_fit(client: httpx.AsyncClient) -> None:
    ozu = await make(client, "ozu-tanaka", "municipality", "大洲市")
    hq = await make(client, "hq-sato", "hq")
    body = {"name": "ozu-2", "role": "municipality", "municipality": "大洲市"}
    assert (await client.post("/api/v1/operators", json=body, headers=ozu)).status_code == 403
    assert (await client.post("/api/v1/operators", json=body, headers=hq)).status_code == 201
    again = await client.post("/api/v1/operators", json=body, headers=hq)
    assert again.status_code == 409 and again.json()["error"]["code"] == "operator_exists"
    for bad in ({"name": "x", "role": "municipality"},
                {"name": "x", "role": "hq", "municipality": "大洲市"},
                {"name": "x", "role": "mayor"}, {"name": "bad name", "role": "hq"}):  # fmt: skip
        reply = await client.post("/api/v1/operators", json=bad, headers=hq)
        assert reply.status_code == 422, (bad, reply.text)


async def test_tokens_are_kept_hashed_rotated_and_revoked_at_once(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    made = await client.post("/api/v1/operators", json={"name": "hq-sato", "role": "hq"},
                             headers=ADMIN)  # fmt: skip
    token = made.json()["token"]
    async with app.state.services.db.transaction() as session:
        row = await session.get(OperatorToken, "hq-sato")
        assert row is not None and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        entries = (await session.scalars(select(AuditEntry))).all()
    assert all(token not in repr(e.detail) for e in entries)
    rotated = await client.post("/api/v1/operators/hq-sato/rotate", headers=ADMIN)
    assert rotated.status_code == 200 and rotated.json()["rotated_at"]
    fresh = rotated.json()["token"]
    assert fresh != token
    assert (await client.get("/api/v1/incidents", headers=bearer(token))).status_code == 401
    assert (await client.get("/api/v1/incidents", headers=bearer(fresh))).status_code == 200
    revoked = await client.delete("/api/v1/operators/hq-sato", headers=ADMIN)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await client.get("/api/v1/incidents", headers=bearer(fresh))).status_code == 401
    assert (await client.post("/api/v1/operators/hq-sato/rotate", headers=ADMIN)).status_code == 404
    listed = (await client.get("/api/v1/operators", headers=ADMIN)).json()["operators"]
    assert [(o["name"], bool(o["revoked_at"])) for o in listed] == [("hq-sato", True)]
    assert all("token" not in o for o in listed)


async def test_every_use_is_audited_under_the_accounts_own_name(
    client: httpx.AsyncClient,
) -> None:
    ozu = await make(client, "ozu-tanaka", "municipality", "大洲市")
    await client.get("/api/v1/incidents", headers={**ozu, "X-Actor": "someone-else"})
    await client.post("/api/v1/ports/demo-gw/rs485-1.1/2/disable", headers=ozu)
    await client.post("/api/v1/bookings", json={}, headers=ozu)  # a desk's booking, refused
    log = await client.get("/api/v1/audit", params={"subject": "operator:ozu-tanaka"},
                           headers=ADMIN)  # fmt: skip
    uses = [(e["actor"], e["action"], e["detail"].get("path")) for e in log.json()["entries"]]
    assert uses == [
        ("ozu-tanaka", "operator.used", "/api/v1/bookings"),
        ("ozu-tanaka", "operator.used", "/api/v1/ports/demo-gw/rs485-1.1/2/disable"),
        ("ozu-tanaka", "operator.used", "/api/v1/incidents"),
        ("admin", "operator.created", None),
    ]
    port = await client.get("/api/v1/audit", params={"subject": "port:demo-gw/rs485-1.1/2"},
                            headers=ADMIN)  # fmt: skip
    assert [e["actor"] for e in port.json()["entries"]] == ["ozu-tanaka"]


async def test_a_desk_books_with_an_operators_token(client: httpx.AsyncClient) -> None:
    ozu = await make(client, "ozu-desk", "municipality", "大洲市")
    viewer = await make(client, "press", "viewer")
    windows = (await client.get("/api/v1/stations/ozu-01/windows")).json()["windows"]
    body = {"resident_id": "walk-in-1", "station_id": "ozu-01", "window_start": windows[1]["start"]}
    assert (await client.post("/api/v1/bookings", json=body, headers=viewer)).status_code == 403
    booked = await client.post("/api/v1/bookings", json=body, headers=ozu)
    assert booked.status_code == 201, booked.text


async def test_accounts_on_both_stores(database_url: str) -> None:
    async with demo_app(database_url) as app, client_of(app) as client:
        ozu = await make(client, "ozu-tanaka", "municipality", "大洲市")
        off = await client.post("/api/v1/ports/demo-gw/rs485-1.1/1/disable", headers=ozu)
        assert off.status_code == 200, off.text
        assert (await client.get("/api/v1/audit", headers=ozu)).status_code == 403
        rotated = await client.post("/api/v1/operators/ozu-tanaka/rotate", headers=ADMIN)
        assert (await client.get("/api/v1/incidents", headers=ozu)).status_code == 401
        fresh = bearer(rotated.json()["token"])
        assert (await client.get("/api/v1/incidents", headers=fresh)).status_code == 200
