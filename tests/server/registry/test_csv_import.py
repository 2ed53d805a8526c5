"""CSV parsing is pure: rows in, models and located errors out."""

from server.registry.csv_import import RowError, parse_batteries_csv, parse_stations_csv
from server.registry.demo import demo_csv

HEADER = (
    "id,name_ja,name_en,latitude,longitude,address,municipality,counterpart_group,"
    "opens_at,closes_at,slot_minutes\n"
)


def test_a_good_file_parses_with_defaults_for_empty_cells() -> None:
    text = HEADER + (
        "ozu-01,大洲小学校,Ozu Elementary School,33.5068,132.5431,愛媛県大洲市大洲,大洲市,南予,,,\n"
        "ozu-06,平野公民館,Hirano Community Centre,33.54,132.58,,大洲市,,08:00,21:00,20\n"
    )
    parsed = parse_stations_csv(text)
    assert parsed.errors == ()
    first, second = (row.model for row in parsed.rows)
    assert [row.row for row in parsed.rows] == [2, 3]
    assert (first.opens_at, first.closes_at, first.slot_minutes) == (None, None, 30)
    assert first.counterpart_group == "南予"
    assert (second.opens_at, second.closes_at, second.slot_minutes) == ("08:00", "21:00", 20)
    assert second.counterpart_group is None


def test_errors_name_the_row_and_the_column() -> None:
    text = HEADER + (
        "ozu-01,大洲小学校,Ozu ES,33.5,132.5,,,,,,\n"
        "ozu-02,体育館,Gym,95.0,132.5,,,,,,\n"  # latitude out of range
        "ozu-03,中学校,JHS,33.5,132.5,,,,8:00,21:00,\n"  # not HH:MM
        "ozu-04,公民館,Centre,33.5,132.5,,,,08:00,,\n"  # opens without closing
        "ozu-05,,Centre,33.5,east,,,,,,7\n"  # missing name, bad longitude, bad slot
        "ozu-01,重複,Duplicate,33.5,132.5,,,,,,\n"  # id again
        "ozu-07,short row\n"
    )
    parsed = parse_stations_csv(text)
    located = {(e.row, e.column) for e in parsed.errors}
    assert located == {
        (3, "latitude"),
        (4, "opens_at"),
        (5, "closes_at"),
        (6, "name_ja"),
        (6, "longitude"),
        (6, "slot_minutes"),
        (7, "id"),
        (8, None),
    }
    assert [row.model.id for row in parsed.rows] == ["ozu-01"]
    duplicate = next(e for e in parsed.errors if e.row == 7)
    assert "row 2" in duplicate.message
    assert str(duplicate).startswith("row 7, column id:")


def test_header_errors_are_reported_on_row_one() -> None:
    parsed = parse_stations_csv("id,name_ja,lat,longitude\nx,y,1,2\n")
    assert set(parsed.errors) >= {
        RowError(1, "lat", "unknown column; known: " + HEADER.strip() + ",name_kana"),
        RowError(1, "name_en", "missing required column"),
        RowError(1, "latitude", "missing required column"),
    }
    assert parsed.rows == ()
    assert parse_stations_csv("").errors[0].row == 1


def test_byte_order_mark_and_blank_lines_are_tolerated() -> None:
    text = "\ufeff" + HEADER + "ozu-01,学校,School,33.5,132.5,,,,,,\n\n"
    parsed = parse_stations_csv(text)
    assert parsed.errors == ()
    assert len(parsed.rows) == 1


def test_battery_mappings_validate_gateway_unit_and_duplicates() -> None:
    text = (
        "gw_id,unit,station_id\n"
        "demo-gw,rs485-1.1,ozu-01\n"
        "demo gw,rs485-1.2,ozu-01\n"  # space in the gateway id
        "demo-gw,rs485-1.0,ozu-01\n"  # unit id 0
        "demo-gw,rs485-1.1,ozu-02\n"  # the same battery twice
        "demo-gw,tcp-1.1,OZU 2\n"  # bad station id
    )
    parsed = parse_batteries_csv(text)
    assert {(e.row, e.column) for e in parsed.errors} == {
        (3, "gw_id"),
        (4, "unit"),
        (5, "gw_id"),
        (6, "station_id"),
    }
    assert [(r.model.gw_id, r.model.unit) for r in parsed.rows] == [("demo-gw", "rs485-1.1")]


def test_the_shipped_demo_files_are_valid() -> None:
    stations = parse_stations_csv(demo_csv("demo_stations.csv") or "")
    assert stations.errors == ()
    assert len(stations.rows) == 12
    assert {row.model.municipality for row in stations.rows} == {"大洲市"}
    ids = {row.model.id for row in stations.rows}
    for name in ("demo_batteries.csv", "typhoon-night_batteries.csv"):
        mappings = parse_batteries_csv(demo_csv(name) or "")
        assert mappings.errors == ()
        assert {row.model.station_id for row in mappings.rows} <= ids
    assert len(parse_batteries_csv(demo_csv("typhoon-night_batteries.csv") or "").rows) == 24
