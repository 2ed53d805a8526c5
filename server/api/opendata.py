"""Open data: every station's live availability, for media and other apps.

GeoJSON (RFC 7946), CSV, and JSON per station under `/opendata/v1/`, fields documented in
docs/opendata.md. A station's public face only (names, place, hours, ports, level, the next
free window): no booking, resident or incident is in it. Many readers cost little: the
stations are read at most once per `FRESH_S` per process and every document carries a
strong ETag (a conditional request gets 304) and `Cache-Control`, so browsers and CDNs keep
it too; CORS is open (`PublicCors`); the licence is a setting, named in every document.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request, Response
from geojson_pydantic import Feature, FeatureCollection, Point
from geojson_pydantic.types import Position2D
from pydantic import BaseModel, ConfigDict
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api import schemas
from server.api.deps import Svc
from server.api.errors import documented
from server.api.live import station_list
from server.errors import NotFound

PREFIX: Final = "/opendata/v1"
FRESH_S: Final = 10.0
"""How old a document may be: a port's change reaches readers within this (plus their
cache's `max-age`, the same)."""
GEOJSON: Final = "application/geo+json"
CSV: Final = "text/csv; charset=utf-8"


class StationProperties(BaseModel):
    """What a feature, a CSV row and a station's JSON say; times in the stations' zone."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name_ja: str
    name_en: str
    municipality: str
    address: str
    latitude: float
    longitude: float
    level: schemas.Level
    free_now: int
    healthy_ports: int
    total_ports: int
    next_free_window: str | None
    next_free_places: int
    open_now: bool
    opens_at: str | None
    closes_at: str | None
    updated_at: str


class StationFeature(Feature[Point, StationProperties]):
    """`id` is the station's: a reader can follow one station across documents."""


class StationCollection(FeatureCollection[StationFeature]):
    licence: str
    licence_url: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class Document:
    body: bytes
    media_type: str
    etag: str


def properties(station: schemas.StationOut, at: datetime, zone: ZoneInfo) -> StationProperties:
    live = station.availability
    window = live.next_free_window
    return StationProperties(
        id=station.id, name_ja=station.name_ja, name_en=station.name_en,
        municipality=station.municipality, address=station.address,
        latitude=station.latitude, longitude=station.longitude, level=live.level,
        free_now=live.free_now, healthy_ports=live.healthy_ports, total_ports=live.total_ports,
        next_free_window=window.astimezone(zone).isoformat() if window else None,
        next_free_places=live.next_free_places, open_now=live.open_now,
        opens_at=station.opens_at, closes_at=station.closes_at,
        updated_at=at.astimezone(zone).isoformat(timespec="seconds"),
    )  # fmt: skip


def collection(rows: list[StationProperties], licence: str, licence_url: str,
               updated_at: str) -> StationCollection:  # fmt: skip
    """GeoJSON positions are longitude first (RFC 7946, 3.1.1)."""
    features = [
        StationFeature(type="Feature", id=row.id, properties=row, geometry=Point(
            type="Point", coordinates=Position2D(row.longitude, row.latitude)))
        for row in rows
    ]  # fmt: skip
    return StationCollection(type="FeatureCollection", features=features, licence=licence,
                             licence_url=licence_url, updated_at=updated_at)  # fmt: skip


def csv_text(rows: list[StationProperties]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(StationProperties.model_fields),
                            lineterminator="\r\n")  # fmt: skip
    writer.writeheader()
    for row in rows:
        writer.writerow(row.model_dump())
    return out.getvalue()


def document(body: bytes, media_type: str) -> Document:
    return Document(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


class Feed:
    """The documents of one read of the stations, read again once `FRESH_S` old."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._read_at = -FRESH_S
        self._rows: dict[str, StationProperties] = {}
        self._documents: dict[str, Document] = {}
        self._lock = asyncio.Lock()
        self.reads = 0
        """How many times the stations were read (the cache's test counts them)."""

    async def get(self, svc: Svc, name: str) -> Document:
        """`stations.geojson`, `stations.csv` or `{station id}.json`; NotFound otherwise."""
        async with self._lock:  # one read for every reader waiting on it
            if self._monotonic() - self._read_at >= FRESH_S:
                await self._read(svc)
            found = self._documents.get(name)
            if found is None:
                row = self._rows.get(name.removesuffix(".json")) if name.endswith(".json") else None
                if row is None:
                    raise NotFound(f"no open-data document {name!r}")
                found = document(row.model_dump_json().encode(), "application/json")
                self._documents[name] = found
            return found

    async def _read(self, svc: Svc) -> None:
        settings = svc.settings
        zone = ZoneInfo(settings.timezone)
        now = svc.clock()
        async with svc.db.transaction() as session:
            stations = await station_list(session, settings, now)
        rows = [properties(s, now, zone) for s in stations]
        updated_at = now.astimezone(zone).isoformat(timespec="seconds")
        geojson = collection(rows, settings.opendata_licence, settings.opendata_licence_url,
                             updated_at)  # fmt: skip
        self._rows = {row.id: row for row in rows}
        self._documents = {
            "stations.geojson": document(geojson.model_dump_json().encode(), GEOJSON),
            "stations.csv": document(csv_text(rows).encode(), CSV),
        }
        self._read_at = self._monotonic()
        self.reads += 1


def feed(request: Request) -> Feed:
    found: Feed = request.app.state.opendata
    return found


router = APIRouter(prefix=PREFIX, tags=["open data"], responses=documented(503))


def answer(request: Request, svc: Svc, found: Document) -> Response:
    headers = {
        "ETag": found.etag,
        "Cache-Control": f"public, max-age={int(FRESH_S)}",
        "Link": f'<{svc.settings.opendata_licence_url}>; rel="license"',
    }
    asked = request.headers.get("if-none-match", "")
    if found.etag in (tag.strip() for tag in asked.split(",")) or asked.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)


OpenFeed = Annotated[Feed, Depends(feed)]


@router.get(
    "/stations.geojson",
    response_model=StationCollection,
    responses={200: {"content": {GEOJSON: {}}}, 304: {"description": "not modified"}},
)
async def stations_geojson(request: Request, svc: Svc, open_feed: OpenFeed) -> Response:
    """Every station as a GeoJSON Point feature with its live availability."""
    return answer(request, svc, await open_feed.get(svc, "stations.geojson"))


@router.get(
    "/stations.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, 304: {"description": "not modified"}},
)
async def stations_csv(request: Request, svc: Svc, open_feed: OpenFeed) -> Response:
    """The same as the GeoJSON, a row per station (UTF-8, a header row, CRLF)."""
    return answer(request, svc, await open_feed.get(svc, "stations.csv"))


@router.get(
    "/stations/{station_id}.json",
    response_model=StationProperties,
    responses={304: {"description": "not modified"}, **documented(404)},
)
async def station_json(
    station_id: schemas.Id, request: Request, svc: Svc, open_feed: OpenFeed
) -> Response:
    """One station's properties, as in the feed."""
    return answer(request, svc, await open_feed.get(svc, f"{station_id}.json"))


class PublicCors:
    """CORS open to any origin for the open data only (Starlette's `CORSMiddleware`); the
    operator API stays same-origin."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=["*"], allow_methods=["GET"],
                                   allow_headers=["If-None-Match"], expose_headers=["ETag"],
                                   max_age=86400)  # fmt: skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        public = scope["type"] == "http" and scope["path"].startswith(PREFIX + "/")
        await (self.cors if public else self.app)(scope, receive, send)
