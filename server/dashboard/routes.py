"""The dashboard page (`GET /`, static files under `/static`) and its event stream."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import quote

import segno
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from server.booking.ranking import DETOUR, WALK_KMH

STATIC = Path(__file__).resolve().parent / "static"

page = APIRouter(include_in_schema=False)
events = APIRouter(tags=["live"])


@page.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@page.get("/announcements")
async def announcements() -> FileResponse:
    """Operators compose, preview and send announcements (the API does the checking)."""
    return FileResponse(STATIC / "announcements.html", headers={"Cache-Control": "no-cache"})


@page.get("/public")
async def public() -> FileResponse:
    """Residents' read-only page: no login, only the open-data feed behind it."""
    return FileResponse(STATIC / "public.html", headers={"Cache-Control": "no-cache"})


@page.get("/page-config.json")
async def page_config(request: Request) -> dict[str, str | float]:
    """What the pages draw with: the tile source (a setting, so that a shelter without a
    network can point it at a local tile server), the booking's walking model (the public
    page ranks in the browser, the location never sent) and the LINE add-friend link."""
    settings = request.app.state.settings
    account = settings.line_official_account_id
    return {
        "tile_url": settings.map_tile_url,
        "attribution": settings.map_tile_attribution,
        "timezone": settings.timezone,
        "walk_kmh": WALK_KMH,
        "detour": DETOUR,
        "line_url": add_friend_url(account) if account else "",
        "outlines_url": "/map-outlines.geojson" if settings.map_outlines_file else "",
    }


@page.get("/map-outlines.geojson")
async def map_outlines(request: Request) -> Response:
    """The municipal outlines the maps draw under their markers (a setting), else 404."""
    found = request.app.state.settings.map_outlines_file
    if found is None:
        return Response(status_code=404)
    return FileResponse(found, media_type="application/geo+json",
                        headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip


@page.get("/line-qr.svg")
async def line_qr(request: Request) -> Response:
    """The add-friend link as a QR code, for a resident reading the page on another screen."""
    account = request.app.state.settings.line_official_account_id
    if not account:
        return Response(status_code=404)
    out = io.BytesIO()
    segno.make(add_friend_url(account), error="m").save(out, kind="svg", scale=4, border=2)
    return Response(out.getvalue(), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip


def add_friend_url(account_id: str) -> str:
    """LINE's add-friend link for the official account (`@123abcde`)."""
    return f"https://line.me/R/ti/p/{quote(account_id, safe='@')}"


@events.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream(request: Request) -> StreamingResponse:
    """Server-sent events: `change` (ingest), `booking`, `incident`, `registry`; each names the
    stations to re-read. Browsers reconnect by themselves (`retry:` is sent first)."""
    return StreamingResponse(
        request.app.state.services.hub.stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def static_mount() -> Mount:
    return Mount("/static", app=StaticFiles(directory=STATIC), name="static")
