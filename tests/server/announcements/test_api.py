"""The announcements API on SQLite in-process: the preview's counts per target and what each
language reads, a drill's announcement only to residents in drills, bad input named by its
field, operators' reach, and the delivery counts before a send is delivered (no LINE
credentials here: the batches wait in the outbox)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from server.db.models import OutboxMessage, Unit
from tests.server.announcements.residents import Group, book, seed
from tests.server.api.conftest import ADMIN
from tests.server.api.test_operators import make

pytestmark = pytest.mark.anyio

OZU = "大洲市"
BODY: dict[str, Any] = {
    "municipality": OZU,
    "text_ja": "炊き出し 12:00",
    "text_en": "Food at 12:00",
}


async def districts(client: httpx.AsyncClient) -> None:
    put = await client.put("/api/v1/districts", params={"municipality": OZU},
                           json={"districts": ["肱南", "大洲", "菅田"]}, headers=ADMIN)  # fmt: skip
    assert put.status_code == 200


async def residents(app: FastAPI) -> dict[str, list[str]]:
    db = app.state.services.db
    found = {
        "konan_shelter": await seed(db, Group(7, district="肱南", stay="shelter")),
        "konan_car_en": await seed(db, Group(3, district="肱南", stay="car", language="en")),
        "ozu_car": await seed(db, Group(4, district="大洲", stay="car")),
        "konan_blocked": await seed(db, Group(2, district="肱南", following=False)),
        "drill_konan": await seed(db, Group(5, district="肱南", drill_opt_in=True)),
        "unregistered": await seed(db, Group(6, registered=False)),
        "other_town": await seed(db, Group(9, municipality="内子町", district="肱南")),
    }
    async with db.transaction() as session:
        unit = (await session.scalars(select(Unit).where(Unit.station_id == "ozu-01"))).first()
        assert unit is not None
        pk = unit.id
    for port, user in enumerate([*found["unregistered"][:2], found["konan_shelter"][0]], 1):
        await book(db, user, "ozu-01", pk, port)
    return found


async def test_the_preview_counts_each_target_and_shows_both_languages(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await districts(client)
    await residents(app)
    body = {**BODY, "districts": ["肱南", "菅田"], "stays": ["shelter", "car"],
            "stations": ["ozu-01", "ozu-02"]}  # fmt: skip
    created = await client.post("/api/v1/announcements", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    preview = created.json()
    # 肱南: 7 shelter + 3 car + 5 in drills (shelter); 2 blocked left out; 2 unregistered
    # booked at ozu-01 (the third booking is a 肱南 resident, counted once).
    assert preview["recipients"] == 17 and preview["languages"] == {"ja": 14, "en": 3}
    assert preview["per_target"] == {
        "districts": {"肱南": 15, "菅田": 0}, "stays": {"shelter": 12, "car": 3},
        "stations": {"ozu-01": 3, "ozu-02": 0},
    }  # fmt: skip
    assert (preview["unfollowed"], preview["not_in_drill"], preview["batches"]) == (2, 0, 2)
    assert preview["messages"] == {
        "ja": {"type": "text", "text": "【お知らせ】大洲市\n炊き出し 12:00"},
        "en": {"type": "text", "text": "[Announcement] 大洲市\nFood at 12:00"},
    }
    assert "U" not in json.dumps(preview["per_target"])  # counts, never user ids
    number = preview["announcement"]["id"]
    again = await client.get(f"/api/v1/announcements/{number}/preview", headers=ADMIN)
    assert again.json()["recipients"] == 17
    listed = (await client.get("/api/v1/announcements", headers=ADMIN)).json()["announcements"]
    assert [(a["id"], a["sent_at"], a["deliveries"]["recipients"]) for a in listed] == [
        (number, None, 0)]  # fmt: skip

    sent = await client.post(f"/api/v1/announcements/{number}/send", headers=ADMIN)
    assert sent.status_code == 200 and sent.json()["sent_at"] is not None
    listed = (await client.get("/api/v1/announcements", headers=ADMIN)).json()["announcements"]
    assert listed[0]["deliveries"] == {"recipients": 17, "batches": 2, "sent": 0, "failed": 0,
                                       "pending": 17}  # fmt: skip
    async with app.state.services.db.transaction() as session:
        mine = select(OutboxMessage).where(OutboxMessage.source == f"announcement:{number}")
        batches = list(await session.scalars(mine))
    assert sorted(len(b.recipients or []) for b in batches) == [3, 14]
    assert all(b.target.startswith("multicast:") for b in batches)


async def test_a_drills_announcement_goes_only_to_residents_in_drills(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await districts(client)
    found = await residents(app)
    drill = await client.post("/api/v1/drills", json={
        "name": "訓練", "scenario": "quiet", "municipalities": [OZU], "units": ["line-1.1"]},
        headers=ADMIN)  # fmt: skip
    assert drill.status_code == 201, drill.text
    body = {**BODY, "districts": ["肱南"], "drill_id": drill.json()["id"]}
    preview = (await client.post("/api/v1/announcements", json=body, headers=ADMIN)).json()
    assert (preview["recipients"], preview["not_in_drill"], preview["unfollowed"]) == (5, 10, 2)
    assert preview["messages"]["ja"]["text"].startswith("【訓練】【お知らせ】大洲市")
    assert preview["messages"]["en"]["text"].startswith("[DRILL] [Announcement] 大洲市")
    number = preview["announcement"]["id"]
    assert (await client.post(f"/api/v1/announcements/{number}/send", headers=ADMIN)).is_success
    async with app.state.services.db.transaction() as session:
        (batch,) = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.source == f"announcement:{number}")
        )
    assert sorted(batch.recipients or []) == sorted(found["drill_konan"])
    ended = await client.post(f"/api/v1/drills/{drill.json()['id']}/end", headers=ADMIN)
    assert ended.is_success
    late = await client.post("/api/v1/announcements", json=body, headers=ADMIN)
    assert (late.status_code, late.json()["error"]["field"]) == (422, "drill_id")


@pytest.mark.parametrize(("change", "field"), [
    ({"districts": ["肱北"]}, "districts"),
    ({"districts": []}, "districts"),  # no target at all
    ({"districts": ["肱南"], "text_ja": ""}, "text_ja"),
    ({"districts": ["肱南"], "text_ja": "   "}, "text_ja"),
    ({"districts": ["肱南"], "text_en": None}, "text_en"),  # None: left out
    ({"districts": ["肱南"], "text_en": "x" * 2001}, "text_en"),
    ({"stations": ["nowhere-9"]}, "stations"),
    ({"stays": ["boat"]}, "stays.0"),
    ({"municipality": "どこか町", "stays": ["car"]}, "municipality"),
    ({"districts": ["肱南"], "drill_id": 99}, "drill_id"),
])  # fmt: skip
async def test_bad_input_is_refused_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    await districts(client)
    body = {k: v for k, v in {**BODY, **change}.items() if v is not None}
    refused = await client.post("/api/v1/announcements", json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("invalid", field)
    assert field.split(".")[0] in error["message"]
    listed = (await client.get("/api/v1/announcements", headers=ADMIN)).json()
    assert listed == {"announcements": []}


async def test_operators_announce_within_their_reach(client: httpx.AsyncClient) -> None:
    await districts(client)
    ozu = await make(client, "ozu-sato", "municipality", OZU)
    uchiko = await make(client, "uchiko-ito", "municipality", "内子町")
    viewer = await make(client, "watcher", "viewer")
    body = {**BODY, "stays": ["car"]}
    created = await client.post("/api/v1/announcements", json=body, headers=ozu)
    assert created.status_code == 201
    number = created.json()["announcement"]["id"]
    assert created.json()["announcement"]["created_by"] == "ozu-sato"
    other = await client.post("/api/v1/announcements", json=body, headers=uchiko)
    assert other.status_code == 403
    foreign = await client.post(f"/api/v1/announcements/{number}/send", headers=uchiko)
    assert foreign.status_code == 403
    assert (await client.get("/api/v1/announcements", headers=uchiko)).json() == {
        "announcements": []}  # fmt: skip
    looked = await client.post(f"/api/v1/announcements/{number}/send", headers=viewer)
    assert looked.status_code == 403
    assert (await client.post(f"/api/v1/announcements/{number}/send", headers=ozu)).is_success
    missing = await client.post("/api/v1/announcements/999/send", headers=ozu)
    assert missing.status_code == 404


async def test_a_shelter_reaches_those_registered_there_and_those_booked_there_once_each(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await districts(client)
    db = app.state.services.db
    at_01 = await seed(db, Group(4, district="大洲", station_id="ozu-01"))
    at_02 = await seed(db, Group(2, district="菅田", station_id="ozu-02", language="en"))
    elsewhere = await seed(db, Group(3, district="大洲"))  # a shelter with no station
    walk_in = await seed(db, Group(2, registered=False))
    async with db.transaction() as session:
        units = {u.station_id: u.id for u in await session.scalars(select(Unit))}
    for port, user in enumerate([*walk_in, at_01[0]], 1):  # at_01[0]: registered and booked
        await book(db, user, "ozu-01", units["ozu-01"], port)
    await book(db, at_02[0], "ozu-01", units["ozu-01"], 4)  # registered at 02, booked at 01
    body = {**BODY, "stations": ["ozu-01", "ozu-02"]}
    created = await client.post("/api/v1/announcements", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    preview = created.json()
    assert preview["per_target"]["stations"] == {"ozu-01": 7, "ozu-02": 2}
    assert preview["recipients"] == 8 and preview["languages"] == {"ja": 6, "en": 2}
    alone = await client.post("/api/v1/announcements", json={**BODY, "stations": ["ozu-02"]},
                              headers=ADMIN)  # fmt: skip
    assert alone.json()["recipients"] == 2
    number = preview["announcement"]["id"]
    assert (await client.post(f"/api/v1/announcements/{number}/send", headers=ADMIN)).is_success
    async with db.transaction() as session:
        mine = select(OutboxMessage).where(OutboxMessage.source == f"announcement:{number}")
        batches = list(await session.scalars(mine))
    sent_to = [u for b in batches for u in b.recipients or []]
    assert sorted(sent_to) == sorted({*at_01, *at_02, *walk_in})  # each once
    assert not set(sent_to) & set(elsewhere)
    assert sorted(b.recipient_count or 0 for b in batches) == [2, 6]
