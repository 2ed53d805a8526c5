"""Shelter lists as municipalities already publish them, read into station specs.

A municipality should not retype its shelters into our CSV: it loads the file it already
publishes. Three formats are read:

- `gsi-csv`: GSI's (国土地理院) 指定緊急避難場所 / 指定避難所 CSV, header
  `NO,共通ID,施設・場所名,住所,...,緯度,経度,備考` (the hazard flags and the other columns
  are not stations' business and are ignored). Often Shift_JIS.
- `gsi-geojson`: the same data as a FeatureCollection of Points, the CSV's columns as
  properties. Errors are numbered by feature (the first feature is row 1).
- `opendata-csv`: the Digital Agency's 自治体標準オープンデータセット 指定緊急避難場所一覧 /
  指定避難所一覧 (`全国地方公共団体コード,ID,地方公共団体名,名称,名称_カナ,名称_英字,
  所在地_全国地方公共団体コード,...,所在地_連結表記,...,緯度,経度,...`); the older 住所
  column is read when 所在地_連結表記 is absent. Often UTF-8 with a BOM.

Pure like `csv_import`: bytes in, specs and located errors out, the service writes. The
station id is the source's own (GSI 共通ID, or the dataset's municipality code and ID), so
importing a newer edition of the same file updates stations in place. The municipality
comes from the municipality code (in GSI's 共通ID `E38207...`, or the dataset's code
columns) through `MUNICIPALITIES`, or from 地方公共団体名 when the file has it. Station
names in English: 名称_英字 when given, else the Japanese name; 名称_カナ is the reading.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from pydantic import ValidationError

from server.registry.csv_import import HEADER_ROW, ParsedCsv, ParsedRow, RowError, row_errors
from server.registry.models import STATION_ID_RE, StationSpec

ShelterFormat = Literal["gsi-csv", "gsi-geojson", "opendata-csv"]
SHELTER_FORMATS: Final[tuple[ShelterFormat, ...]] = get_args(ShelterFormat)

MUNICIPALITIES: Final = {
    "38203": "宇和島市",
    "38204": "八幡浜市",
    "38207": "大洲市",
    "38214": "西予市",
    "38422": "内子町",
}
"""全国地方公共団体コード (five digits, without the check digit) to the name the registry
and operators' reach use, for the municipalities we serve. Extend it with a new one."""

GSI_ID_RE: Final = re.compile(r"^[A-Za-z]?(\d{5})")
"""GSI's 共通ID begins with the municipality code: `E3820700001` is in 38207 (Ozu)."""
CODE_RE: Final = re.compile(r"^\d{5,6}$")


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where a format keeps what a station needs; `address` is the first one present."""

    id: str
    name: str
    address: tuple[str, ...]
    latitude: str
    longitude: str
    code: tuple[str, ...] = ()
    municipality_name: str | None = None
    name_en: str | None = None
    kana: str | None = None


GSI: Final = _Columns(id="共通ID", name="施設・場所名", address=("住所",), latitude="緯度",
                      longitude="経度")  # fmt: skip
OPENDATA: Final = _Columns(
    id="ID", name="名称", address=("所在地_連結表記", "住所"), latitude="緯度", longitude="経度",
    code=("所在地_全国地方公共団体コード", "全国地方公共団体コード"),
    municipality_name="地方公共団体名", name_en="名称_英字", kana="名称_カナ",
)  # fmt: skip
GEOMETRY: Final = "geometry.coordinates"
PREFECTURE_RE: Final = re.compile(r"^(?:北海道|東京都|(?:京都|大阪)府|.{2,3}県)")
DISTRICT_RE: Final = re.compile(r"^.+?郡")
SETTER_SUFFIX: Final = "(設置主体)"
"""What some files add to the publisher's own columns (市区町村コード, 地方公共団体名)."""


def decode(data: bytes) -> str | None:
    """UTF-8 with or without a BOM, else Shift_JIS (Windows' cp932, as GSI's CSV comes);
    None when it is neither."""
    for encoding in ("utf-8-sig", "cp932"):
        with suppress(UnicodeDecodeError):
            return data.decode(encoding)
    return None


