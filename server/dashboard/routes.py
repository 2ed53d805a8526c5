"""The dashboard page (`GET /`, static files under `/static`) and its event stream."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"

page = APIRouter(include_in_schema=False)
events = APIRouter(tags=["live"])


@page.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@page.get("/map-config.json")
async def map_config(request: Request) -> dict[str, str]:
    """The tile source the maps draw (a setting), so that a shelter without a network can point
    it at a local tile server or at nothing."""
    settings = request.app.state.settings
    return {"tile_url": settings.map_tile_url, "attribution": settings.map_tile_attribution}


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
