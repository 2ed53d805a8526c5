"""Every document a report is downloaded as, by name: one table for the API and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal
from zoneinfo import ZoneInfo

from server.reports import export
from server.reports.figures import Report

Format = Literal["csv", "pdf", "png", "kintone-bookings", "kintone-incidents"]


@dataclass(frozen=True, slots=True)
class Kind:
    media_type: str
    suffix: str
    render: Callable[[Report, ZoneInfo], bytes]


def render_pdf(report: Report, zone: ZoneInfo) -> bytes:
    from server.reports import plots  # matplotlib: 0.65 s of every server start, if at the top

    return plots.render_pdf(report, zone)


def render_png(report: Report, zone: ZoneInfo) -> bytes:
    from server.reports import plots

    return plots.render_png(report, zone)


CSV: Final = "text/csv; charset=utf-8"
DOCUMENTS: Final[dict[str, Kind]] = {
    "csv": Kind(CSV, "summary.csv", export.summary_csv),
    "pdf": Kind("application/pdf", "report.pdf", render_pdf),
    "png": Kind("image/png", "report.png", render_png),
    "kintone-bookings": Kind(CSV, "bookings.csv", export.booking_records),
    "kintone-incidents": Kind(CSV, "incidents.csv", export.incident_records),
}


def filename(report: Report, fmt: str) -> str:
    """`chargenet-{scope}-{start}-{end}-{suffix}`, ASCII for any browser's download."""
    scope = "all" if report.municipality is None else "municipality"
    return (f"chargenet-{scope}-{report.period.start:%Y%m%dT%H%M}-"
            f"{report.period.end:%Y%m%dT%H%M}-{DOCUMENTS[fmt].suffix}")  # fmt: skip
