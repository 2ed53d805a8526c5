"""The report as a PDF (summary page, then one table row per station) or one PNG, with
plots: bookings per window hour, the distribution of waits, and the incidents' timeline.

matplotlib on its Agg canvas, figures made as objects (never pyplot's global state), so a
server thread renders without a display. Labels are English; municipality and station names
are Japanese, drawn with IPAGothic (Debian's fonts-ipafont-gothic, installed by .ci/run and
the Dockerfile) where DejaVu lacks the glyph: matplotlib falls back per glyph along
`FONTS`. A missing Japanese font is an error (`FontMissing`), never a report of boxes.
"""

from __future__ import annotations

import io
from contextlib import suppress
from datetime import datetime
from zoneinfo import ZoneInfo

from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.dates import date2num as _date2num
from matplotlib.figure import Figure

from server.errors import ServerError
from server.reports.figures import PLATFORMS, Figures, Report

A4_IN = (8.27, 11.69)
FONTS = ["DejaVu Sans", "IPAGothic"]
"""Latin first (matplotlib's own), then a Japanese font for what it lacks."""


def date2num(times: list[datetime]) -> list[float]:
    """matplotlib's date numbers (its `date2num` has no type hints)."""
    return [float(n) for n in _date2num(times)]  # type: ignore[no-untyped-call]


class FontMissing(ServerError):
    """The Japanese font is not installed: names would be drawn as empty boxes."""

    status = 503
    code = "font_missing"


def _require_fonts() -> None:
    """The Japanese font known to matplotlib, looked for on the system when its font cache
    (built once, at its first import on this machine) predates the font's install."""
    with suppress(ValueError):
        font_manager.findfont(FONTS[-1], fallback_to_default=False)
        return
    for path in font_manager.findSystemFonts():
        if font_manager.get_font(path).family_name == FONTS[-1]:
            font_manager.fontManager.addfont(path)
            return
    raise FontMissing(f"font {FONTS[-1]} not found: apt-get install fonts-ipafont-gothic")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _metres(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} m"


def _summary_lines(report: Report, zone: ZoneInfo) -> list[str]:
    f: Figures = report.total
    start, end = (t.astimezone(zone).strftime("%Y-%m-%d %H:%M") for t in
                  (report.period.start, report.period.end))  # fmt: skip
    sent = ", ".join(f"{p} {f.messages_sent[p]} (failed {f.messages_failed[p]})"
                     for p in PLATFORMS)  # fmt: skip
    return [
        f"chargenet after-action report: {report.municipality or 'all municipalities'}",
        f"{start} to {end} ({zone.key})",
        f"bookings {f.bookings}   served {f.served}   no-shows {f.no_shows}   "
        f"cancelled {f.cancelled}   active {f.active}   moved {f.moved}",
        f"wait p50 {_fmt(f.wait_p50_min)} min   p95 {_fmt(f.wait_p95_min)} min",
        f"walk p50 {_metres(f.walk_p50_m)} ({_fmt(f.walk_p50_min)} min)   "
        f"p95 {_metres(f.walk_p95_m)} ({_fmt(f.walk_p95_min)} min)   "
        f"no location {f.no_location}",
        f"incidents {f.incidents}   acknowledged {f.acknowledged} (p50 {_fmt(f.ack_p50_min)}, "
        f"p95 {_fmt(f.ack_p95_min)} min)   resolved {f.resolved} "
        f"(p50 {_fmt(f.resolve_p50_min)}, p95 {_fmt(f.resolve_p95_min)} min)",
        f"capacity lost to port faults {f.capacity_lost_port_h:.2f} port-hours",
        f"messages sent: {sent}",
    ]


def _bookings_per_hour(ax: Axes, report: Report, zone: ZoneInfo) -> None:
    hours = list(report.bookings_by_hour)
    ax.bar(date2num(hours), list(report.bookings_by_hour.values()), width=1 / 24 * 0.8,
           align="edge", color="#3b7dd8")  # fmt: skip
    ax.xaxis_date(zone)  # ticks in the stations' time, as residents and crews read it
    ax.set_title("Bookings per window hour")
    ax.set_ylabel("bookings")
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)


