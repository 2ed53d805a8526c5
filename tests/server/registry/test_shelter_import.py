"""Published shelter files into the database (SQLite and PostgreSQL): all rows or none,
and a newer edition of the same file updates the stations it names in place."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from server import audit
from server.access.operators import Operator
from server.db.models import Station
from server.db.session import Database
from server.errors import Forbidden
from server.registry import Registry, StationPatch
from server.registry.shelter_formats import ShelterFormat
from tests.server.database import with_database
from tests.server.registry.test_shelter_formats import GSI_CSV, GSI_GEOJSON, OPENDATA_CSV

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SATO = Operator("hq-sato", "hq")
SAMPLES: list[tuple[ShelterFormat, Path]] = [
    ("gsi-csv", GSI_CSV), ("gsi-geojson", GSI_GEOJSON), ("opendata-csv", OPENDATA_CSV)]  # fmt: skip


async def _stations(db: Database) -> list[tuple[str, str, float, str]]:
    async with db.transaction() as session:
        rows = await session.scalars(select(Station).order_by(Station.id))
        return [(r.id, r.name_ja, r.latitude, r.municipality) for r in rows]


def test_each_published_format_imports_and_reimports_in_place(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        registry = Registry(db, clock=lambda: NOW)
        for fmt, path in (SAMPLES[0], SAMPLES[2]):
            report = await registry.import_shelters(path.read_bytes(), fmt, SATO)
            assert report.ok and report.created and not report.updated, (fmt, report.errors)
        # GSI's GeoJSON is the same list as its CSV: its stations are there, unchanged
        again = await registry.import_shelters(GSI_GEOJSON.read_bytes(), "gsi-geojson", SATO)
        assert again.ok and again.created == again.updated == () and len(again.unchanged) == 4
        assert len(await _stations(db)) == 4 + 3
        gym, renamed_gym = "大洲市総合体育館", "大洲市総合体育館（新）"
        newer = GSI_CSV.read_text(encoding="utf-8").replace(gym, renamed_gym)
        edition = await registry.import_shelters(newer.encode("cp932"), "gsi-csv", SATO)
        assert edition.updated == ("e3820700000201",) and edition.created == ()
        assert ("e3820700000201", renamed_gym, 33.5146, "大洲市") in await _stations(db)
        async with db.transaction() as session:
            history = await audit.entries(session, subject="station:e3820700000201")
        assert [e.action for e in history] == ["station.updated", "station.created"]
        renamed = [gym, renamed_gym]
        assert history[0].detail == {"name_ja": renamed, "name_en": renamed}  # no English given

    with_database(database_url, scenario)


def test_a_reimport_keeps_what_the_file_does_not_say(database_url: str) -> None:
    """Hours, slots, group and an English name set by an operator survive a newer edition."""

    async def scenario(db: Database) -> None:
        registry = Registry(db, clock=lambda: NOW)
        assert (await registry.import_shelters(GSI_CSV.read_bytes(), "gsi-csv", SATO)).ok
        patch = StationPatch(
            name_en="Hirano Community Centre", opens_at="08:00", closes_at="21:00",
            slot_minutes=20, counterpart_group="南予",
        )  # fmt: skip
        await registry.update_station("e3820700000601", patch, SATO)
        newer = GSI_CSV.read_text(encoding="utf-8").replace("野田", "野田1番地")
        report = await registry.import_shelters(newer.encode(), "gsi-csv", SATO)
        assert report.updated == ("e3820700000601",), report
        station = await registry.get_station("e3820700000601")
        assert (station.address, station.name_ja, station.name_en) == (
            "愛媛県大洲市平野町野田1番地", "平野公民館", "Hirano Community Centre")  # fmt: skip
        assert (station.opens_at, station.closes_at, station.slot_minutes) == ("08:00", "21:00", 20)
        assert station.counterpart_group == "南予"
        again = await registry.import_shelters(newer.encode(), "gsi-csv", SATO)
        assert again.updated == () and len(again.unchanged) == 4

    with_database(database_url, scenario)


def test_a_malformed_file_names_row_and_column_and_changes_nothing(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        registry = Registry(db, clock=lambda: NOW)
        assert (await registry.import_shelters(GSI_CSV.read_bytes(), "gsi-csv", SATO)).ok
        before = await _stations(db)
        text = OPENDATA_CSV.read_text(encoding="utf-8-sig").replace("132.5452", "east")
        report = await registry.import_shelters(text.encode(), "opendata-csv", SATO)
        assert [str(e) for e in report.errors] == [
            "row 4, column 経度: Input should be a valid number, unable to parse string as a number"
        ]
        assert await _stations(db) == before
        async with db.transaction() as session:
            assert await audit.entries(session, subject="station:38207-000101") == []

    with_database(database_url, scenario)


def test_a_municipality_cannot_load_anothers_shelters(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        registry = Registry(db, clock=lambda: NOW)
        ozu = Operator("ozu-tanaka", "municipality", "大洲市")
        own = await registry.import_shelters(GSI_CSV.read_bytes(), "gsi-csv", ozu)
        assert len(own.created) == 4
        before = await _stations(db)
        # one row of 宇和島市 (38203) in an otherwise own file: nothing of it is written
        mixed = GSI_CSV.read_text(encoding="utf-8").replace("E3820700000601", "E3820300000601")
        mixed = mixed.replace("平野公民館", "平野公民館（改）").replace("総合体育館", "体育館")
        with pytest.raises(Forbidden):
            await registry.import_shelters(mixed.encode(), "gsi-csv", ozu)
        assert await _stations(db) == before

    with_database(database_url, scenario)
