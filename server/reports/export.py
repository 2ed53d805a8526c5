"""The report as CSV, and the flat kintone-style records (one row per booking or incident).

CSVs are UTF-8 with a BOM (Excel in Japan opens them right; kintone's import reads it),
a header row of field codes, times in the stations' zone as `YYYY-MM-DD HH:MM`, the form
kintone's CSV import takes for date-time fields. No resident id is in any of them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

from server.reports.figures import PLATFORMS, Figures, Report, StationRow

SUMMARY_FIELDS: Final = (
    "scope", "station_id", "station_name_ja", "station_name_en", "municipality",
    "period_start", "period_end", "bookings", "served", "no_shows", "cancelled", "active",
    "moved", "wait_p50_min", "wait_p95_min", "walk_p50_m", "walk_p95_m", "walk_p50_min",
    "walk_p95_min", "no_location", "incidents", "acknowledged",
    "resolved", "ack_p50_min", "ack_p95_min", "resolve_p50_min", "resolve_p95_min",
    "capacity_lost_port_h",
    *(f"messages_{state}_{p}" for state in ("sent", "failed", "pending") for p in PLATFORMS),
)  # fmt: skip
"""Walks are of the bookings made from a location; `no_location` counts the others."""

BOOKING_FIELDS: Final = (
    "record_type", "booking_id", "station_id", "station_name_ja", "municipality", "port",
    "ticket_code", "status", "requested_at", "window_start", "wait_min", "moved_from_id",
    "released_for",
)  # fmt: skip
INCIDENT_FIELDS: Final = (
    "record_type", "incident_id", "kind", "severity", "station_id", "station_name_ja",
    "municipality", "gw_id", "unit", "port", "opened_at", "acknowledged_at", "acknowledged_by",
    "resolved_at", "resolved_by", "ack_min", "resolve_min", "detail",
)  # fmt: skip


def _table(fields: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(fields)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _at(at: datetime | None, zone: ZoneInfo) -> str | None:
    return at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if at else None


def _num(value: float | None) -> str | None:
    return None if value is None else f"{value:.1f}"


def _whole(value: float | None) -> str | None:
    return None if value is None else f"{value:.0f}"


def _figures_row(scope: str, station: StationRow | None, f: Figures, report: Report,
                 zone: ZoneInfo) -> list[object]:  # fmt: skip
    return [
        scope, station.id if station else None, station.name_ja if station else None,
        station.name_en if station else None,
        station.municipality if station else report.municipality or "",
        _at(report.period.start, zone), _at(report.period.end, zone),
        f.bookings, f.served, f.no_shows, f.cancelled, f.active, f.moved,
        _num(f.wait_p50_min), _num(f.wait_p95_min), _whole(f.walk_p50_m), _whole(f.walk_p95_m),
        _num(f.walk_p50_min), _num(f.walk_p95_min), f.no_location, f.incidents, f.acknowledged,
        f.resolved, _num(f.ack_p50_min), _num(f.ack_p95_min), _num(f.resolve_p50_min),
        _num(f.resolve_p95_min), f"{f.capacity_lost_port_h:.2f}",
        *(counts[p] for counts in (f.messages_sent, f.messages_failed, f.messages_pending)
          for p in PLATFORMS),
    ]  # fmt: skip


def summary_csv(report: Report, zone: ZoneInfo) -> bytes:
    """One row per station, then the scope's total (`scope` = station / total)."""
    rows = [_figures_row("station", s, f, report, zone) for s, f in report.stations]
    rows.append(_figures_row("total", None, report.total, report, zone))
    return _table(SUMMARY_FIELDS, rows)


def booking_records(report: Report, zone: ZoneInfo) -> bytes:
    """One kintone record per booking of the period (moved ones too, each its own row)."""
    names = {s.id: s for s, _ in report.stations}
    rows = [
        ["booking", b.id, b.station_id, names[b.station_id].name_ja,
         names[b.station_id].municipality, b.port, b.ticket_code, b.status,
         _at(b.created_at, zone), _at(b.window_start, zone), _num(report.waits.get(b.id)),
         b.moved_from_id, b.released_for]
        for b in report.bookings
    ]  # fmt: skip
    return _table(BOOKING_FIELDS, rows)


def incident_records(report: Report, zone: ZoneInfo) -> bytes:
    """One kintone record per incident opened in the period."""
    names = {s.id: s for s, _ in report.stations}

    def minutes(at: datetime | None, since: datetime) -> str | None:
        return _num((at - since).total_seconds() / 60) if at else None

    rows = []
    for i in report.incidents:
        station = names.get(i.station_id or "")
        rows.append([
            "incident", i.id, i.kind, i.severity, i.station_id,
            station.name_ja if station else None, station.municipality if station else None,
            i.gw_id, i.unit, i.port, _at(i.opened_at, zone), _at(i.acknowledged_at, zone),
            i.acknowledged_by, _at(i.resolved_at, zone), i.resolved_by,
            minutes(i.acknowledged_at, i.opened_at), minutes(i.resolved_at, i.opened_at),
            i.detail,
        ])  # fmt: skip
    return _table(INCIDENT_FIELDS, rows)
