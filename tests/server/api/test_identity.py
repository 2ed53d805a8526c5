"""Who may book through the public API: nobody without a verified identity, a partner for
its own residents only, the desk for anyone; each client rate limited (a LINE resident's
own rate: tests/system/test_booking_identity.py)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from server.api.app import create_app
from server.db.models import Booking
from server.registry import load_demo_registry
from tests.server.api.conftest import ADMIN, live_ports, settings_for

pytestmark = pytest.mark.anyio
KEY = secrets.token_urlsafe(24)
PARTNER = {"X-Api-Key": KEY}


async def made_app(tmp_path: Path, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path / 'identity.sqlite3'}")
    settings = settings.model_copy(update={
        "partner_key_hashes": {"city-app": hashlib.sha256(KEY.encode()).hexdigest()},
        **overrides,
    })  # fmt: skip
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        await load_demo_registry(app.state.services.db)
        await live_ports(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for found in made_app(tmp_path):
        yield found


async def bookings(client: httpx.AsyncClient) -> int:
    app: FastAPI = client.app  # type: ignore[attr-defined]
    async with app.state.services.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Booking)) or 0)


async def window(client: httpx.AsyncClient) -> str:
    found = (await client.get("/api/v1/stations/ozu-01/windows")).json()["windows"]
    start: str = found[1]["start"]
    return start


async def book(
    client: httpx.AsyncClient, resident: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"resident_id": resident, "station_id": "ozu-01", "window_start": await window(client)}
    return await client.post("/api/v1/bookings", json=body, headers=headers or {})


async def test_a_burst_of_invented_residents_books_nothing(client: httpx.AsyncClient) -> None:
    start = await window(client)
    answers = await asyncio.gather(*(client.post("/api/v1/bookings", json={
        "resident_id": f"invented-{n}", "station_id": "ozu-01", "window_start": start,
    }) for n in range(60)))  # fmt: skip
    assert {a.status_code for a in answers} == {401}
    assert answers[0].json()["error"]["code"] == "unauthorized"
    assert await bookings(client) == 0


@pytest.mark.parametrize("headers", [
    {"X-Api-Key": "not-a-partner-key"}, {"Authorization": "Bearer wrong"},
    {"Authorization": f"Basic {ADMIN['Authorization'].split()[1]}"}, {"X-Line-Id-Token": "x"},
])  # fmt: skip
async def test_wrong_credentials_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    answer = await book(client, "city-app:r-1", headers)
    assert answer.status_code == 401, answer.text  # ID tokens: no LINE Login channel set
    assert await bookings(client) == 0


async def test_a_partner_books_its_own_residents_only(client: httpx.AsyncClient) -> None:
    assert (await book(client, "city-app:r-1", PARTNER)).status_code == 201
    other = await book(client, "r-2", PARTNER)
    assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
    as_line = await book(client, "line:U" + "0" * 32, PARTNER)
    assert as_line.status_code == 403
    assert await bookings(client) == 1


async def test_the_desk_books_for_anyone(client: httpx.AsyncClient) -> None:
    assert (await book(client, "walk-in 山田", ADMIN)).status_code == 201


async def test_a_client_is_rate_limited(tmp_path: Path) -> None:
    async for client in made_app(tmp_path, booking_client_requests_per_min=5):
        made = [await book(client, "city-app:r-1", PARTNER) for _ in range(3)]
        assert [m.status_code for m in made] == [201, 409, 409]  # booked, then already
        others = [await book(client, f"city-app:r-{n}", PARTNER) for n in range(2, 5)]
        assert [o.status_code for o in others] == [201, 201, 429]  # the partner's 6th
        refused = others[2]
        assert refused.json()["error"]["code"] == "rate_limited"
        assert "client" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 61
        assert (await book(client, "desk-walk-in", ADMIN)).status_code == 201  # another client
        assert await bookings(client) == 4