def parse_shelters(data: bytes, fmt: ShelterFormat) -> ParsedCsv[StationSpec]:
    """Any published format; duplicate ids are reported on the later row."""
    text = decode(data)
    if text is None:
        return ParsedCsv(errors=(RowError(HEADER_ROW, None, "neither UTF-8 nor Shift_JIS"),))
    return PARSERS[fmt](text)


def parse_gsi_csv(text: str) -> ParsedCsv[StationSpec]:
    return _stations(*_csv_records(text, GSI), GSI, _gsi_code)


def parse_opendata_csv(text: str) -> ParsedCsv[StationSpec]:
    return _stations(*_csv_records(text, OPENDATA), OPENDATA, _opendata_code)


def parse_gsi_geojson(text: str) -> ParsedCsv[StationSpec]:
    """Coordinates from each Point (longitude first, as GeoJSON has them)."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        return ParsedCsv(errors=(RowError(HEADER_ROW, None, f"not JSON: {exc}"),))
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list) or document.get("type") != "FeatureCollection":
        return ParsedCsv(errors=(RowError(HEADER_ROW, None, "not a GeoJSON FeatureCollection"),))
    records: list[tuple[int, dict[str, str]]] = []
    errors: list[RowError] = []
    for number, feature in enumerate(features, start=1):
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(properties, dict):
            errors.append(RowError(number, "properties", "a Feature with properties expected"))
            continue
        cells = {str(k): "" if v is None else str(v).strip() for k, v in properties.items()}
        point = _point(feature.get("geometry"))
        if point is None:
            errors.append(RowError(number, GEOMETRY, "a Point [longitude, latitude] expected"))
            continue
        cells[GSI.longitude], cells[GSI.latitude] = (str(value) for value in point)
        records.append((number, cells))
    return _stations(records, errors, GSI, _gsi_code, located={"latitude": GEOMETRY,
                                                               "longitude": GEOMETRY})  # fmt: skip


NOT_PUBLISHED: Final = ("counterpart_group", "opens_at", "closes_at", "slot_minutes")
"""Station fields none of these files carries: an operator sets them, a re-import keeps them."""


def published_over(stored: StationSpec, published: StationSpec) -> StationSpec:
    """A newer edition of the file over a station already loaded: what the file says wins,
    what it does not say is kept (the operator's hours, and an English name given since
    where the file has none and the Japanese name stood in)."""
    kept = {name: getattr(stored, name) for name in NOT_PUBLISHED}
    if published.name_en == published.name_ja and stored.name_en != stored.name_ja:
        kept["name_en"] = stored.name_en
    if not published.name_kana:  # a file without readings keeps the ones given
        kept["name_kana"] = stored.name_kana
    return published.model_copy(update=kept)


PARSERS: Final[Mapping[ShelterFormat, Callable[[str], ParsedCsv[StationSpec]]]] = {
    "gsi-csv": parse_gsi_csv,
    "gsi-geojson": parse_gsi_geojson,
    "opendata-csv": parse_opendata_csv,
}


def _point(geometry: Any) -> tuple[float, float] | None:
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) < 2:
        return None
    longitude, latitude = coordinates[0], coordinates[1]
    if not all(_is_number(v) for v in (longitude, latitude)):
        return None
    return float(longitude), float(latitude)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def local_name(name: str) -> str:
    """A municipality as the registry names it: `愛媛県西宇和郡伊方町` -> `伊方町` (files give
    the prefecture, and a town's or village's 郡; a city's name may hold 郡, as 大和郡山市)."""
    name = PREFECTURE_RE.sub("", name.strip(), count=1)
    return DISTRICT_RE.sub("", name, count=1) if name.endswith(("町", "村")) else name


def column_name(header: str) -> str:
    """A header cell as the columns are named here: NFKC, no spaces or line breaks, and no
    `(設置主体)` (published 指定緊急避難場所一覧 files name 地方公共団体名 so, on two lines)."""
    name = "".join(unicodedata.normalize("NFKC", header).split())
    return name.removesuffix(SETTER_SUFFIX)


def _csv_records(
    text: str, columns: _Columns
) -> tuple[list[tuple[int, dict[str, str]]], list[RowError]]:
    """Rows by column name; only the columns a station needs must be in the header."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [column_name(name) for name in next(reader, [])]
    needed = (columns.id, columns.name, columns.latitude, columns.longitude)
    missing = [RowError(HEADER_ROW, name, "missing required column")
               for name in needed if name not in header]  # fmt: skip
    if columns.code and not any(name in header for name in columns.code):
        missing.append(RowError(HEADER_ROW, columns.code[-1], "missing required column"))
    if missing:
        return [], missing
    records: list[tuple[int, dict[str, str]]] = []
    errors: list[RowError] = []
    for number, cells in enumerate(reader, start=HEADER_ROW + 1):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            errors.append(RowError(number, None, f"{len(cells)} cells, header has {len(header)}"))
            continue
        records.append((number, {n: c.strip() for n, c in zip(header, cells, strict=True)}))
    return records, errors


def _gsi_code(cells: Mapping[str, str]) -> tuple[str, str]:
    match = GSI_ID_RE.match(cells.get(GSI.id, ""))
    if match is None:
        return GSI.id, ""
    return GSI.id, match.group(1)


def _opendata_code(cells: Mapping[str, str]) -> tuple[str, str]:
    """The shelter's own 所在地 code, else the publisher's; six digits with the check
    digit, or five when a spreadsheet ate the leading zero of a six-digit code."""
    column = next((c for c in OPENDATA.code if cells.get(c)), OPENDATA.code[-1])
    code = cells.get(column, "")
    if not CODE_RE.match(code):
        return column, ""
    return column, code.zfill(6)[:5]


def _stations(
    records: Iterable[tuple[int, dict[str, str]]],
    errors: list[RowError],
    columns: _Columns,
    code_of: Callable[[Mapping[str, str]], tuple[str, str]],
    located: Mapping[str, str] | None = None,
) -> ParsedCsv[StationSpec]:
    """Each record mapped onto a `StationSpec`, its errors named by the file's columns."""
    rename = {"id": columns.id, "name_ja": columns.name, "name_en": columns.name_en or columns.name,
              "name_kana": columns.kana or columns.name,
              "latitude": columns.latitude, "longitude": columns.longitude,
              "address": columns.address[0], **(located or {})}  # fmt: skip
    rows: list[ParsedRow[StationSpec]] = []
    first_row: dict[str, int] = {}
    for number, cells in records:
        code_column, code = code_of(cells)
        municipality = MUNICIPALITIES.get(code) or (
            local_name(cells.get(columns.municipality_name, "")) if columns.municipality_name
            else ""
        )  # fmt: skip
        if not municipality:
            known = ", ".join(f"{c} {n}" for c, n in MUNICIPALITIES.items())
            what = f"municipality code {code} is not known" if code else "no municipality code"
            errors.append(RowError(number, code_column, f"{what} (known: {known})"))
            continue
        source_id = cells.get(columns.id, "")
        station_id = (source_id if columns is GSI else f"{code}-{source_id}").lower()
        if source_id and not re.match(STATION_ID_RE, station_id):
            errors.append(RowError(number, columns.id, f"{source_id!r}: letters, digits, - or _"))
            continue
        name = cells.get(columns.name, "")
        values = {
            "id": station_id if source_id else "",
            "name_ja": name,
            "name_en": (cells.get(columns.name_en, "") if columns.name_en else "") or name,
            "name_kana": cells.get(columns.kana, "") if columns.kana else "",
            "latitude": cells.get(columns.latitude, ""),
            "longitude": cells.get(columns.longitude, ""),
            "address": next((cells[c] for c in columns.address if cells.get(c)), ""),
            "municipality": municipality,
        }
        try:
            spec = StationSpec.model_validate({k: v for k, v in values.items() if v}, strict=False)
        except ValidationError as exc:
            errors.extend(row_errors(number, exc, rename))
            continue
        seen = first_row.setdefault(spec.id, number)
        if seen != number:
            errors.append(RowError(number, columns.id, f"already given in row {seen}"))
            continue
        rows.append(ParsedRow(number, spec))
    return ParsedCsv(tuple(rows), tuple(errors))
