"""The open-data feed (issue 12, item 5): valid GeoJSON, the same in CSV and per station,
no personal data, 304 on a conditional request, CORS open for it alone, one read of the
stations however many readers."""

from __future__ import annotations

import asyncio
import csv
import io

import geojson
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from server.api.opendata import FRESH_S, Feed, StationProperties
from server.db.models import Port
from tests.server.api.conftest import ADMIN, next_hour

pytestmark = pytest.mark.anyio
FEED = "/opendata/v1/stations.geojson"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_feed_is_valid_geojson_with_every_station_longitude_first(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.get(FEED)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/geo+json"
    parsed = geojson.loads(reply.text)
    assert parsed.is_valid, parsed.errors()
    stations = (await client.get("/api/v1/stations")).json()["stations"]
    features = {f["id"]: f for f in parsed["features"]}
    assert set(features) == {s["id"] for s in stations}
    for station in stations:
        feature = features[station["id"]]
        assert feature["geometry"]["coordinates"] == [station["longitude"], station["latitude"]]
        assert feature["properties"]["level"] == station["availability"]["level"]
    assert parsed["licence"] == "CC BY 4.0"
    assert 'rel="license"' in reply.headers["link"]
    window = features["ozu-01"]["properties"]["next_free_window"]
    assert window.endswith("+09:00")  # residents' and reporters' time, not UTC


async def test_csv_and_per_station_json_say_what_the_feature_says(
    client: httpx.AsyncClient,
) -> None:
    features = {f["id"]: f["properties"] for f in (await client.get(FEED)).json()["features"]}
    reply = await client.get("/opendata/v1/stations.csv")
    assert reply.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert list(rows[0]) == list(StationProperties.model_fields)
    assert {r["id"]: r["name_ja"] for r in rows} == {k: v["name_ja"] for k, v in features.items()}
    one = await client.get("/opendata/v1/stations/ozu-01.json")
    assert one.status_code == 200 and one.json() == features["ozu-01"]
    missing = await client.get("/opendata/v1/stations/nope.json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_no_booking_or_resident_is_in_any_document(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    resident = "U0123456789abcdef-private"
    booking = {"resident_id": resident, "station_id": "ozu-01",
               "window_start": next_hour().isoformat()}  # fmt: skip
    made = await client.post("/api/v1/bookings", json=booking, headers=ADMIN)
    assert made.status_code == 201, made.text
    secrets_ = {resident, made.json()["id"]}  # the ticket code is too short to look for
    app.state.opendata = Feed()  # read after the booking
    for path in (FEED, "/opendata/v1/stations.csv", "/opendata/v1/stations/ozu-01.json"):
        text = (await client.get(path)).text
        assert not [s for s in secrets_ if s in text], path
    properties = (await client.get(FEED)).json()["features"][0]["properties"]
    assert set(properties) == set(StationProperties.model_fields)


async def test_a_conditional_request_is_304_until_the_stations_change(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    clock = Clock()
    app.state.opendata = Feed(monotonic=clock)
    first = await client.get(FEED)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == f"public, max-age={int(FRESH_S)}"
    same = await client.get(FEED, headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag

    async with app.state.services.db.transaction() as session:
        await session.execute(update(Port).values(status="faulted"))
    cached = await client.get(FEED, headers={"If-None-Match": etag})
    assert cached.status_code == 304  # read at most once per FRESH_S
    clock.now += FRESH_S
    changed = await client.get(FEED, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert {f["properties"]["level"] for f in changed.json()["features"]} <= {"full", "no_chargers"}


async def test_many_readers_at_once_cost_one_read_of_the_stations(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    app.state.opendata = feed = Feed()
    replies = await asyncio.gather(*(client.get(FEED) for _ in range(40)))
    assert {r.status_code for r in replies} == {200}
    assert len({r.headers["etag"] for r in replies}) == 1
    assert feed.reads == 1


async def test_cors_is_open_for_the_open_data_alone(client: httpx.AsyncClient) -> None:
    origin = {"Origin": "https://news.example.jp"}
    opened = await client.get(FEED, headers=origin)
    assert opened.headers["access-control-allow-origin"] == "*"
    assert "etag" in opened.headers["access-control-expose-headers"].lower()
    preflight = await client.options(FEED, headers={**origin,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "if-none-match"})  # fmt: skip
    assert preflight.status_code == 200
    operator_api = await client.get("/api/v1/stations", headers=origin)
    assert "access-control-allow-origin" not in operator_api.headers
