"""`find_stations` on both stores: what a resident types finds a station by its id, its
name in either language, its reading (kana, as published, typed in hiragana too), or its
place; never a drill's twin."""

from __future__ import annotations

import asyncio

from server.db.migrate import upgrade
from server.db.models import Station
from server.db.session import Database
from server.line.stations import find_stations, katakana


def test_kana_typed_either_way_finds_the_station_by_its_reading(database_url: str) -> None:
    upgrade(database_url)

    async def scenario() -> None:
        db = Database(database_url)
        try:
            async with db.transaction() as session:
                session.add_all([
                    Station(id="ozu-02", name_ja="大洲市総合体育館", name_en="Ozu Gym",
                            name_kana="オオズシソウゴウタイイクカン", latitude=33.5,
                            longitude=132.5, municipality="大洲市"),
                    Station(id="ozu-03", name_ja="喜多小学校", name_en="Kita ES", latitude=33.51,
                            longitude=132.53, municipality="大洲市"),
                ])  # fmt: skip
            async with db.transaction() as session:
                assert [s.id for s in await find_stations(session, "そうごうたいいく")] == [
                    "ozu-02"
                ]
                assert [s.id for s in await find_stations(session, "ｿｳｺﾞｳ")] == ["ozu-02"]
                assert [s.id for s in await find_stations(session, "タイイクカン")] == ["ozu-02"]
                assert await find_stations(session, "しょうがっこう") == []  # no reading given
        finally:
            await db.dispose()

    asyncio.run(scenario())


def test_katakana_turns_hiragana_and_half_width_kana_and_leaves_the_rest() -> None:
    assert katakana("おおず ﾀｲｲｸｶﾝ 1") == "オオズ タイイクカン 1"
