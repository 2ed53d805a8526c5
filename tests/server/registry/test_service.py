"""The registry against real SQLite and PostgreSQL: stations, mappings, imports, demo data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from server import audit
from server.access.operators import Operator
from server.db.models import Booking, Station, Unit
from server.db.session import Database
from server.errors import Conflict, Invalid, NotFound
from server.registry import (
    BatteryMapping,
    Registry,
    StationPatch,
    StationSpec,
    load_demo_registry,
)
from server.registry.crew_routes import route_rows
from tests.server.database import with_database

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
OZU = StationSpec(
    id="ozu-01", name_ja="大洲小学校", name_en="Ozu Elementary School", latitude=33.5068,
    longitude=132.5431, address="愛媛県大洲市大洲", municipality="大洲市", counterpart_group="南予",
)  # fmt: skip
SATO = Operator("hq-sato", "hq")
HEADER = (
    "id,name_ja,name_en,latitude,longitude,address,municipality,counterpart_group,"
    "opens_at,closes_at,slot_minutes\n"
)


def test_stations_are_created_updated_and_listed_with_audit(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        registry = Registry(db, clock=lambda: NOW)
        created = await registry.create_station(OZU, SATO)
        assert created.name_en == "Ozu Elementary School"
        assert created.batteries == ()
        with pytest.raises(Conflict):
            await registry.create_station(OZU, SATO)
        patch = StationPatch(opens_at="07:00", closes_at="22:00")
        updated = await registry.update_station("ozu-01", patch, SATO)
        assert (updated.opens_at, updated.closes_at, updated.name_ja) == (
            "07:00",
            "22:00",
            "大洲小学校",
        )
        with pytest.raises(Invalid):
            await registry.update_station("ozu-01", StationPatch(closes_at="07:00"), SATO)
        with pytest.raises(NotFound):
            await registry.get_station("nowhere")
        assert [s.id for s in await registry.list_stations(municipality="大洲市")] == ["ozu-01"]
        assert await registry.list_stations(municipality="宇和島市") == []
        async with db.transaction() as session:
            history = await audit.entries(session, subject="station:ozu-01")
        assert [e.action for e in history] == ["station.updated", "station.created"]
        assert history[0].detail == {"opens_at": [None, "07:00"], "closes_at": [None, "22:00"]}
        assert history[0].actor == "hq-sato"
        assert history[0].at == NOW

    with_database(database_url, scenario)


def test_batteries_are_mapped_before_the_gateway_reports_them(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        registry = Registry(db, clock=lambda: NOW)
        await registry.create_station(OZU, SATO)
        await registry.create_station(OZU.model_copy(update={"id": "ozu-02"}), SATO)
        mapping = BatteryMapping(gw_id="demo-gw", unit="rs485-1.1", station_id="ozu-01")
        battery = await registry.map_battery(mapping, SATO)
        assert (battery.gw_id, battery.unit, battery.station_id) == (
            "demo-gw",
            "rs485-1.1",
            "ozu-01",
        )
        assert await registry.map_battery(mapping, SATO) == battery  # idempotent
        station = await registry.get_station("ozu-01")
        assert [b.unit for b in station.batteries] == ["rs485-1.1"]
        with pytest.raises(NotFound):
            await registry.map_battery(mapping.model_copy(update={"station_id": "nope"}), SATO)

        async with db.transaction() as session:  # a resident holds a port on it
            session.add(Booking(id="b1", resident_id="r1", station_id="ozu-01",
                                window_start=NOW, unit_pk=battery.unit_pk, port=1,
                                ticket_code="K7Q2", created_at=NOW, updated_at=NOW))  # fmt: skip
        moved = mapping.model_copy(update={"station_id": "ozu-02"})
        with pytest.raises(Conflict) as refused:
            await registry.map_battery(moved, SATO)
        assert refused.value.code == "battery_has_bookings"
        async with db.transaction() as session:
            booking = await session.get(Booking, "b1")
            assert booking is not None
            booking.status = "cancelled"
        assert (await registry.map_battery(moved, SATO)).station_id == "ozu-02"
        unmapped = await registry.unmap_battery("demo-gw", "rs485-1.1", SATO)
        assert unmapped.station_id is None
        assert [b.unit for b in await registry.list_batteries()] == ["rs485-1.1"]
        with pytest.raises(NotFound):
            await registry.unmap_battery("demo-gw", "rs485-1.9", SATO)
        async with db.transaction() as session:
            history = await audit.entries(session, subject="battery:demo-gw/rs485-1.1")
        assert [(e.action, e.detail.get("station_id")) for e in reversed(history)] == [
            ("battery.mapped", "ozu-01"),
            ("battery.mapped", "ozu-02"),
            ("battery.unmapped", "ozu-02"),
        ]

    with_database(database_url, scenario)


def test_a_csv_import_with_any_bad_row_changes_nothing(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        registry = Registry(db, clock=lambda: NOW)
        bad = HEADER + "ozu-01,学校,School,33.5,132.5,,,,,,\nozu-02,体育館,Gym,33.5,999,,,,,,\n"
        report = await registry.import_stations_csv(bad, SATO)
        assert not report.ok
        assert [(e.row, e.column) for e in report.errors] == [(3, "longitude")]
        assert await registry.list_stations() == []

        good = HEADER + "ozu-01,学校,School,33.5,132.5,,,,,,\nozu-02,体育館,Gym,33.5,132.6,,,,,,\n"
        report = await registry.import_stations_csv(good, SATO)
        assert report.ok
        assert report.created == ("ozu-01", "ozu-02")
        again = await registry.import_stations_csv(good.replace("Gym", "Gymnasium"), SATO)
        assert (again.updated, again.unchanged) == (("ozu-02",), ("ozu-01",))

        mappings = "gw_id,unit,station_id\ngw-1,rs485-1.1,ozu-01\ngw-1,rs485-1.2,ozu-09\n"
        report = await registry.import_batteries_csv(mappings, SATO)
        assert [(e.row, e.column) for e in report.errors] == [(3, "station_id")]
        assert await registry.list_batteries() == []
        report = await registry.import_batteries_csv(mappings.replace("ozu-09", "ozu-02"), SATO)
        assert report.created == ("gw-1/rs485-1.1", "gw-1/rs485-1.2")

    with_database(database_url, scenario)


def test_the_demo_registry_loads_once_and_again_changes_nothing(database_url: str) -> None:
    async def scenario(db: Database) -> None:
        first = await load_demo_registry(db, clock=lambda: NOW)
        assert len(first.stations.created) == 12
        assert first.batteries is not None
        assert first.batteries.created == (
            "demo-gw/rs485-1.1", "demo-gw/rs485-1.2", "demo-gw/tcp-1.1",
        )  # fmt: skip
        assert first.routes.created == ("municipality:大洲市", "group:南予", "hq")
        async with db.transaction() as session:
            entries_before = len(await audit.entries(session, limit=1000))
        second = await load_demo_registry(db, clock=lambda: NOW)
        assert second.stations.created == () and second.stations.updated == ()
        assert second.batteries is not None and len(second.batteries.unchanged) == 3
        assert second.routes.created == () and len(second.routes.unchanged) == 3
        async with db.transaction() as session:
            assert len(await audit.entries(session, limit=1000)) == entries_before
            stations = list(await session.scalars(select(Station)))
            assert len(stations) == 12
            assert {s.municipality for s in stations} == {"大洲市"}
            placed = {(u.unit, u.station_id) for u in await session.scalars(select(Unit))}
            routes = {(r.scope, r.key): r.channel_id for r in await route_rows(session)}
        # the channels the demo's LINE WORKS sandbox has (chargenet.platforms.DEMO_CHANNELS)
        assert routes == {("municipality", "大洲市"): "crew-ozu", ("group", "南予"): "group-nanyo",
                          ("hq", ""): "hq-ehime"}  # fmt: skip
        assert placed == {("rs485-1.1", "ozu-01"), ("rs485-1.2", "ozu-01"), ("tcp-1.1", "ozu-02")}

        typhoon = await load_demo_registry(db, scenario="firmware_sim/scenarios/typhoon-night.toml")
        assert typhoon.batteries is not None and len(typhoon.batteries.created) == 24
        custom = await load_demo_registry(db, scenario="my-own.toml")
        assert custom.batteries is None

    with_database(database_url, scenario)
