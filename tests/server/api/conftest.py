"""An app on a fresh database (no MQTT), driven in-process through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from server.api.app import create_app
from server.db.models import Gateway, Port, Unit
from server.registry import load_demo_registry
from server.settings import Settings

TOKEN = "test-admin-token"


@pytest.fixture
def anyio_backend() -> str:
    """Async tests and fixtures here run on asyncio through anyio's pytest plugin."""
    return "asyncio"


ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def settings_for(database_url: str) -> Settings:
    return Settings(
        database_url=database_url, mqtt_url=None, admin_token=SecretStr(TOKEN),
        report_period_s=60.0,
    )  # fmt: skip


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'api.sqlite3'}"


async def live_ports(app: FastAPI, gw_id: str = "demo-gw") -> None:
    """Make the demo batteries look freshly reported: online, 80 % of 2 kWh, 4 free ports."""
    now = datetime.now(UTC)
    async with app.state.services.db.transaction() as session:
        for unit in (await session.scalars(select(Unit).where(Unit.gw_id == gw_id))).all():
            unit.online, unit.received_at, unit.soc_pct, unit.rated_wh = True, now, 80.0, 2000.0
            for number in range(1, 5):
                session.add(Port(unit_pk=unit.id, port=number, status="available", occupied=False))
        await session.merge(Gateway(gw_id=gw_id, state="online", last_seen_at=now))


@asynccontextmanager
async def demo_app(database_url: str) -> AsyncIterator[FastAPI]:
    """The app on the demo registry, its batteries live."""
    application = create_app(settings_for(database_url))
    async with application.router.lifespan_context(application):
        await load_demo_registry(application.state.services.db)
        await live_ports(application)
        yield application


@asynccontextmanager
async def client_of(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
async def app(sqlite_url: str) -> AsyncIterator[FastAPI]:
    async with demo_app(sqlite_url) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(app) as http:
        yield http


def next_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
