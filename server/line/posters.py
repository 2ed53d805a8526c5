"""Station posters: one A4 page a shelter pins up, Japanese and English, whose QR code
opens a chat with the LINE official account with "book at this station" typed in.

Pure: a station and the account id in, PDF bytes out. The QR code is segno's matrix drawn
as vector squares (sharp at any print size), error correction M or higher, its quiet zone
kept white. Japanese is set in reportlab's CID font HeiseiKakuGo-W5 (Adobe-Japan1), named
but not embedded: a reader sets it in its own Japanese Gothic (Acrobat, pdf.js, Preview,
pdfium; poppler with poppler-data). Embedding one would need a font file on every server
(Debian's fonts-ipaexfont-gothic, an apt package the Python install cannot bring), so the
poster stays a few KB and needs nothing but reportlab.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Final
from urllib.parse import quote

import segno
from reportlab.lib.colors import Color, HexColor, white
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import cm, mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from server.errors import Conflict
from server.line.prefill import poster_message
from server.registry.models import StationSpec

JA: Final = "HeiseiKakuGo-W5"
EN: Final = "Helvetica"
EN_BOLD: Final = "Helvetica-Bold"
LINE_GREEN: Final = HexColor("#06C755")
INK: Final = HexColor("#1A1A1A")
GREY: Final = HexColor("#666666")
QR_SIZE: Final = 8 * cm
"""The symbol without its quiet zone: scans from a metre away, well above 6 cm."""
QR_QUIET_MODULES: Final = 4
MARGIN: Final = 18 * mm
ACCOUNT_ID_RE: Final = re.compile(r"^@[a-z0-9._-]{1,40}\Z", re.IGNORECASE)
SETTING: Final = "line_official_account_id (CHARGENET_LINE_OFFICIAL_ACCOUNT_ID)"

STEPS: Final = (
    ("スマートフォンのカメラかLINEでQRコードを読み取ります",
     "Scan the QR code with your phone's camera or LINE"),
    ("LINEのトークが開き、メッセージが入力済みです。そのまま送信します",
     "LINE opens a chat with the message typed in: just send it"),
    ("表示される時間帯から選んで予約します", "Pick one of the times shown and book it"),
)  # fmt: skip


class OfficialAccountUnset(Conflict):
    """Posters need the official account's id; without it the QR code would open nothing."""

    code = "line_official_account_id_unset"


def oa_message_url(account_id: str, text: str) -> str:
    """LINE's URL scheme opening a chat with `account_id`, `text` typed in, not yet sent.

    `https://line.me/R/oaMessage/{id}/?{text}`, both percent-encoded (the `@` too).
    """
    return f"https://line.me/R/oaMessage/{quote(account_id, safe='')}/?{quote(text, safe='')}"


def station_url(account_id: str, station_id: str) -> str:
    """What a station's QR code holds; refuses an unset or malformed account id."""
    if not account_id:
        raise OfficialAccountUnset(f"posters need the LINE official account's id: set {SETTING}")
    if not ACCOUNT_ID_RE.match(account_id):
        raise OfficialAccountUnset(
            f"{SETTING} is {account_id!r}; it must be the account's basic id, e.g. @123abcde"
        )
    return oa_message_url(account_id, poster_message(station_id))


def poster_pdf(station: StationSpec, account_id: str) -> bytes:
    """The station's A4 poster as a one-page PDF."""
    url = station_url(account_id, station.id)
    pdfmetrics.registerFont(UnicodeCIDFont(JA))  # idempotent; reportlab keeps one registry
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, pageCompression=1)
    canvas.setTitle(f"{station.name_ja} / {station.name_en}")
    canvas.setSubject(url)
    canvas.setAuthor("chargenet")
    _draw(canvas, station, account_id, url)
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _draw(canvas: Canvas, station: StationSpec, account_id: str, url: str) -> None:
    page_w, page_h = A4
    width = page_w - 2 * MARGIN
    band_h = 30 * mm
    canvas.setFillColor(LINE_GREEN)
    canvas.rect(0, page_h - band_h, page_w, band_h, stroke=0, fill=1)
    canvas.setFillColor(white)
    canvas.setFont(JA, 26)
    canvas.drawCentredString(page_w / 2, page_h - 15 * mm, "LINEで充電の予約")
    canvas.setFont(EN_BOLD, 17)
    canvas.drawCentredString(page_w / 2, page_h - 24 * mm, "Book a charging slot on LINE")

    y = page_h - band_h - 16 * mm
    y = _centred(canvas, station.name_ja, JA, 34, 18, width, y, INK, max_lines=2)
    y = _centred(canvas, station.name_en, EN_BOLD, 22, 12, width, y - 2 * mm, INK, max_lines=2)

    qr = segno.make(url, error="m", micro=False)
    side = QR_SIZE + 2 * QR_QUIET_MODULES * QR_SIZE / _modules(qr)
    top = y - 6 * mm
    _draw_qr(canvas, qr, (page_w - side) / 2, top - side, side)
    y = top - side - 7 * mm
    canvas.setFillColor(INK)
    canvas.setFont(JA, 13)
    canvas.drawCentredString(
        page_w / 2, y, f"LINE公式アカウント / LINE official account: {account_id}"
    )

    y -= 12 * mm
    for number, (ja, en) in enumerate(STEPS, start=1):
        y = _step(canvas, number, ja, en, MARGIN, width, y)

    y -= 3 * mm
    if station.address:
        canvas.setFillColor(INK)
        y = _left(canvas, f"住所 / Address: {station.address}", JA, 12, width, MARGIN, y)

    canvas.setFillColor(GREY)
    canvas.setFont(JA, 8.5)
    canvas.drawCentredString(
        page_w / 2, 16 * mm, "位置情報は近くの充電場所を探すためだけに使い、保存しません。"
    )
    canvas.setFont(EN, 8.5)
    canvas.drawCentredString(
        page_w / 2, 12 * mm,
        "Your location is used only to find a nearby slot and is never stored."
        f"  ·  station {station.id}",
    )  # fmt: skip


