"""Reading the registry's two CSV files into validated models, with every error located.

Pure: text in, models and errors out; the service decides what to write. Rows are
numbered as a spreadsheet shows them (the header is row 1, the first station row 2), and
each error names its column, so an operator can fix a 200-row file in one pass instead of
one error per upload.

Stations (`STATION_COLUMNS`): an empty cell means "not given" (the model's default: no
counterpart group, always open, 30-minute slots). Battery mappings (`BATTERY_COLUMNS`):
one battery per row, `unit` as in the MQTT topics (`rs485-1.3`). UTF-8, with or without
the byte-order mark spreadsheet programs write.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from server.registry.models import BatteryMapping, StationSpec

STATION_COLUMNS: Final = (
    "id", "name_ja", "name_en", "latitude", "longitude", "address", "municipality",
    "counterpart_group", "opens_at", "closes_at", "slot_minutes", "name_kana",
)  # fmt: skip
STATION_REQUIRED: Final = frozenset({"id", "name_ja", "name_en", "latitude", "longitude"})
BATTERY_COLUMNS: Final = ("gw_id", "unit", "station_id")
HEADER_ROW: Final = 1

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class RowError:
    row: int
    """Spreadsheet row: 1 is the header."""
    column: str | None
    """None when the error is about the row as a whole."""
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class ParsedRow(Generic[M]):
    row: int
    model: M


@dataclass(frozen=True, slots=True)
class ParsedCsv(Generic[M]):
    rows: tuple[ParsedRow[M], ...] = ()
    errors: tuple[RowError, ...] = field(default_factory=tuple)


def parse_stations_csv(text: str) -> ParsedCsv[StationSpec]:
    """Stations, with duplicate ids reported on the later row."""
    return parse_rows(text, STATION_COLUMNS, STATION_REQUIRED, StationSpec, lambda s: (s.id,))


def parse_batteries_csv(text: str) -> ParsedCsv[BatteryMapping]:
    """Battery mappings, with a battery listed twice reported on the later row."""
    required = frozenset(BATTERY_COLUMNS)
    return parse_rows(text, BATTERY_COLUMNS, required, BatteryMapping, lambda m: (m.gw_id, m.unit))


def parse_rows(
    text: str,
    columns: Sequence[str],
    required: frozenset[str],
    model: type[M],
    key: Callable[[M], tuple[str, ...]],
) -> ParsedCsv[M]:
    """Any registry CSV file (stations, batteries, crew routes): the header checked against
    `columns` and `required`, each row validated as `model`, a row whose `key` an earlier
    row gave reported on the later one."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = [name.strip() for name in next(reader, [])]
    header_errors = _check_header(header, columns, required)
    if header_errors:
        return ParsedCsv(errors=tuple(header_errors))
    rows: list[ParsedRow[M]] = []
    errors: list[RowError] = []
    first_row: dict[tuple[str, ...], int] = {}
    for number, cells in enumerate(reader, start=HEADER_ROW + 1):
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, common at the end of exported files
        if len(cells) != len(header):
            errors.append(RowError(number, None, f"{len(cells)} cells, header has {len(header)}"))
            continue
        values = {
            name: cell.strip() for name, cell in zip(header, cells, strict=True) if cell.strip()
        }
        try:
            parsed = model.model_validate(values, strict=False)
        except ValidationError as exc:
            errors.extend(row_errors(number, exc))
            continue
        seen = first_row.setdefault(key(parsed), number)
        if seen != number:
            errors.append(RowError(number, header[0], f"already given in row {seen}"))
            continue
        rows.append(ParsedRow(number, parsed))
    return ParsedCsv(tuple(rows), tuple(errors))


def _check_header(
    header: list[str], columns: Sequence[str], required: frozenset[str]
) -> list[RowError]:
    if not header:
        return [RowError(HEADER_ROW, None, f"empty file; the header is {','.join(columns)}")]
    errors = [
        RowError(HEADER_ROW, name, f"unknown column; known: {','.join(columns)}")
        for name in header
        if name not in columns
    ]
    errors += [
        RowError(HEADER_ROW, name, "missing required column")
        for name in columns
        if name in required and name not in header
    ]
    duplicates = {name for name in header if header.count(name) > 1}
    errors += [RowError(HEADER_ROW, name, "column given twice") for name in sorted(duplicates)]
    return errors


def row_errors(
    row: int, exc: ValidationError, columns: Mapping[str, str] | None = None
) -> list[RowError]:
    """One error per pydantic error; a model-level error (hours) names no single column.
    `columns` renames a model field to the file's own column (`latitude` to `緯度`)."""
    found = []
    for error in exc.errors():
        column = str(error["loc"][0]) if error["loc"] else None
        if column is not None and columns:
            column = columns.get(column, column)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "required, empty"
        found.append(RowError(row, column, message))
    return found
