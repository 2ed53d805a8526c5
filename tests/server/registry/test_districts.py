"""Districts per municipality: put as a list, imported from CSV, within the operator's reach,
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from server.access.operators import Operator
from server.db.models import AuditEntry
from server.db.session import Database
from server.errors import Forbidden, Invalid
from server.registry.districts import Districts
from tests.server.database import with_database

T0 = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
HQ = Operator("hq-1", "hq")
OZU = Operator("ozu-staff", "municipality", "大洲市")


def test_a_list_replaces_the_last_in_order_within_reach(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        districts = Districts(db, lambda: T0)
        stored = await districts.put("大洲市", [" 肱南", "大洲", "菅田"], OZU)
        assert stored == ["肱南", "大洲", "菅田"]
        assert await districts.names("大洲市") == ["肱南", "大洲", "菅田"]
        await districts.put("大洲市", ["大洲", "肱南"], OZU)
        await districts.put("大洲市", ["大洲", "肱南"], OZU)  # the same again: nothing recorded
        assert await districts.names("大洲市") == ["大洲", "肱南"]
        with pytest.raises(Forbidden):
            await districts.put("内子町", ["内子"], OZU)
        for bad in (["大洲", "大洲"], [""], ["あ" * 21]):
            with pytest.raises(Invalid):
                await districts.put("大洲市", bad, HQ)
        assert await districts.names("内子町") == []
        async with db.transaction() as session:
            actions = (await session.scalars(select(AuditEntry.action))).all()
        assert list(actions) == ["districts.set", "districts.set"]

    with_database(database_url, scenario)


def test_a_csv_file_sets_each_municipality_named_all_rows_or_none(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        districts = Districts(db, lambda: T0)
        await districts.put("大洲市", ["大洲"], HQ)
        text = "municipality,district\n大洲市,大洲\n大洲市,菅田\n内子町,内子\n"
        report = await districts.import_csv(text, HQ)
        assert (report.created, report.updated) == (("内子町",), ("大洲市",))
        assert await districts.names("大洲市") == ["大洲", "菅田"]
        again = await districts.import_csv(text, HQ)
        assert again.unchanged == ("大洲市", "内子町")
        bad = await districts.import_csv("municipality,district\n大洲市,\n内子町,五十崎\n", HQ)
        assert str(bad.errors[0]).startswith("row 2, column district")
        assert await districts.names("内子町") == ["内子"]
        with pytest.raises(Forbidden):  # another municipality's row: nothing changes
            await districts.import_csv("municipality,district\n大洲市,肱南\n内子町,五十崎\n", OZU)
        assert await districts.names("大洲市") == ["大洲", "菅田"]

    with_database(database_url, scenario)
