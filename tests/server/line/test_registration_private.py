"""A resident registered over the signed webhook, on SQLite and PostgreSQL: the row holds
the minimum (at a shelter: its station, taken from the poster scanned), and no public page,
station view or open data shows any of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from server.api.app import create_app
from server.db.models import ResidentRegistration
from server.line.prefill import poster_message
from server.registry import load_demo_registry
from tests.server.api.conftest import ADMIN, TOKEN, live_ports
from tests.server.line.conftest import Resident, line_settings

pytestmark = pytest.mark.anyio

USER = "U" + "5e" * 16
DISTRICT = "秘密の里地区"
"""A district name that appears nowhere else."""
NEWS = "秘密の炊き出し 12:00"
"""An announcement's text, likewise."""
SHELTER_NEWS = "秘密の毛布配布 15:00"
"""An announcement to the shelter the resident registered at."""
PUBLIC = ("/", "/public", "/announcements", "/page-config.json", "/api/v1/stations",
          "/api/v1/stations/ozu-01", "/opendata/v1/stations.geojson", "/opendata/v1/stations.csv",
          "/opendata/v1/stations/ozu-01.json")  # fmt: skip


@pytest.fixture
async def admin_app(database_url: str) -> AsyncIterator[FastAPI]:
    application = create_app(line_settings(database_url, admin_token=SecretStr(TOKEN)))
    async with application.router.lifespan_context(application):
        await load_demo_registry(application.state.services.db)
        await live_ports(application)
        yield application


async def test_a_registration_is_stored_minimally_and_shown_nowhere_public(
    admin_app: FastAPI,
) -> None:
    transport = httpx.ASGITransport(app=admin_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        put = await client.put("/api/v1/districts", params={"municipality": "大洲市"},
                               json={"districts": ["大洲", DISTRICT]}, headers=ADMIN)  # fmt: skip
        assert put.status_code == 200, put.text
        resident = Resident(admin_app, client, USER)
        for text in (poster_message("ozu-01"), "登録", "はい", "大洲市", DISTRICT, "避難所"):
            await resident.text(text)  # the poster's QR first: its shelter, not asked
        [done] = await resident.text("医療機器を使用")
        assert "登録しました" in done.texts[0] and DISTRICT in done.texts[1]
        assert "滞在先：避難所（大洲市立大洲小学校）" in done.texts[1]
        async with admin_app.state.services.db.transaction() as session:
            [row] = (await session.scalars(select(ResidentRegistration))).all()
            assert (row.user_id, row.municipality, row.district, row.stay, row.need_requested,
                    row.station_id) == (USER, "大洲市", DISTRICT, "shelter", "medical_device",
                                        "ozu-01")  # fmt: skip
        news = {"municipality": "大洲市", "districts": [DISTRICT], "text_ja": NEWS,
                "text_en": "Food at 12:00"}  # fmt: skip
        made = await client.post("/api/v1/announcements", json=news, headers=ADMIN)
        number = made.json()["announcement"]["id"]
        assert made.json()["recipients"] == 1 and USER not in made.text
        assert (await client.post(f"/api/v1/announcements/{number}/send", headers=ADMIN)).is_success
        to_shelter = {**news, "districts": [], "stations": ["ozu-01"], "text_ja": SHELTER_NEWS}
        made = await client.post("/api/v1/announcements", json=to_shelter, headers=ADMIN)
        assert made.json()["per_target"]["stations"] == {"ozu-01": 1}
        number = made.json()["announcement"]["id"]
        assert (await client.post(f"/api/v1/announcements/{number}/send", headers=ADMIN)).is_success
        [latest] = await resident.text("お知らせ")
        assert f"大洲市 {DISTRICT}への最新のお知らせ" in latest.texts[0] and NEWS in latest.texts[0]
        assert SHELTER_NEWS in latest.texts[0]
        assert (await client.get("/api/v1/announcements")).status_code == 401
        for path in PUBLIC:
            page = await client.get(path)
            assert page.status_code == 200, path
            for secret in (USER, DISTRICT, "medical_device", "need_requested", NEWS, SHELTER_NEWS):
                assert secret not in page.text, (path, secret)
        [gone] = await resident.text("登録削除")
        assert "削除しました" in gone.texts[0]
        [unregistered] = await resident.text("news")
        assert "“register”" in unregistered.texts[0]
        async with admin_app.state.services.db.transaction() as session:
            assert (await session.scalars(select(ResidentRegistration))).all() == []