def _modules(qr: segno.QRCode) -> int:
    width, _ = qr.symbol_size(scale=1, border=0)
    return int(width)


def _draw_qr(canvas: Canvas, qr: segno.QRCode, x: float, y: float, side: float) -> None:
    """The matrix as runs of dark modules in one filled path, on a white quiet zone."""
    rows = [[bool(m) for m in row] for row in qr.matrix_iter(scale=1, border=QR_QUIET_MODULES)]
    module = side / len(rows)
    canvas.setFillColor(white)
    canvas.rect(x, y, side, side, stroke=0, fill=1)
    path = canvas.beginPath()
    for r, row in enumerate(rows):
        for start, length in _dark_runs(row):
            path.rect(x + start * module, y + side - (r + 1) * module, length * module, module)
    canvas.setFillColor(Color(0, 0, 0))
    canvas.drawPath(path, stroke=0, fill=1)


def _dark_runs(row: list[bool]) -> Iterator[tuple[int, int]]:
    start: int | None = None
    for i, dark in enumerate([*row, False]):
        if dark and start is None:
            start = i
        elif not dark and start is not None:
            yield start, i - start
            start = None


def _step(canvas: Canvas, number: int, ja: str, en: str, x: float, width: float, y: float) -> float:
    radius = 4.2 * mm
    canvas.setFillColor(LINE_GREEN)
    canvas.circle(x + radius, y - radius + 3.5 * mm, radius, stroke=0, fill=1)
    canvas.setFillColor(white)
    canvas.setFont(EN_BOLD, 14)
    canvas.drawCentredString(x + radius, y - 1.3 * mm, str(number))
    text_x = x + 2 * radius + 4 * mm
    canvas.setFillColor(INK)
    y = _left(canvas, ja, JA, 13, width - (text_x - x), text_x, y)
    canvas.setFillColor(GREY)
    y = _left(canvas, en, EN, 11, width - (text_x - x), text_x, y)
    return y - 4 * mm


def _centred(
    canvas: Canvas, text: str, font: str, size: float, min_size: float, width: float,
    y: float, colour: Color, max_lines: int,
) -> float:  # fmt: skip
    """Draw `text` centred at the largest size that fits, wrapped at `min_size` if none does
    and cut to `max_lines` (with "…"), so the QR code always stays on the page; returns the
    baseline below it."""
    size, lines = _fit(text, font, size, min_size, width, max_lines)
    canvas.setFillColor(colour)
    canvas.setFont(font, size)
    for line in lines:
        canvas.drawCentredString(A4[0] / 2, y, line)
        y -= size * 1.25
    return y


def _left(
    canvas: Canvas, text: str, font: str, size: float, width: float, x: float, y: float,
    max_lines: int = 3,
) -> float:  # fmt: skip
    canvas.setFont(font, size)
    for line in _wrap(text, font, size, width, max_lines):
        canvas.drawString(x, y, line)
        y -= size * 1.35
    return y


def _fit(
    text: str, font: str, size: float, min_size: float, width: float, max_lines: int
) -> tuple[float, list[str]]:
    while size > min_size and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 1
    return size, _wrap(text, font, size, width, max_lines)


def _wrap(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    """Lines that fit `width`: Latin words kept whole, Japanese broken between any two
    characters (it has no spaces to break at); cut to `max_lines` with "…", so the page
    never overflows whatever the registry holds."""
    lines: list[str] = []
    line = ""
    for token in re.findall(r"[!-~]+\s*|[^\s!-~]\s*|\s+", text):
        if line and pdfmetrics.stringWidth((line + token).rstrip(), font, size) > width:
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line += token
    lines = [*lines, line.rstrip()] if line.strip() else lines
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and pdfmetrics.stringWidth(last + "…", font, size) > width:
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + "…"]
