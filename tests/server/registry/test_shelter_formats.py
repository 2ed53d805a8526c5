"""Published shelter files read into stations without a database: the three formats, both
encodings, and errors named by the file's own row and column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.registry.csv_import import RowError
from server.registry.shelter_formats import ShelterFormat, decode, local_name, parse_shelters

SAMPLES = Path(__file__).parent / "shelters"
GSI_CSV = SAMPLES / "38207_2.csv"
GSI_GEOJSON = SAMPLES / "38207_2.geojson"
OPENDATA_CSV = SAMPLES / "382078_evacuation_space.csv"


@pytest.mark.parametrize(("fmt", "path"), [("gsi-csv", GSI_CSV), ("gsi-geojson", GSI_GEOJSON)])
def test_gsi_files_become_stations_keyed_by_the_common_id(fmt: ShelterFormat, path: Path) -> None:
    parsed = parse_shelters(path.read_bytes(), fmt)
    assert parsed.errors == ()
    specs = [row.model for row in parsed.rows]
    assert [s.id for s in specs] == ["e3820700000101", "e3820700000201", "e3820700000301",
                                     "e3820700000601"]  # fmt: skip
    first = specs[0]
    assert (first.name_ja, first.name_en, first.address, first.municipality) == (
        "大洲市立大洲小学校", "大洲市立大洲小学校", "愛媛県大洲市大洲", "大洲市")  # fmt: skip
    assert (first.latitude, first.longitude) == (33.5068, 132.5431)


def test_the_standard_dataset_becomes_stations_keyed_by_code_and_id() -> None:
    parsed = parse_shelters(OPENDATA_CSV.read_bytes(), "opendata-csv")
    assert OPENDATA_CSV.read_bytes().startswith(b"\xef\xbb\xbf")  # as often published
    assert parsed.errors == ()
    specs = {row.model.id: row.model for row in parsed.rows}
    assert list(specs) == ["38207-000101", "38207-000201", "38207-000901"]
    gym = specs["38207-000201"]
    assert (gym.name_ja, gym.name_en, gym.address, gym.municipality) == (
        "大洲市総合体育館", "Ozu City General Gymnasium", "愛媛県大洲市東大洲", "大洲市",
    )  # fmt: skip
    assert specs["38207-000901"].name_en == "久米公民館"  # no 名称_英字: the Japanese name
    assert gym.name_kana == "オオズシソウゴウタイイクカン"


def test_shift_jis_and_utf8_read_the_same() -> None:
    utf8 = GSI_CSV.read_bytes()
    sjis = utf8.decode("utf-8").encode("cp932")
    assert sjis != utf8
    assert parse_shelters(sjis, "gsi-csv") == parse_shelters(utf8, "gsi-csv")
    assert decode(b"\xff\xfe\xfa") is None


def test_a_bad_cell_is_named_by_the_files_row_and_column() -> None:
    lines = GSI_CSV.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("33.4996", "北緯33度")
    lines[4] = lines[4].replace("E3820700000601", "E3820300000601")  # known: 宇和島市
    lines.append(lines[1].replace("1,E3820700000101", "5,E9999900000101"))
    parsed = parse_shelters("\n".join(lines).encode(), "gsi-csv")
    assert [(e.row, e.column) for e in parsed.errors] == [(4, "緯度"), (6, "共通ID")]
    assert "99999" in parsed.errors[1].message
    assert {r.model.id: r.model.municipality for r in parsed.rows}["e3820300000601"] == "宇和島市"


def test_a_repeated_id_and_a_missing_column_are_reported() -> None:
    lines = OPENDATA_CSV.read_text(encoding="utf-8-sig").splitlines()
    repeated = parse_shelters("\n".join([*lines, lines[1]]).encode(), "opendata-csv")
    assert [str(e) for e in repeated.errors] == ["row 5, column ID: already given in row 2"]
    headless = parse_shelters("\n".join(lines).replace("緯度", "lat").encode(), "opendata-csv")
    assert headless.errors == (RowError(1, "緯度", "missing required column"),)


def test_a_feature_without_a_point_is_named_by_its_number() -> None:
    document = json.loads(GSI_GEOJSON.read_text(encoding="utf-8"))
    document["features"][1]["geometry"] = {"type": "Point", "coordinates": ["132.5", None]}
    document["features"][2]["geometry"]["coordinates"] = [132.5, 91.0]
    parsed = parse_shelters(json.dumps(document).encode(), "gsi-geojson")
    assert [(e.row, e.column) for e in parsed.errors] == [
        (2, "geometry.coordinates"), (3, "geometry.coordinates")]  # fmt: skip
    assert len(parsed.rows) == 2
    assert parse_shelters(b'{"type": "Feature"}', "gsi-geojson").errors[0].row == 1


def test_gsis_designated_shelter_list_reads_by_the_same_columns() -> None:
    """指定避難所 has other columns after 住所 than 指定緊急避難場所; only the shared ones count."""
    text = (
        "NO,共通ID,施設・場所名,住所,指定緊急避難場所との住所同一,"
        "その他市町村長が必要と認める事項,受入対象者,緯度,経度,備考\n"
        "1,P3820700000101,大洲市立大洲小学校,愛媛県大洲市大洲,1,,,33.5068,132.5431,\n"
    )
    parsed = parse_shelters(text.encode("cp932"), "gsi-csv")
    assert parsed.errors == ()
    assert [(r.row, r.model.id, r.model.municipality) for r in parsed.rows] == [
        (2, "p3820700000101", "大洲市")]  # fmt: skip


def test_the_published_emergency_space_layout_with_its_two_line_headers_is_read() -> None:
    """指定緊急避難場所一覧 as municipalities publish it: the publisher's columns are headed
    `市区町村コード` / `地方公共団体名` with `(設置主体)` on a second line of the cell."""
    path = SAMPLES / "382078_emergency_space_published_layout.csv"
    parsed = parse_shelters(path.read_bytes(), "opendata-csv")
    assert parsed.errors == ()
    specs = {row.model.id: row.model for row in parsed.rows}
    assert list(specs) == ["38207-e3820700000101", "38207-e3820700000201", "38442-e3844200000101"]
    assert specs["38442-e3844200000101"].municipality == "伊方町"  # from 地方公共団体名 (設置主体)
    ground = specs["38207-e3820700000101"]
    assert (ground.name_ja, ground.address, ground.municipality) == (
        "大洲市立大洲小学校グラウンド", "愛媛県大洲市大洲", "大洲市",
    )  # fmt: skip
    assert (ground.latitude, ground.longitude) == (33.5068, 132.5431)


@pytest.mark.parametrize(("published", "registry"), [
    ("愛媛県西宇和郡伊方町", "伊方町"), ("大阪府三島郡島本町", "島本町"),
    ("東京都千代田区", "千代田区"), ("京都府京都市", "京都市"),
    ("奈良県大和郡山市", "大和郡山市"), ("北海道札幌市", "札幌市"),
    ("神奈川県足柄上郡開成町", "開成町"), ("大洲市", "大洲市"), ("郡山市", "郡山市"),
])  # fmt: skip
def test_a_published_municipality_name_loses_its_prefecture_and_a_towns_district(
    published: str, registry: str
) -> None:
    assert local_name(published) == registry
