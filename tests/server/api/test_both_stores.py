"""The same API on SQLite and PostgreSQL: stations, booking, a port disable that moves it."""

from __future__ import annotations

import pytest

from tests.server.api.conftest import ADMIN, client_of, demo_app

pytestmark = pytest.mark.anyio


async def test_book_and_disable_on_both_stores(database_url: str) -> None:
    async with demo_app(database_url) as app, client_of(app) as client:
        stations = (await client.get("/api/v1/stations")).json()["stations"]
        assert {s["id"] for s in stations} >= {"ozu-01", "ozu-02"}
        windows = (await client.get("/api/v1/stations/ozu-02/windows")).json()["windows"]
        body = {"resident_id": "r", "station_id": "ozu-02", "window_start": windows[0]["start"]}
        made = await client.post("/api/v1/bookings", json=body, headers=ADMIN)
        assert made.status_code == 201, made.text
        off = await client.post("/api/v1/ports/demo-gw/tcp-1.1/1/disable", headers=ADMIN)
        assert off.status_code == 200
        after = (await client.get(f"/api/v1/bookings/{made.json()['id']}")).json()
        assert after["status"] == "moved"
        metrics = (await client.get("/metrics")).text
        assert 'chargenet_bookings{status="active"} 1.0' in metrics
        # the disable's change set reached every listener and left the journal
        assert 'chargenet_changes{what="pending"} 0.0' in metrics
        assert 'chargenet_changes{what="listener_errors"} 0.0' in metrics