def _waits(ax: Axes, report: Report) -> None:
    waits = sorted(report.waits.values())
    ax.hist(waits, bins=min(20, max(1, len(waits))), color="#e0913a")
    for p, value in (("p50", report.total.wait_p50_min), ("p95", report.total.wait_p95_min)):
        if value is not None:
            ax.axvline(value, color="black", linestyle="--", linewidth=1)
            ax.annotate(p, (value, 0), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.set_title("Waits: request to window start")
    ax.set_xlabel("minutes")
    ax.set_ylabel("residents")


def _timeline(ax: Axes, report: Report, zone: ZoneInfo) -> None:
    end = report.period.end
    for y, i in enumerate(report.incidents):
        ack = i.acknowledged_at or i.resolved_at or end
        done = i.resolved_at or end

        opened, acked, resolved = date2num([i.opened_at, ack, done])
        ax.plot([opened, acked], [y, y], color="#d33", linewidth=4)
        ax.plot([acked, resolved], [y, y], color="#f0b400", linewidth=4)
    ax.xaxis_date(zone)
    ax.set_yticks(range(len(report.incidents)),
                  [f"#{i.id} {i.kind}" for i in report.incidents], fontsize=6)  # fmt: skip
    ax.set_title("Incidents: open (red) to acknowledged, then to resolved (amber)")
    ax.tick_params(axis="x", labelrotation=30, labelsize=7)


def _page(report: Report, zone: ZoneInfo) -> Figure:
    fig = Figure(figsize=A4_IN, layout="constrained")
    text, hours, waits, timeline = fig.subplots(4, 1, height_ratios=[1.1, 1, 1, 1.3])
    text.axis("off")
    for n, line in enumerate(_summary_lines(report, zone)):
        text.text(0, 1 - n * 0.15, line, fontsize=11 if n == 0 else 8, va="top",
                  transform=text.transAxes)  # fmt: skip
    _bookings_per_hour(hours, report, zone)
    _waits(waits, report)
    _timeline(timeline, report, zone)
    return fig


ROWS_PER_PAGE = 45


def _stations_pages(report: Report) -> list[Figure]:
    """The per-station table, `ROWS_PER_PAGE` stations a page (at least one page)."""
    header = ["station", "bookings", "served", "no-show", "wait p50", "wait p95",
              "walk p50 m", "walk p95 m", "no loc.", "incidents", "ack p50", "resolve p50",
              "lost port-h", "msgs"]  # fmt: skip
    widths = [0.19] + [0.062] * (len(header) - 1)
    rows = [
        [s.name_ja[:18], f.bookings, f.served, f.no_shows, _fmt(f.wait_p50_min),
         _fmt(f.wait_p95_min), _metres(f.walk_p50_m).removesuffix(" m"),
         _metres(f.walk_p95_m).removesuffix(" m"), f.no_location, f.incidents,
         _fmt(f.ack_p50_min), _fmt(f.resolve_p50_min),
         f"{f.capacity_lost_port_h:.2f}", sum(f.messages_sent.values())]
        for s, f in report.stations
    ]  # fmt: skip
    pages: list[Figure] = []
    for first in range(0, max(1, len(rows)), ROWS_PER_PAGE):
        fig = Figure(figsize=A4_IN, layout="constrained")
        ax = fig.subplots()
        ax.axis("off")
        ax.set_title("Per station (minutes; lost capacity in port-hours; messages sent)")
        chunk = rows[first : first + ROWS_PER_PAGE]
        if chunk:
            table = ax.table(cellText=chunk, colLabels=header, colWidths=widths,
                             loc="upper center", cellLoc="right")  # fmt: skip
            table.auto_set_font_size(False)
            table.set_fontsize(6)
        pages.append(fig)
    return pages


def render_pdf(report: Report, zone: ZoneInfo) -> bytes:
    """A4 pages: the summary with the plots, then the stations' table."""
    _require_fonts()
    out = io.BytesIO()
    with (
        rc_context({"font.family": FONTS, "pdf.fonttype": 42}),
        PdfPages(out, metadata={"Title": "chargenet after-action report"}) as pdf,
    ):
        for fig in (_page(report, zone), *_stations_pages(report)):
            FigureCanvasAgg(fig)
            pdf.savefig(fig)
    return out.getvalue()


def render_png(report: Report, zone: ZoneInfo, dpi: int = 100) -> bytes:
    """The summary page with the plots, A4 at `dpi`."""
    _require_fonts()
    out = io.BytesIO()
    with rc_context({"font.family": FONTS}):
        fig = _page(report, zone)
        FigureCanvasAgg(fig)
        fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()
